// The body of a copy is dot-stuffed once per post, not byte by byte per copy by MailKit's
// filter. What goes on the wire must be exactly what MailKit's SmtpDataFilter would have made,
// including lines that start with a spliced value and a body without a final line break.
using System.Text;
using Mailman.Delivery;
using Mailman.Delivery.Smtp;
using Mailman.Instance;
using Mailman.Queues;
using Mailman.Templates;
using Mailman.TestSupport;
using MailKit.Net.Smtp;
using MimeKit.IO;

namespace Mailman.Tests.Delivery;

public sealed class DotStuffingTests
{
    private const string Nonce = "0123456789abcdef";

    private static string T(SlotKind kind) => Slots.Token(Nonce, kind);

    public static TheoryData<string, string> Bodies => new()
    {
        { "plain\r\n.\r\n..\r\n.x\r\nend\r\n", "ann" },
        { ".first line\r\n.\r\n", "ann" },
        { "no final line break\r\n.last", "ann" },
        { $"footer\r\n{T(SlotKind.Name)} <{T(SlotKind.Address)}>\r\n.after\r\n", ".dot" },
        { $"{T(SlotKind.Name)}\r\n", ".dot" },
        { $"x{T(SlotKind.Name)}\r\n.{T(SlotKind.Address)}\r\n", ".dot" },
        { $"{T(SlotKind.Name)}.\r\n", "" },
        { $"line\r\n{T(SlotKind.Name)}.tail\r\n", "" },
        { $"ends in a slot\r\n{T(SlotKind.Name)}", "name" },
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public void The_stuffed_body_is_what_MailKits_filter_makes_of_the_plain_one(string body, string name)
    {
        var post = PreparedPost.Create(Encoding.UTF8.GetBytes("Subject: t\r\n\r\n" + body), Nonce);
        var values = Values(name);

        using var plain = new MemoryStream();
        using (var filtered = new FilteredStream(plain))
        {
            filtered.Add(new SmtpDataFilter());
            post.WriteBodyTo(filtered, values, CancellationToken.None);
            filtered.Flush();
        }

        using var stuffed = new MemoryStream();
        post.WriteBodyDotStuffedTo(stuffed, values, CancellationToken.None);

        Assert.Equal(Encoding.UTF8.GetString(plain.ToArray()), Encoding.UTF8.GetString(stuffed.ToArray()));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Lines_of_dots_arrive_intact_over_SMTP(bool personalized, bool pipelined)
    {
        var body = personalized
            ? $".\r\n..\r\n.leading\r\n{T(SlotKind.Name)}\r\nlast line .\r\n"
            : ".\r\n..\r\n.leading\r\n\r\n.\r\nlast line .\r\n";
        var post = PreparedPost.Create(Encoding.UTF8.GetBytes("Subject: dots\r\nFrom: a@example.com\r\n\r\n" + body), personalized ? Nonce : null);
        using var server = ScriptedSmtpServer.Start();
        using var connection = new SmtpConnection(new SmtpOptions { Port = server.Port, TimeoutSeconds = 10, Pipelining = pipelined });
        var carrier = new Carrier(post);
        var values = personalized ? Values(".Dot Name") : null;
        carrier.SetRecipient(values);
        var result = new TransactionResult();

        connection.Send(carrier.Message, "dev-bounces@example.org", [new Recipient("ann@example.com", "")], result);
        Assert.Equal(pipelined, result.Pending);
        connection.Complete();

        Assert.False(result.Pending);
        Assert.Single(result.Delivered);
        var received = Assert.Single(server.Received);
        using var expected = new MemoryStream();
        carrier.Body.Wire = null;
        carrier.Message.WriteTo(Carrier.SendOptions, expected);
        // SmtpServer hands over the content without the CRLF that belongs to "CRLF.CRLF".
        Assert.Equal(Encoding.UTF8.GetString(expected.ToArray())[..^2], Encoding.UTF8.GetString(received.Content));
        Assert.Contains("\r\n\r\n.\r\n..\r\n.leading\r\n", Encoding.UTF8.GetString(received.Content), StringComparison.Ordinal);
    }

    private static RecipientValues Values(string name)
        => RecipientValues.For(new Recipient("ann@example.com", name), RecipientValues.NewScratch());
}
