using Mailman.Queues;

namespace Mailman.Tests.Queues;

public sealed class RecipientLineTests
{
    [Fact]
    public void A_recipient_line_carries_an_optional_token_and_old_lines_still_read()
    {
        var with = new Recipient("a@example.com", "A") { UnsubscribeToken = "tok" };
        Assert.Equal("a@example.com\tA\ttok\n", with.ToLine());
        Assert.Equal(with, Recipient.Parse("a@example.com\tA\ttok"));
        Assert.Equal(new Recipient("a@example.com", "A"), Recipient.Parse("a@example.com\tA"));
        Assert.Equal(new Recipient("a@example.com", ""), Recipient.Parse("a@example.com"));
        Assert.Equal("a@example.com\tA B\n", new Recipient("a@example.com", "A\tB").ToLine());
    }

    [Fact]
    public void Tokens_survive_the_out_entry_and_the_delivery_checkpoint()
    {
        using var instance = new TestSupport.TempInstance();
        var fs = new System.IO.Abstractions.FileSystem();
        var queue = new Switchboard(fs, instance.QueueDir("out"), "out", TimeProvider.System);
        Recipient[] recipients = [new("a@example.com", "A") { UnsubscribeToken = "t1" }, new("b@example.com", "")];
        queue.Enqueue(new EntryMetadata { List = "dev@example.org" }, "x"u8, recipients);
        var claim = queue.TryClaim()!;
        var entry = queue.Load(claim);
        Assert.Equal(recipients, queue.Recipients(entry));

        using var checkpoint = DeliveryCheckpoint.Open(fs, queue, claim);
        checkpoint.Record(0, 1, recipients);
        Assert.Equal(recipients, checkpoint.Deferred());
    }
}
