// Joining and leaving by mail through a real Postfix, configured with what `mailman aliases`
// writes: a `join` mail in over SMTP, piped into `mailman inject`, the confirmation out through
// Postfix to smtp-sink, a plain reply to LIST-confirm+TOKEN@ back in (recipient_delimiter +), the
// welcome out, the member on the list; the same for `leave`.
using Mailman.Lists;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Integration;

public sealed class PostfixRequestTests : IDisposable
{
    private const string List = "dev@lists.example.org";
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void Join_and_leave_by_mail_are_confirmed_by_a_plain_reply_through_Postfix()
    {
        _instance.CreateList(List, l => l.DisplayName = "Dev");
        using var sink = SmtpSink.Start();
        var aliases = AliasFiles.Write(_instance.Home);
        Assert.Contains("dev-confirm@lists.example.org\tmailmanq:", File.ReadAllText(aliases.Transport), StringComparison.Ordinal);
        Handover();
        using var postfix = aliases.StartPostfix(sink.Port);

        // join → confirmation → reply → welcome
        Send(postfix, "dev-join@lists.example.org", "join", "please\n", "join-1@example.com");
        var confirmation = Serve(postfix, sink, m => m.Header("Subject")?.StartsWith("confirm ", StringComparison.Ordinal) == true, "the join confirmation");
        Assert.Equal(["anne@example.com"], confirmation.Recipients);
        Assert.Equal("dev-bounces+anne=example.com@lists.example.org", confirmation.MailFrom);
        Assert.Equal("auto-replied", confirmation.Header("Auto-Submitted"));
        var confirmAddress = MailboxAddress.Parse(confirmation.Header("From")!).Address;
        Assert.StartsWith("dev-confirm+", confirmAddress, StringComparison.Ordinal);
        Assert.False(IsMember());

        Send(postfix, confirmAddress, "Re: " + confirmation.Header("Subject"), "> Someone (hopefully you) asked\n", "join-2@example.com", inReplyTo: confirmation.Header("Message-Id"));
        var welcome = Serve(postfix, sink, m => m.Header("Subject") == "Welcome to the \"Dev\" mailing list", "the welcome");
        Assert.Equal(["anne@example.com"], welcome.Recipients);
        Assert.True(IsMember());

        // leave → confirmation → reply → goodbye
        Send(postfix, "dev-leave@lists.example.org", "leave", "", "leave-1@example.com");
        var leaveConfirmation = Serve(postfix, sink, m => m.Header("Subject")?.StartsWith("confirm ", StringComparison.Ordinal) == true && m.Text.Contains("to unsubscribe", StringComparison.Ordinal), "the leave confirmation");
        Assert.True(IsMember());
        Send(postfix, MailboxAddress.Parse(leaveConfirmation.Header("From")!).Address, "Re: " + leaveConfirmation.Header("Subject"), "", "leave-2@example.com");
        var goodbye = Serve(postfix, sink, m => m.Header("Subject")?.StartsWith("You have been unsubscribed", StringComparison.Ordinal) == true, "the goodbye");
        Assert.Equal(["anne@example.com"], goodbye.Recipients);
        Assert.False(IsMember());

        var log = File.ReadAllText(Directory.GetFiles(_instance.Paths.LogsDirectory, "subscribe-*.log").Single());
        Assert.Contains("Join: anne@example.com subscribed to dev@lists.example.org", log, StringComparison.Ordinal);
        Assert.Contains("Leave: anne@example.com unsubscribed from dev@lists.example.org", log, StringComparison.Ordinal);
    }

    private bool IsMember()
    {
        using var store = new ListStore(_instance.Paths.Database);
        return store.IsMember(ListName.Parse(List), "anne@example.com");
    }

    // Postfix pipes into `mailman inject` as nobody: the instance is theirs between daemon runs.
    private void Handover() => AliasFiles.HandToNobody(_instance.Home);

    // Waits for Postfix to pipe the mail in, runs the daemon until idle (as nobody, whose instance it is), hands
    // the instance back, and waits for the answer at the sink.
    private SinkMessage Serve(PostfixInstance postfix, SmtpSink sink, Func<SinkMessage, bool> answer, string what)
    {
        Wait.Until(() => _instance.Count("request") == 1, TimeSpan.FromSeconds(60), "Postfix to pipe the request into inject; log: " + postfix.Log());
        MailmanProcess.ServeUntilIdle(_instance.Home, postfix.Port, runAs: "nobody");
        Handover();
        return Wait.For(() => sink.Messages().LastOrDefault(answer), TimeSpan.FromSeconds(90), what + " at the sink; log: " + postfix.Log());
    }

    private static void Send(PostfixInstance postfix, string to, string subject, string body, string messageId, string? inReplyTo = null)
    {
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Anne", "anne@example.com"));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = subject;
        message.MessageId = messageId;
        if (inReplyTo is not null)
        {
            message.InReplyTo = inReplyTo;
        }

        message.Body = new TextPart("plain") { Text = body };
        postfix.Submit(message);
    }
}
