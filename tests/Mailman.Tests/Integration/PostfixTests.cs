// README's "Run it behind Postfix", for real: a private Postfix on loopback configured with the
// files `mailman aliases` writes, piping posts into `mailman inject`, the daemon delivering back
// through Postfix, Postfix relaying to smtp-sink.
using System.Globalization;
using Mailman.Lists;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Integration;

public sealed class PostfixTests : IDisposable
{
    private const string List = "dev@lists.example.org";
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void Posts_flow_through_Postfix_into_inject_and_back_out_personalized_and_errors_map_to_bounce_and_defer()
    {
        CreateList(members: 20);
        using var sink = SmtpSink.Start();

        var aliases = AliasFiles.Write(_instance.Home);
        Assert.Contains("dev-bounces@lists.example.org\tmailmanq:", File.ReadAllText(aliases.Transport), StringComparison.Ordinal);

        // A map that still names a list deleted since: Postfix pipes, inject answers 67.
        File.AppendAllText(aliases.Transport, "gone@lists.example.org\tmailmanq:\n");
        AliasFiles.HandToNobody(_instance.Home);
        using var postfix = aliases.StartPostfix(sink.Port);

        Send(postfix, "poster@example.com", List, "post-1@example.com");
        Wait.Until(() => _instance.Count("in") == 1, TimeSpan.FromSeconds(60), "Postfix to pipe the post into inject; log: " + postfix.Log());

        MailmanProcess.ServeUntilIdle(_instance.Home, postfix.Port, runAs: "nobody");
        var copies = sink.WaitFor(20, TimeSpan.FromSeconds(90));
        Assert.Equal(20, copies.Count);
        foreach (var m in copies)
        {
            var rcpt = Assert.Single(m.Recipients);
            var local = rcpt.Split('@')[0];
            Assert.Equal($"dev-bounces+{local}=example.com@lists.example.org", m.MailFrom);
            Assert.EndsWith($"<{rcpt}>", m.Header("To"), StringComparison.Ordinal);
            Assert.Contains($"to {rcpt}", m.Body, StringComparison.Ordinal);
        }

        // Unknown list: inject exits 67 (EX_NOUSER), Postfix bounces with a 5.x.x status.
        Send(postfix, "poster@example.com", "gone@lists.example.org", "post-2@example.com");
        var bounce = Wait.For(() => sink.Messages().FirstOrDefault(m => m.Recipients.Contains("poster@example.com")), TimeSpan.FromSeconds(60), "the bounce at the sink");
        Assert.Matches(@"Status: 5\.\d\.\d", bounce.Text);
        Assert.Contains("status=bounced", postfix.Log(), StringComparison.Ordinal);

        // The queue cannot be written: inject exits 75 (EX_TEMPFAIL), Postfix defers and keeps the post.
        var queueIn = _instance.QueueDir("in");
        Directory.Delete(queueIn, recursive: true);
        File.WriteAllText(queueIn, "not a directory");
        Send(postfix, "poster@example.com", List, "post-3@example.com");
        Wait.Until(() => postfix.Log().Contains("status=deferred", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "Postfix to defer");
        Assert.Contains(List, postfix.Queue(), StringComparison.Ordinal);
        Assert.DoesNotContain("post-3", sink.Messages().Select(m => m.Text).Where(t => t.Contains("Status: 5", StringComparison.Ordinal)));
    }

    // Debian's Mailman 2.1 sites run the pipe with flags=FR or DRhu and no --sender: Postfix
    // prepends an mbox From_ line, Return-Path: and Delivered-To:, and inject takes the envelope
    // sender from them.
    [Theory]
    [InlineData("FRq")]
    [InlineData("DRhu")]
    public void Debian_pipe_flags_are_accepted_and_give_the_envelope_sender(string flags)
    {
        CreateList(members: 1);
        using var sink = SmtpSink.Start();
        var aliases = AliasFiles.Write(_instance.Home);
        Assert.Contains("flags=X ", aliases.MasterCf, StringComparison.Ordinal);
        Assert.Contains(" --sender=${sender} -- ${recipient}", aliases.MasterCf, StringComparison.Ordinal);
        var masterCf = aliases.MasterCf.Replace("flags=X ", $"flags={flags} ", StringComparison.Ordinal).Replace(" --sender=${sender} ", " ", StringComparison.Ordinal);
        AliasFiles.HandToNobody(_instance.Home);
        using var postfix = aliases.StartPostfix(sink.Port, masterCf: masterCf);

        Send(postfix, "poster@example.com", List, "flags-1@example.com");
        Wait.Until(() => _instance.Count("in") == 1, TimeSpan.FromSeconds(60), "Postfix to pipe the post into inject; log: " + postfix.Log());
        Wait.Until(() => postfix.Log().Contains("status=sent", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "Postfix to log the pipe's success; log: " + postfix.Log());
        var entry = File.ReadAllText(Assert.Single(Directory.GetFiles(_instance.QueueDir("in"), "*.msg")));
        Assert.Contains("\"Sender\":\"poster@example.com\"", entry, StringComparison.Ordinal);
        Assert.DoesNotContain("\nFrom poster@example.com", entry, StringComparison.Ordinal);
        Assert.Contains("Return-Path: <poster@example.com>", entry, StringComparison.Ordinal);
        if (flags.Contains('D', StringComparison.Ordinal))
        {
            Assert.Contains("Delivered-To: dev@lists.example.org", entry, StringComparison.Ordinal);
        }

        // The daemon delivers it as any post, the VERP sender its own.
        MailmanProcess.ServeUntilIdle(_instance.Home, postfix.Port, runAs: "nobody");
        var copy = Assert.Single(sink.WaitFor(1, TimeSpan.FromSeconds(90)));
        Assert.StartsWith("dev-bounces+", copy.MailFrom, StringComparison.Ordinal);
    }

    // The test support's own promise: a submission Postfix does not take is thrown with what the
    // instance was doing (CI once saw its reply to DATA never come, and nothing to look at).
    [Fact]
    public void A_submission_Postfix_refuses_is_thrown_with_its_processes_queue_and_log()
    {
        using var sink = SmtpSink.Start();
        using var postfix = PostfixInstance.Create(sink.Port, "smtpd_recipient_restrictions = reject\n", "");
        postfix.Start();

        var e = Assert.Throws<InvalidOperationException>(() => Send(postfix, "poster@example.com", List, "refused-1@example.com"));

        Assert.Contains("did not take refused-1@example.com", e.Message, StringComparison.Ordinal);
        Assert.Matches(@"\n  \d+ [RSD] \S* .*master", e.Message);
        Assert.Contains("queue: ", e.Message, StringComparison.Ordinal);
        Assert.Contains("log tail:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void With_PreferBdat_copies_go_to_Postfix_as_BDAT_and_arrive_intact()
    {
        CreateList(members: 5);
        using var sink = SmtpSink.Start();
        using var postfix = PostfixInstance.Create(sink.Port, "", "");
        postfix.Start();
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", List], Posts.Plain(to: List)).ExitCode);

        MailmanProcess.ServeUntilIdle(_instance.Home, postfix.Port, new Dictionary<string, string> { ["Mailman__Smtp__PreferBdat"] = "true" });

        var copies = sink.WaitFor(5, TimeSpan.FromSeconds(90));
        Assert.Equal(5, copies.Count);
        foreach (var m in copies)
        {
            var rcpt = Assert.Single(m.Recipients);
            Assert.EndsWith($"<{rcpt}>", m.Header("To"), StringComparison.Ordinal);
            Assert.Contains("\n.leading dot\n..two dots\nbye\n", m.Body, StringComparison.Ordinal);
            Assert.Contains($"to {rcpt}", m.Body, StringComparison.Ordinal);
        }

        // Postfix counts the commands of each session: the copies came as BDAT, never DATA.
        var sessions = postfix.Log().Split('\n').Where(l => l.Contains("disconnect from", StringComparison.Ordinal) && l.Contains("mail=", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(sessions);
        Assert.All(sessions, l => Assert.Matches(@" bdat=\d+", l));
        Assert.All(sessions, l => Assert.DoesNotContain(" data=", l, StringComparison.Ordinal));
    }

    // Review 113: a copy sent with SMTPUTF8 whose header block is raw UTF-8 is one Postfix
    // returns as undeliverable to a next hop without SMTPUTF8 (smtp-sink offers none); sent
    // without the flag, as every copy of such a post is, Postfix delivers it.
    [Fact]
    public void A_post_with_a_raw_UTF_8_header_goes_through_Postfix_to_a_next_hop_without_SMTPUTF8()
    {
        CreateList(members: 3);
        using var sink = SmtpSink.Start();
        using var postfix = PostfixInstance.Create(sink.Port, "", "");
        postfix.Start();
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", List], Posts.Plain(from: "jörg@bücher.example", subject: "Grüße", to: List)).ExitCode);

        MailmanProcess.ServeUntilIdle(_instance.Home, postfix.Port);

        var copies = sink.WaitFor(3, TimeSpan.FromSeconds(90));
        Assert.Equal(3, copies.Count);
        Assert.All(copies, m => Assert.Contains("jörg@bücher.example", m.Headers, StringComparison.Ordinal)); // raw UTF-8, as it came
        Assert.DoesNotContain("SMTPUTF8", postfix.Log(), StringComparison.Ordinal);
    }

    // An open list whose footer names each copy's recipient.
    private void CreateList(int members)
    {
        _instance.CreateList(List, l =>
        {
            l.NonMemberAction = NonMemberAction.Accept;
            l.FooterTemplate = "to $user_address";
        });
        _instance.AddMembers(List, TempInstance.NumberedMembers(members));
    }

    private static void Send(PostfixInstance postfix, string from, string to, string messageId)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(from));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = "via postfix";
        message.MessageId = messageId;
        message.Body = new TextPart("plain") { Text = "Hello through Postfix\n" };
        postfix.Submit(message);
    }
}
