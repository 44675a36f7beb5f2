// Moderation end to end: the real daemon and verbs, Postfix's smtp-sink as the world. A held post
// tells the moderators (post attached) and the poster; approve delivers it to every member once;
// reject tells only the poster; discard tells nobody; Approved: passwords never reach members;
// owner mail reaches the owners and loops end after one message; expiry; vanished entries.
using System.Globalization;
using System.Text;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Integration;

public sealed class ModerationTests : IDisposable
{
    private const string List = "dev@example.org";
    private static readonly string[] Members = ["ann@example.com", "bob@example.com", "carol@example.com"];
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    private void CreateList(Action<MailingList>? configure = null, string[]? owners = null, string[]? moderators = null)
    {
        _instance.CreateList(List, configure);
        _instance.AddMembers(List, Members.Select(m => new Member(m, "")));
        using var store = new ListStore(_instance.Paths.Database);
        store.AddRole(ListName.Parse(List), ListRole.Owner, (owners ?? ["olga@example.com"]).Select(Member.Parse));
        store.AddRole(ListName.Parse(List), ListRole.Moderator, (moderators ?? []).Select(Member.Parse));
    }

    private ProcessResult Run(params string[] args) => MailmanProcess.Run(_instance.Home, args);

    private void Inject(string address, byte[] message, string sender)
    {
        var r = MailmanProcess.Run(_instance.Home, ["inject", address, "--sender", sender], message);
        Assert.True(r.ExitCode == 0, r.Stderr);
    }

    private static byte[] Post(string from, string messageId, string extraHeaders = "", string body = "Hello everyone.\n")
        => Encoding.UTF8.GetBytes($"From: {from}\nTo: {List}\n{extraHeaders}Subject: Moderated\nMessage-Id: <{messageId}>\n\n{body}");

    private string HeldId() => Run("held", "list").Stdout.Trim().Split('\t')[0];

    private static List<SinkMessage> CopiesOf(SmtpSink sink, string messageId)
        => sink.Messages().Where(m => m.Header("Message-Id") == $"<{messageId}>").ToList();

    private static List<SinkMessage> Notices(SmtpSink sink, string template)
        => sink.Messages().Where(m => m.Header("X-Mailman-Notice") == template).ToList();

    private string Vette() => string.Concat(Directory.GetFiles(_instance.Paths.LogsDirectory, "vette-*.log").Select(File.ReadAllText));

    [Fact]
    public void A_held_post_tells_the_moderators_and_the_poster_and_approve_delivers_it_to_every_member_once()
    {
        CreateList(owners: ["Olga <olga@example.com>"], moderators: ["mo@example.com"]);
        using var sink = SmtpSink.Start();
        Inject(List, Post("Stranger <stranger@example.net>", "held@example.net"), "stranger@example.net");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        Assert.Empty(CopiesOf(sink, "held@example.net"));
        var moderators = Notices(sink, "list:admin:action:post");
        Assert.Equal(["mo@example.com", "olga@example.com"], moderators.Select(m => Assert.Single(m.Recipients)).Order());
        foreach (var notice in moderators)
        {
            var message = MimeMessage.Load(new MemoryStream(notice.Content));
            Assert.Equal("dev-owner@example.org", message.From.Mailboxes.Single().Address);
            Assert.StartsWith("dev-confirm+", message.ReplyTo.Mailboxes.Single().Address, StringComparison.Ordinal);
            Assert.Equal($"dev-bounces+{notice.Recipients[0].Replace('@', '=')}@example.org", notice.MailFrom);
            var attached = Assert.IsType<MessagePart>(Assert.IsType<Multipart>(message.Body)[1]);
            Assert.Equal("held@example.net", attached.Message?.MessageId);
            Assert.Contains("post from non-member stranger@example.net", message.TextBody, StringComparison.Ordinal);
        }

        var poster = Assert.Single(Notices(sink, "list:user:notice:hold"));
        Assert.Equal(["stranger@example.net"], poster.Recipients);
        Assert.Equal("auto-replied", poster.Header("Auto-Submitted"));

        var id = HeldId();
        Assert.Equal(0, Run("held", "approve", id).ExitCode);
        Assert.Equal(1, Run("held", "approve", id).ExitCode);
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);
        Assert.Equal(1, Run("held", "approve", id).ExitCode);
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        var copies = CopiesOf(sink, "held@example.net");
        Assert.Equal(Members, copies.Select(c => Assert.Single(c.Recipients)).Order());
        Assert.Equal(0, _instance.Count(QueueSet.Hold));
        var vette = Vette();
        Assert.Contains($"held as {id} by nonmember-moderation", vette, StringComparison.Ordinal);
        Assert.Contains($"APPROVED: held post {id}", vette, StringComparison.Ordinal);
    }

    [Fact]
    public void Reject_tells_the_poster_why_and_nobody_else_anything_and_discard_sends_nothing()
    {
        CreateList();
        using var sink = SmtpSink.Start();
        Inject(List, Post("first@example.net", "first@example.net"), "first@example.net");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);
        var first = HeldId();
        Inject(List, Post("second@example.net", "second@example.net"), "second@example.net");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);
        var second = Run("held", "list").Stdout.Trim().Split('\n').Select(l => l.Split('\t')[0]).Single(i => i != first);
        var before = sink.Messages().Count;

        Assert.Equal(0, Run("held", "reject", first, "--reason", "This list is for members only").ExitCode);
        Assert.Equal(0, Run("held", "discard", second).ExitCode);
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        var after = sink.Messages().Skip(before).ToList();
        var rejection = Assert.Single(after);
        Assert.Equal(["first@example.net"], rejection.Recipients);
        Assert.Equal("list:user:notice:rejected", rejection.Header("X-Mailman-Notice"));
        Assert.Contains("This list is for members only", rejection.Text, StringComparison.Ordinal);
        Assert.Empty(CopiesOf(sink, "first@example.net"));
        Assert.Empty(CopiesOf(sink, "second@example.net"));
        Assert.Equal(0, _instance.Count(QueueSet.Hold));
    }

    [Fact]
    public void Approved_with_the_password_is_accepted_and_stripped_from_every_copy_and_a_wrong_one_is_held_and_never_delivered_with_it()
    {
        const string password = "c0rrect-h0rse";
        CreateList(l => l.Set("moderator_password", password));
        using var sink = SmtpSink.Start();
        var alternative = $"""
            MIME-Version: 1.0
            Content-Type: multipart/alternative; boundary="B"

            --B
            Content-Type: text/plain; charset=utf-8

            Approved: {password}

            Announcement text.
            --B
            Content-Type: text/html; charset=utf-8

            <div dir="ltr"><div>Approved: <span>{password}</span></div><div><br></div><div>Announcement text.</div></div>
            --B--

            """.Replace("\r\n", "\n", StringComparison.Ordinal);
        var raw = Encoding.UTF8.GetBytes($"From: announcer@example.net\nTo: {List}\nSubject: Announcement\nMessage-Id: <announce@example.net>\n{alternative}");
        Inject(List, raw, "announcer@example.net");
        Inject(List, Post("guesser@example.net", "guess@example.net", "Approved: not-the-password\n"), "guesser@example.net");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        var copies = CopiesOf(sink, "announce@example.net");
        Assert.Equal(Members, copies.Select(c => Assert.Single(c.Recipients)).Order());
        foreach (var copy in copies)
        {
            Assert.DoesNotContain(password, copy.Text, StringComparison.Ordinal);
            Assert.DoesNotContain("Approved:", copy.Text, StringComparison.Ordinal);
            Assert.Contains("Announcement text.", copy.Text, StringComparison.Ordinal);
        }

        Assert.Empty(CopiesOf(sink, "guess@example.net"));
        Assert.Contains("approved: the Approved: password does not match", Run("held", "show", HeldId()).Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(sink.Messages(), m => m.Text.Contains("not-the-password", StringComparison.Ordinal));
        Assert.Equal(0, Run("held", "approve", HeldId()).ExitCode);
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);
        Assert.Equal(3, CopiesOf(sink, "guess@example.net").Count);
        Assert.DoesNotContain(sink.Messages(), m => m.Text.Contains("not-the-password", StringComparison.Ordinal));
    }

    [Fact]
    public void Owner_mail_reaches_every_owner_with_the_lists_bounce_address_and_loops_end_after_one_message()
    {
        CreateList(owners: ["olga@example.com", "oscar@example.com"]);
        _instance.AddMembers(List, [new Member("dev-owner@example.org", "the owners, subscribed")]);
        using var sink = SmtpSink.Start();
        var question = Encoding.UTF8.GetBytes("From: Asker <asker@example.net>\nTo: dev-owner@example.org\nSubject: Who runs this?\nMessage-Id: <ask@example.net>\n\nHello owners.\n");
        Inject("dev-owner@example.org", question, "asker@example.net");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        var forwards = CopiesOf(sink, "ask@example.net");
        Assert.Equal(["olga@example.com", "oscar@example.com"], forwards.Select(f => Assert.Single(f.Recipients)).Order());
        Assert.All(forwards, f => Assert.Equal($"dev-bounces+{f.Recipients[0].Replace('@', '=')}@example.org", f.MailFrom));
        Assert.All(forwards, f => Assert.Equal("Asker <asker@example.net>", f.Header("From")));

        // An owner's mailbox sends everything back to dev-owner@ (a forward, or a responder that
        // keeps the headers); and the owner address is subscribed to the list, so a post reaches it.
        var returned = forwards.Single(f => f.Recipients[0] == "olga@example.com").Content;
        Inject("dev-owner@example.org", returned, "olga@example.com");
        Inject("dev-owner@example.org", Encoding.UTF8.GetBytes("From: olga@example.com\nTo: dev-owner@example.org\nSubject: Out of office\nAuto-Submitted: auto-replied\nMessage-Id: <ooo@example.com>\n\nAway.\n"), "olga@example.com");
        Inject(List, Post("ann@example.com", "member-post@example.com"), "ann@example.com");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);
        var post = CopiesOf(sink, "member-post@example.com");
        Assert.Equal(4, post.Count);
        Inject("dev-owner@example.org", post.Single(p => p.Recipients[0] == "dev-owner@example.org").Content, "dev-bounces+dev-owner=example.org@example.org");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        Assert.Equal(2, CopiesOf(sink, "ask@example.net").Count);
        Assert.Empty(CopiesOf(sink, "ooo@example.com"));
        Assert.Equal(4, CopiesOf(sink, "member-post@example.com").Count);
        Assert.Equal(3, _instance.Count(QueueSet.Bad));
        var reasons = Run("queue", "list", "bad").Stdout;
        Assert.Equal(2, reasons.Split('\n').Count(l => l.Contains("loop: it already went through dev@example.org", StringComparison.Ordinal)));
        Assert.Contains("loop: an owner's automatic reply", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public void Held_posts_past_max_days_to_hold_are_discarded_with_a_log_line_and_a_note_to_the_moderators()
    {
        CreateList(l => l.RespondToPostRequests = false, owners: ["olga@example.com"]);
        using var sink = SmtpSink.Start();
        Inject(List, Post("stranger@example.net", "old@example.net"), "stranger@example.net");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);
        var id = HeldId();

        // Three days pass for the held post.
        var hold = new Switchboard(new System.IO.Abstractions.FileSystem(), _instance.QueueDir(QueueSet.Hold), QueueSet.Hold, TimeProvider.System);
        var claim = hold.Claim(id)!;
        var metadata = hold.Load(claim).Metadata.Clone();
        metadata.HeldAt = DateTimeOffset.UtcNow.AddDays(-3);
        hold.Rewrite(claim, metadata);
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);
        Assert.Equal(1, _instance.Count(QueueSet.Hold)); // kept for ever by default

        Assert.Equal(0, Run("lists", "set", List, "max_days_to_hold", "2").ExitCode);
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);
        Assert.Equal(0, _instance.Count(QueueSet.Hold));
        var note = Assert.Single(Notices(sink, "list:admin:notice:held-expired"));
        Assert.Equal(["olga@example.com"], note.Recipients);
        Assert.Contains($"EXPIRED: held post {id}", Vette(), StringComparison.Ordinal);
        Assert.Empty(CopiesOf(sink, "old@example.net"));
    }

    [Fact]
    public void A_held_entry_deleted_under_a_running_daemon_gives_a_clear_error_and_nothing_else_breaks()
    {
        CreateList();
        using var sink = SmtpSink.Start();
        using var daemon = DaemonProcess.Start(_instance.Home, new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Queues__PollInterval"] = "00:00:00.050",
        });
        Inject(List, Post("stranger@example.net", "vanish@example.net"), "stranger@example.net");
        Wait.Until(() => _instance.Count(QueueSet.Hold) == 1 || daemon.HasExited, TimeSpan.FromSeconds(60), "the post to be held");
        var id = HeldId();
        File.Delete(Path.Combine(_instance.QueueDir(QueueSet.Hold), id + ".msg"));

        var approve = Run("held", "approve", id);
        Assert.Equal(1, approve.ExitCode);
        Assert.Contains("not held", approve.Stderr, StringComparison.Ordinal);
        Assert.Equal(67, Run("held", "show", id).ExitCode);
        Assert.Equal("", Run("held", "list").Stdout.Trim());

        Inject(List, Post("ann@example.com", "after@example.com"), "ann@example.com");
        Wait.Until(() => CopiesOf(sink, "after@example.com").Count == 3 || daemon.HasExited, TimeSpan.FromSeconds(60), "the next post to be delivered");
        Assert.False(daemon.HasExited, daemon.Output);
        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Equal(0, _instance.Count(QueueSet.Shunt) + _instance.Count(QueueSet.Bad));
    }
}
