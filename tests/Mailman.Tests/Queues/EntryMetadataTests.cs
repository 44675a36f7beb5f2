using Mailman.Queues;

namespace Mailman.Tests.Queues;

public sealed class EntryMetadataTests
{
    // Review 39: log lines said "envelope sender null" and "HOLD: post null" for a bounce's null
    // sender and a post without a Message-Id.
    [Fact]
    public void Log_lines_say_the_null_sender_and_a_missing_Message_Id_as_such_and_the_entry_does_not_store_them()
    {
        var bare = new EntryMetadata { List = "dev@example.org" };
        Assert.Equal("<>", bare.SenderForLog);
        Assert.Equal("(none)", bare.MessageIdForLog);
        var full = new EntryMetadata { List = "dev@example.org", Sender = "ann@example.com", MessageId = "<1@example.com>" };
        Assert.Equal("ann@example.com", full.SenderForLog);
        Assert.Equal("<1@example.com>", full.MessageIdForLog);

        using var instance = new TestSupport.TempInstance();
        var queue = new Switchboard(new System.IO.Abstractions.FileSystem(), instance.QueueDir("in"), "in", TimeProvider.System);
        var entry = queue.Enqueue(bare, "x"u8);
        var stored = File.ReadAllText(Directory.GetFiles(instance.QueueDir("in"), entry + "*").Single());
        Assert.DoesNotContain("ForLog", stored, StringComparison.Ordinal);
        Assert.Null(queue.ReadMetadata(entry).Sender);
    }
}
