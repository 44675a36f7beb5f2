// The moderator's path through a real, private Postfix (as PostfixTests): a non-member's post
// comes in by SMTP and is held; the moderator notice goes out through Postfix with a
// LIST-confirm+TOKEN@ Reply-To; the moderator's "approve" reply comes back in by SMTP, Postfix
// pipes it into `mailman inject`, the request runner hands it to HeldPostConfirmation, and every
// member gets the post once.
using Mailman.Lists;
using Mailman.TestSupport;
using MailKit.Net.Smtp;
using MimeKit;

namespace Mailman.Tests.Integration;

public sealed class ModeratorReplyTests : IDisposable
{
    private const string List = "dev@lists.example.org";
    private static readonly string[] Members = ["m1@example.com", "m2@example.com", "m3@example.com"];
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void A_post_through_Postfix_is_held_and_the_moderator_notice_goes_out_through_Postfix_with_a_confirm_address()
    {
        using var sink = SmtpSink.Start();
        using var postfix = StartPostfix(sink);
        var notice = HoldThroughPostfix(postfix, sink);
        Assert.Matches(@"^dev-confirm\+[0-9a-f]{32}@lists\.example\.org$", notice.ReplyTo.Mailboxes.Single().Address);
        Assert.DoesNotContain(sink.Messages(), m => m.Header("Message-Id") == "<via-postfix@example.net>");
    }

    [Fact]
    public void A_moderator_approves_by_replying_to_the_notice_through_Postfix_and_every_member_gets_the_post_once()
    {
        using var sink = SmtpSink.Start();
        using var postfix = StartPostfix(sink);
        var notice = HoldThroughPostfix(postfix, sink);

        var reply = new MimeMessage();
        reply.From.Add(MailboxAddress.Parse("mo@example.com"));
        reply.To.Add(notice.ReplyTo.Mailboxes.Single());
        reply.Subject = "Re: " + notice.Subject;
        reply.InReplyTo = notice.MessageId;
        reply.Body = new TextPart("plain") { Text = "approve\n\nOn Monday the list wrote:\n> A post to the list is held for your approval.\n" };
        Send(postfix.Port, reply);
        Wait.Until(() => _instance.Count("request") == 1 || sink.Messages().Any(m => m.Text.Contains("status=bounced", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60), "Postfix to pipe the reply into inject; log: " + postfix.Log());
        Assert.Equal(1, _instance.Count("request"));

        // The request runner acts on the reply; the approved post goes through the pipeline.
        Wait.Until(() =>
        {
            Serve(postfix);
            return _instance.Count("request") == 0 && _instance.Count("hold") == 0;
        }, TimeSpan.FromSeconds(120), "the reply to approve the held post");
        var copies = sink.WaitFor(sink.Messages().Count(m => m.Header("Message-Id") != "<via-postfix@example.net>") + Members.Length, TimeSpan.FromSeconds(90))
            .Where(m => m.Header("Message-Id") == "<via-postfix@example.net>").ToList();
        Assert.Equal(Members, copies.Select(c => Assert.Single(c.Recipients)).Order());
        Serve(postfix);
        Assert.Equal(Members.Length, sink.Messages().Count(m => m.Header("Message-Id") == "<via-postfix@example.net>"));
    }

    private PostfixInstance StartPostfix(SmtpSink sink)
    {
        _instance.CreateList(List, l => l.RespondToPostRequests = false);
        _instance.AddMembers(List, Members.Select(m => new Member(m, "")));
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.AddRole(ListName.Parse(List), ListRole.Moderator, [new Member("mo@example.com", "Mo")]);
        }

        var aliases = AliasFiles.Write(_instance.Home);
        Chown();
        return aliases.StartPostfix(sink.Port);
    }

    // Postfix's pipe runs `inject` as nobody: the instance is theirs, and so is the daemon.
    private void Chown() => AliasFiles.HandToNobody(_instance.Home);

    private void Serve(PostfixInstance postfix) => MailmanProcess.ServeUntilIdle(_instance.Home, postfix.Port, runAs: "nobody");

    private MimeMessage HoldThroughPostfix(PostfixInstance postfix, SmtpSink sink)
    {
        var post = new MimeMessage();
        post.From.Add(MailboxAddress.Parse("stranger@example.net"));
        post.To.Add(MailboxAddress.Parse(List));
        post.Subject = "Please let me post";
        post.MessageId = "via-postfix@example.net";
        post.Body = new TextPart("plain") { Text = "Hello through Postfix\n" };
        Send(postfix.Port, post);
        Wait.Until(() => _instance.Count("in") == 1, TimeSpan.FromSeconds(60), "Postfix to pipe the post into inject; log: " + postfix.Log());
        Serve(postfix);
        Assert.Equal(1, _instance.Count("hold"));
        var notice = Wait.For(() => sink.Messages().FirstOrDefault(m => m.Recipients.Contains("mo@example.com")), TimeSpan.FromSeconds(60), "the moderator notice at the sink");
        Assert.Equal("dev-bounces+mo=example.com@lists.example.org", notice.MailFrom);
        return MimeMessage.Load(new MemoryStream(notice.Content));
    }

    private static void Send(int port, MimeMessage message)
    {
        using var client = new SmtpClient();
        client.Connect("127.0.0.1", port, MailKit.Security.SecureSocketOptions.None);
        client.Send(message);
        client.Disconnect(true);
    }
}
