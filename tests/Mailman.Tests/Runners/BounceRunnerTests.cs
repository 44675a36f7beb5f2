// Component tests of bounce processing: the bounce runner and the processor against a real temp
// instance (queues on disk, SQLite) with a fake clock, mail returned as inject files it.
using System.Text;
using Mailman.Bounces;
using Mailman.Delivery;
using Mailman.Lists;
using Mailman.Notices;
using Mailman.Queues;
using Mailman.Runners;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Runners;

public sealed partial class BounceRunnerTests : IDisposable
{
    private const string List = "dev@example.org";
    private const string Owner = "owner@example.net";
    private static readonly ListName Name = ListName.Parse(List);
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    // The threshold's own mechanics are tested without probes (verp_probes false); the probe
    // tests (BounceRunnerTests.Probes.cs) keep the default.
    private void CreateList(Action<MailingList>? configure = null, int members = 3, bool owner = true, bool probes = false)
    {
        _instance.CreateList(List, l =>
        {
            l.NonMemberAction = NonMemberAction.Accept;
            l.VerpProbes = probes;
            configure?.Invoke(l);
        });
        _instance.AddMembers(List, TempInstance.NumberedMembers(members));
        if (owner)
        {
            using var store = new ListStore(_instance.Paths.Database);
            store.AddRole(Name, ListRole.Owner, [new Member(Owner, "Olga Owner")]);
        }
    }

    private MemberRecord? Member(string address)
    {
        using var store = new ListStore(_instance.Paths.Database);
        return store.FindMember(Name, address);
    }

    private static string VerpOf(string member) => Verp.Encode(Name, member);

    private static byte[] Dsn(string address, string action = "failed", string status = "5.1.1", string? original = null)
        => BounceMessages.Dsn([BounceMessages.Recipient(address, action, status)], original);

    /// <summary>Returns a DSN for <paramref name="member"/> to its VERP address and runs the bounce runner.</summary>
    private static void Bounce(RunnerHarness h, string member, byte[]? message = null)
    {
        h.InjectBounce(List, VerpOf(member), message ?? Dsn("someone-else@relay.example.net"));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
    }

    private static List<(EntryMetadata Metadata, MimeMessage Message, List<string> To)> Notices(RunnerHarness h)
    {
        var queue = h.Queues[QueueSet.Out];
        return queue.Pending().Select(name =>
        {
            var claim = new ClaimedEntry(QueueSet.Out, name, queue.PathOf(name, Switchboard.EntryExtension));
            var entry = queue.Load(claim);
            return (entry.Metadata, MimeMessage.Load(new MemoryStream(entry.Message)), queue.Recipients(entry).Select(r => r.Address).ToList());
        }).ToList();
    }

    [Fact]
    public void A_VERP_bounce_scores_the_member_it_names_at_most_once_a_day()
    {
        CreateList();
        using var h = new RunnerHarness(_instance);

        // The report names another address (a forwarder's, say): VERP decides.
        Bounce(h, "m00001@example.com");
        var m = Member("m00001@example.com")!;
        Assert.Equal(1, m.BounceScore);
        Assert.Equal(h.Time.GetUtcNow(), m.LastBounce);
        Assert.Empty(h.Queues[QueueSet.Bounces].Pending());
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith("Bounce: m00001@example.com of dev@example.org, permanent (DSN), score 1: scored (entry ", StringComparison.Ordinal));

        h.Time.Advance(TimeSpan.FromHours(11));
        Bounce(h, "m00001@example.com");
        Assert.Equal(1, Member("m00001@example.com")!.BounceScore);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("score 1: scored today already", StringComparison.Ordinal));

        h.Time.Advance(TimeSpan.FromHours(1));
        Bounce(h, "m00001@example.com");
        Assert.Equal(2, Member("m00001@example.com")!.BounceScore);
        Assert.Equal(0, Member("m00002@example.com")!.BounceScore);
    }

    [Fact]
    public void At_the_threshold_delivery_is_disabled_the_member_and_owners_are_told_and_the_next_post_skips_the_member()
    {
        CreateList(l => l.BounceScoreThreshold = 3);
        using var h = new RunnerHarness(_instance);
        for (var day = 0; day < 3; day++)
        {
            Assert.Empty(h.Queues[QueueSet.Out].Pending());
            Bounce(h, "m00001@example.com");
            h.Time.Advance(TimeSpan.FromDays(1));
        }

        var m = Member("m00001@example.com")!;
        Assert.False(m.DeliveryEnabled);
        Assert.Equal(DisabledReason.Bounces, m.DisabledReason);
        Assert.Equal(3, m.BounceScore);
        Assert.Equal(1, m.WarningsSent);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("score 3: delivery disabled", StringComparison.Ordinal));

        var notices = Notices(h);
        Assert.Equal(2, notices.Count);
        var warning = Assert.Single(notices, n => n.To.SequenceEqual(["m00001@example.com"]));
        Assert.Equal("dev-bounces@example.org", warning.Message.From.Mailboxes.Single().Address);
        Assert.Equal("dev-owner@example.org", warning.Message.ReplyTo.Mailboxes.Single().Address);
        Assert.Equal("auto-generated", warning.Message.Headers[HeaderId.AutoSubmitted]);
        Assert.Equal(NoticeTemplates.DisabledWarning, warning.Message.Headers["X-Mailman-Notice"]);
        Assert.Equal("dev-bounces+m00001=example.com@example.org", warning.Metadata.EnvelopeSender);
        Assert.Contains("bounced too often", warning.Message.TextBody, StringComparison.Ordinal);
        Assert.Contains("after 2 more warning(s)", warning.Message.TextBody, StringComparison.Ordinal);
        var owner = Assert.Single(notices, n => n.To.SequenceEqual([Owner]));
        Assert.Equal(NoticeTemplates.OwnerDisabled, owner.Message.Headers["X-Mailman-Notice"]);
        Assert.Contains("m00001@example.com", owner.Message.Subject, StringComparison.Ordinal);
        Assert.Contains("logs/bounce-DATE.log", owner.Message.TextBody, StringComparison.Ordinal); // review 70: where the reasons are
        // ... and what the last of them said, for owners who cannot read the server's log.
        Assert.Contains($"The last bounce that scored came on {h.Time.GetUtcNow().AddDays(-1):yyyy-MM-dd} and said:", owner.Message.TextBody, StringComparison.Ordinal);
        Assert.Contains("a mailed report: 5.1.1 ", owner.Message.TextBody, StringComparison.Ordinal);
        Assert.Contains("User unknown", owner.Message.TextBody, StringComparison.Ordinal);
        Assert.StartsWith("a mailed report: 5.1.1 ", m.LastBounceSaid, StringComparison.Ordinal);

        h.Inject(List, Posts.Plain());
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        var outQueue = h.Queues[QueueSet.Out];
        var post = outQueue.Pending().Select(n => outQueue.ReadMetadata(n)).Single(md => md.Purpose is null);
        Assert.Equal(2, post.RecipientCount);
    }

    [Fact]
    public void Warnings_repeat_every_interval_then_the_member_is_removed_and_the_owners_told()
    {
        CreateList(l => l.BounceScoreThreshold = 1);
        using var h = new RunnerHarness(_instance);
        Bounce(h, "m00001@example.com");
        Assert.Equal(1, Member("m00001@example.com")!.WarningsSent);

        var steps = new List<int>();
        for (var day = 1; day <= 22; day++)
        {
            h.Time.Advance(TimeSpan.FromDays(1));
            steps.Add(h.Bounces.Sweep());
        }

        // Warnings 2 and 3 on days 7 and 14, removal on day 21 (an interval after the last).
        Assert.Equal([7, 14, 21], steps.Select((n, i) => (n, day: i + 1)).Where(x => x.n > 0).Select(x => x.day));
        Assert.Null(Member("m00001@example.com"));
        Assert.NotNull(Member("m00002@example.com"));
        var notices = Notices(h);
        Assert.Equal(3, notices.Count(n => n.To.SequenceEqual(["m00001@example.com"])));
        Assert.Equal([NoticeTemplates.OwnerDisabled, NoticeTemplates.OwnerRemoved],
            notices.Where(n => n.To.SequenceEqual([Owner])).Select(n => n.Message.Headers["X-Mailman-Notice"]).Order(StringComparer.Ordinal));
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith("Bounce removal: m00001@example.com removed from dev@example.org after 3 warnings", StringComparison.Ordinal));
        Assert.Equal(0, h.Bounces.Sweep());
    }

    // Review 99: a relay refusing everyone for a while disabled 493 members in a minute, each a
    // notice to each owner. Past max_owner_bounce_notices_per_day members a day the owners get
    // one note; every member still gets their warning, and the next day counts again.
    [Fact]
    public void Past_max_owner_bounce_notices_per_day_the_owners_get_one_note_and_the_members_still_their_warnings()
    {
        CreateList(l =>
        {
            l.BounceScoreThreshold = 1;
            l.MaxOwnerBounceNoticesPerDay = 2;
        }, members: 6);
        using var h = new RunnerHarness(_instance);
        for (var i = 1; i <= 5; i++)
        {
            Bounce(h, $"m0000{i}@example.com");
        }

        List<string> ToOwner() => Notices(h).Where(n => n.To.SequenceEqual([Owner])).Select(n => n.Message.Headers["X-Mailman-Notice"] + " " + n.Message.Subject).ToList();
        var owner = ToOwner();
        Assert.Equal(3, owner.Count);
        Assert.Equal(2, owner.Count(n => n.StartsWith(NoticeTemplates.OwnerDisabled + " ", StringComparison.Ordinal)));
        Assert.Contains(NoticeTemplates.OwnerBounceLimit + " dev@example.org: more than 2 members disabled or removed by bounces today", owner);
        Assert.Equal(5, Notices(h).Count(n => n.Message.Headers["X-Mailman-Notice"] == NoticeTemplates.DisabledWarning));
        Assert.Equal(3, h.BounceLog.Lines.Count(l => l.StartsWith("Bounce: the owners of dev@example.org are not told of m0000", StringComparison.Ordinal)));
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("not told of m00003@example.com on its own: past the day's 2 members disabled or removed by bounces told one by one (max_owner_bounce_notices_per_day); each owner gets one note saying so", StringComparison.Ordinal));

        // The sweep again (a crash replay decides each member as it was): nothing more.
        Assert.Equal(0, h.Bounces.Sweep());
        Assert.Equal(3, ToOwner().Count);

        // A new day: told one by one again.
        h.Time.Advance(TimeSpan.FromDays(1));
        Bounce(h, "m00000@example.com");
        Assert.Equal(3, ToOwner().Count(n => n.StartsWith(NoticeTemplates.OwnerDisabled + " ", StringComparison.Ordinal)));
        Assert.Single(ToOwner(), n => n.StartsWith(NoticeTemplates.OwnerBounceLimit, StringComparison.Ordinal));
    }

    // Review 103: lowered during the day below what was told already, the limit silenced the
    // owners without the note (only the limit + 1st brought it).
    [Fact]
    public void A_limit_lowered_during_the_day_still_brings_the_note()
    {
        CreateList(l =>
        {
            l.BounceScoreThreshold = 1;
            l.MaxOwnerBounceNoticesPerDay = 10;
        }, members: 6);
        using var h = new RunnerHarness(_instance);
        for (var i = 0; i < 3; i++)
        {
            Bounce(h, $"m0000{i}@example.com");
        }

        using (var store = new ListStore(_instance.Paths.Database))
        {
            var list = store.FindList(Name)!;
            list.MaxOwnerBounceNoticesPerDay = 1;
            store.SaveList(list);
        }

        for (var i = 3; i < 6; i++)
        {
            Bounce(h, $"m0000{i}@example.com");
        }

        var owner = Notices(h).Where(n => n.To.SequenceEqual([Owner])).Select(n => n.Message.Headers["X-Mailman-Notice"]).ToList();
        Assert.Equal(3, owner.Count(n => n == NoticeTemplates.OwnerDisabled));
        Assert.Equal(1, owner.Count(n => n == NoticeTemplates.OwnerBounceLimit));
    }

    [Fact]
    public void With_max_owner_bounce_notices_per_day_0_the_owners_are_told_of_every_member()
    {
        CreateList(l =>
        {
            l.BounceScoreThreshold = 1;
            l.MaxOwnerBounceNoticesPerDay = 0;
        }, members: 25);
        using var h = new RunnerHarness(_instance);
        for (var i = 0; i < 25; i++)
        {
            Bounce(h, $"m{i:00000}@example.com");
        }

        Assert.Equal(25, Notices(h).Count(n => n.To.SequenceEqual([Owner]) && n.Message.Headers["X-Mailman-Notice"] == NoticeTemplates.OwnerDisabled));
    }

    // Review 100: a dead owner kept receiving notices, their bounces logged as "not a member"
    // among the others, and nobody was told.
    [Fact]
    public void A_permanent_bounce_of_a_notice_to_an_owner_is_a_warning_naming_the_owner()
    {
        CreateList();
        using var h = new RunnerHarness(_instance);
        h.InjectBounce(List, VerpOf(Owner), Dsn(Owner));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith($"Bounce: {Owner}, one of the owners of dev@example.org, bounced a notice permanently: the list's notices to that address do not arrive; check it with `mailman lists owners dev@example.org list`", StringComparison.Ordinal));
        Assert.Equal(0, Member(Owner)?.BounceScore ?? 0);

        // A member's bounce is no such line.
        Bounce(h, "m00001@example.com");
        Assert.Single(h.BounceLog.Lines, l => l.Contains("bounced a notice permanently", StringComparison.Ordinal));
    }

    [Fact]
    public void With_no_warnings_configured_the_member_is_removed_at_once_and_owner_notices_follow_the_settings()
    {
        CreateList(l =>
        {
            l.BounceScoreThreshold = 1;
            l.BounceYouAreDisabledWarnings = 0;
            l.BounceNotifyOwnerOnRemoval = false;
        });
        using var h = new RunnerHarness(_instance);
        Bounce(h, "m00001@example.com");
        Assert.Null(Member("m00001@example.com"));
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
    }

    [Fact]
    public void A_member_with_an_IDN_domain_is_found_from_the_A_labels_VERP_carries()
    {
        CreateList();
        _instance.AddMembers(List, [new Member("anne@bücher.example", "Anne")]);
        using var h = new RunnerHarness(_instance);
        Assert.Equal("dev-bounces+anne=xn--bcher-kva.example@example.org", VerpOf("anne@bücher.example"));
        Bounce(h, "anne@bücher.example");
        Assert.Equal(1, Member("anne@bücher.example")!.BounceScore);
        Assert.Empty(h.Queues[QueueSet.Unrecognized].Pending());

        // An upper-case U-label is lower-cased before IDNA, in VERP as in the member's key.
        _instance.AddMembers(List, [new Member("carl@BÜCHER.example", "Carl")]);
        Assert.Equal("dev-bounces+carl=xn--bcher-kva.example@example.org", VerpOf("carl@BÜCHER.example"));
        Bounce(h, "carl@BÜCHER.example");
        Assert.Equal(1, Member("carl@bücher.example")!.BounceScore);
        Assert.Empty(h.Queues[QueueSet.Unrecognized].Pending());
    }

    [Fact]
    public void A_stale_score_is_reset_before_the_new_bounce_counts()
    {
        CreateList();
        using var h = new RunnerHarness(_instance);
        Bounce(h, "m00001@example.com");
        h.Time.Advance(TimeSpan.FromDays(1));
        Bounce(h, "m00001@example.com");
        Assert.Equal(2, Member("m00001@example.com")!.BounceScore);
        h.Time.Advance(TimeSpan.FromDays(8));
        Bounce(h, "m00001@example.com");
        Assert.Equal(1, Member("m00001@example.com")!.BounceScore);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("score 1: stale score reset, scored", StringComparison.Ordinal));
    }

    public static TheoryData<string, string> NotBounces => new()
    {
        { "delay", "temporary: not scored" },
        { "vacation", "not a bounce: not scored" },
        { "complaint", "complaint (abuse) logged, not scored" },
        { "delivered", "not a bounce: not scored" },
        { "read receipt", "not a bounce: not scored" }, // review 49: it was unrecognized and forwarded to the owners
    };

    [Theory]
    [MemberData(nameof(NotBounces))]
    public void Delay_notices_auto_replies_and_complaints_never_score_even_with_VERP(string kind, string logged)
    {
        CreateList(l => l.BounceScoreThreshold = 1);
        using var h = new RunnerHarness(_instance);
        var message = kind switch
        {
            "delay" => Dsn("m00001@example.com", "delayed", "4.4.1"),
            "vacation" => BounceMessages.Vacation("m00001@example.com"),
            "complaint" => BounceMessages.Arf(originalTo: "m00001@example.com"),
            "read receipt" => System.Text.Encoding.UTF8.GetBytes("From: m00001@example.com\nTo: dev-bounces+m00001=example.com@example.org\nSubject: Read: hello\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n--b\nContent-Type: text/plain\n\nRead.\n--b\nContent-Type: message/disposition-notification\n\nFinal-Recipient: rfc822; m00001@example.com\nDisposition: manual-action/MDN-sent-manually; displayed\n\n--b--\n"),
            _ => Dsn("m00001@example.com", "delivered", "2.0.0"),
        };
        Bounce(h, "m00001@example.com", message);
        Assert.Equal(0, Member("m00001@example.com")!.BounceScore);
        Assert.True(Member("m00001@example.com")!.DeliveryEnabled);
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith("Bounce: m00001@example.com of dev@example.org", StringComparison.Ordinal) && l.Contains(logged, StringComparison.Ordinal));
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
        Assert.Empty(h.Queues[QueueSet.Bounces].Pending());
        Assert.Empty(h.Queues[QueueSet.Unrecognized].Pending());
    }

    [Fact]
    public void Without_VERP_the_addresses_of_the_report_score_if_they_are_members()
    {
        CreateList(l => l.Personalize = Personalization.None);
        using var h = new RunnerHarness(_instance);
        h.InjectBounce(List, "dev-bounces@example.org", BounceMessages.Dsn([
            BounceMessages.Recipient("M00001@Example.com"),
            BounceMessages.Recipient("stranger@example.net"),
            BounceMessages.Recipient("m00002@example.com"),
            BounceMessages.Recipient("m00000@example.com", "delayed", "4.2.2"),
        ]));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Equal(1, Member("m00001@example.com")!.BounceScore);
        Assert.Equal(1, Member("m00002@example.com")!.BounceScore);
        Assert.Equal(0, Member("m00000@example.com")!.BounceScore);
        var line = Assert.Single(h.BounceLog.Lines, l => l.StartsWith("Bounce:", StringComparison.Ordinal));
        Assert.Contains("M00001@Example.com scored (score 1); stranger@example.net not a member; m00002@example.com scored (score 1)", line, StringComparison.Ordinal);
        Assert.Empty(h.Queues[QueueSet.Bounces].Pending());
        Assert.Empty(h.Queues[QueueSet.Unrecognized].Pending());
    }

    // Review 49: behind Postfix every remote refusal comes back as a DSN; one DMARC p=reject
    // poster (5.7.x), a spam verdict or an oversized post (5.3.4) scored every member it reached
    // and, with verp_probes off, disabled them. A dead domain (5.4.4), Microsoft's unknown
    // recipient (5.4.1) and Postfix's status for a 550 without an enhanced code (5.0.0) still score.
    [Theory]
    [InlineData("5.7.1", false, null)]
    [InlineData("5.7.26", false, "smtp; 550-5.7.26 Unauthenticated email from example.net is not accepted due to domain's DMARC policy")]
    [InlineData("5.7.0", false, null)]
    [InlineData("5.3.4", false, "smtp; 552 5.3.4 Message size exceeds fixed limit")]
    [InlineData("5.6.0", false, null)]
    [InlineData("4.7.1", false, "smtp; 451 4.7.1 try again later")] // the reporting MTA gave up on a policy deferral
    [InlineData("5.7.23", false, "smtp; 550 5.7.23 <m00001@example.com>: Recipient address rejected: Message rejected due to: SPF fail - not authorized")] // review 51: policyd-spf
    [InlineData("4.7.1", false, "smtp; 450 4.7.1 <m00001@example.com>: Recipient address rejected: Greylisted for 300 seconds")]
    [InlineData("5.7.1", false, "smtp; 554 5.7.1 <m00001@example.com>: Relay access denied")] // review 51: most often our own smarthost
    [InlineData("5.7.64", false, "smtp; 550 5.7.64 TenantAttribution; Relay Access Denied")]
    [InlineData("5.1.8", false, "smtp; 553 5.1.8 <dev-bounces+m00001=example.com@example.org>: Sender address rejected: Domain not found")]
    [InlineData("5.1.1", false, "smtp; 550 5.1.1 <dev-bounces+m00001=example.com@example.org>: Sender address rejected: User unknown in relay recipient table")]
    [InlineData("5.0.0", false, "smtp; 554 Your access to this mail system has been rejected due to the sending MTA's poor reputation")] // review 52: IronPort, no enhanced code
    [InlineData("5.0.0", false, "smtp; 554 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.1")]
    [InlineData("5.0.0", false, "smtp; 550-Verification failed for <dev-bounces+m00001=example.com@example.org> 550 Sender verify failed")]
    [InlineData("5.0.0", false, "smtp; 553 sorry, your envelope sender has been denied (#5.7.1)")]
    [InlineData("4.0.0", false, "smtp; 554 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.1")]
    [InlineData("5.2.3", false, "smtp; 552-5.2.3 Your message exceeded Google's message size limits.")]
    [InlineData("5.2.0", false, "smtp; 554 5.2.0 STOREDRV.Submission.Exception:OutboundSpamException")]
    [InlineData("5.0.0", false, "smtp; 550-Requested action not taken: mailbox unavailable 550 invalid DNS MX or A/AAAA resource record")]
    [InlineData("5.0.0", true, "smtp; 554 delivery error: dd Not a valid recipient - atlas212.free.mail.ne1.yahoo.com")]
    [InlineData("5.0.0", true, "smtp; 554 30 Sorry, your message to m00001@example.com cannot be delivered. This mailbox is disabled (554.30)")]
    [InlineData("5.1.1", true, null)]
    [InlineData("5.2.2", true, null)]
    [InlineData("5.0.0", true, "smtp; 550 Requested action not taken: mailbox unavailable")]
    [InlineData("5.0.0", true, "smtp; 554 delivery error: dd This user doesn't have a yahoo.com account (m00001@example.com) [0] - mta1018.mail.gq1.yahoo.com")] // review 51
    [InlineData("5.4.4", true, null)]
    [InlineData("5.4.1", true, null)]
    [InlineData("5.5.0", true, "smtp; 550 5.5.0 Requested action not taken: mailbox unavailable")] // review 50: Outlook.com's unknown user
    [InlineData("5.5.2", true, null)]
    [InlineData("5.7.1", true, "smtp; 550 5.7.1 No such user!")] // Yandex
    [InlineData("5.0.0", false, "smtp; 550 Rejected: message failed DMARC check")] // review 61: no enhanced code, a policy named in words
    [InlineData("5.0.0", false, "smtp; 550 Rejected for listing in RBL")]
    [InlineData("5.0.0", false, "smtp; 550 JunkMail rejected - mx.example.net is in an RBL")]
    [InlineData("5.0.0", false, "smtp; 550 Your message was rejected because it appears to be unsolicited bulk mail")]
    [InlineData("5.0.0", false, "smtp; 553 sorry, your mail was administratively denied. (#5.7.1)")]
    [InlineData("5.0.0", false, "smtp; 550 SPF check failed")]
    [InlineData("5.0.0", false, "smtp; 550 Unauthenticated mail rejected")]
    [InlineData("5.0.0", false, "smtp; 550 Message contains a virus")]
    [InlineData("5.0.0", false, "smtp; 550 too many messages from your IP, rate limited")]
    [InlineData("5.0.0", false, "smtp; 550 Mail content denied")]
    [InlineData("5.0.0", false, "smtp; 550 Service unavailable; client host [192.0.2.1] refused (#5.7.1)")] // a code in the text says more than 5.0.0
    [InlineData("5.0.0", true, "smtp; 550 sorry, no mailbox here by that name. (#5.1.1)")]
    [InlineData("5.0.0", true, "smtp; 550 unknown or illegal user (relay 10.5.7.1, Postfix 3.5.7)")] // numbers that are no code
    [InlineData("5.0.0", true, "smtp; 550 unknown or illegal user, marbled garble")] // 'rbl' inside words is no listing
    [InlineData("5.0.0", true, "smtp; 550 unknown or illegal user at mx.rbl-free.example (spf.example.net)")] // nor in host names
    [InlineData("5.0.0", false, "smtp; 550 Rejected: listed in an RBL.")]
    [InlineData("5.1.1", true, "smtp; 550 5.1.1 <anne@junkyard.example>: Recipient address rejected: undeliverable address")] // review 62: words in names
    [InlineData("5.4.4", true, "X-Postfix; Host or domain name not found. Name service error for name=virus.org type=MX: Host not found, try again")]
    [InlineData("5.0.0", true, "smtp; 550 Unrouteable address (mx10.mailspamprotection.com [192.0.2.5])")]
    [InlineData("5.0.0", true, "smtp; 550 No such recipient here: dmarc@example.com")]
    [InlineData("5.0.0", false, "smtp; 550 Message rejected: spam detected by mx1.example.com")]
    [InlineData("5.0.0", false, "smtp; 553 https://www.spamhaus.org/query/ip/192.0.2.5")] // review 64: a blocklist named only in a name
    [InlineData("5.0.0", false, "smtp; 554 Rejected: 192.0.2.5 listed at zen.spamhaus.org")]
    [InlineData("5.0.0", false, "smtp; 550 Message rejected, see https://www.spamcop.net/bl.shtml?192.0.2.5")]
    [InlineData("5.7.1", false, "smtp; 550 5.7.1 Requested action not taken: mailbox unavailable. Your IP is on our blocklist.")] // the stock 550 text before a policy
    [InlineData("5.0.0", false, "smtp; 550 Requested action not taken: mailbox unavailable. Reject due to policy restrictions.")]
    [InlineData("5.0.0", false, "smtp; 550 High probability of spam.Message rejected")] // no space after the full stop
    [InlineData("5.0.0", false, "smtp; 554 resimta-ch2-18v.sys.comcast.net comcast 192.0.2.5 found on one or more DNSBLs, see http://postmaster.comcast.net/smtp-error-codes.php#BL000001")]
    [InlineData("5.0.0", false, "smtp; 550 Your server doesn't have a valid reverse DNS (PTR) record")]
    [InlineData("5.1.1", true, "smtp; 550 5.1.1 user unknown; see our policy at http://mx.example.com/policy")] // a code about the address decides
    [InlineData("5.3.2", false, "smtp; 550 5.3.2 Service currently unavailable")] // review 65: Postfix's postscreen refusing a listed client
    [InlineData("5.0.0", false, "smtp; 550 Access denied - Invalid HELO name (See RFC2821 4.1.1.1)")]
    [InlineData("5.0.0", false, "smtp; 554-mx.gmx.net (mxgmx017) Nemesis ESMTP Service not available 554-No SMTP service 554-Bad DNS PTR resource record. 554 For explanation visit https://postmaster.gmx.net/en/case?c=r0601")]
    [InlineData("5.0.0", false, "smtp; 554 IP=192.0.2.5 - A problem occurred. (Ask your postmaster for help or to contact tosa@rx.t-online.de to clarify.) (BL)")]
    [InlineData("5.5.2", false, "smtp; 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname")]
    [InlineData("5.2.1", false, "smtp; 521 5.2.1 :  AOL will not accept delivery of this message.")]
    [InlineData("4.0.0", false, "smtp; 421 RP-001 (BAY004-MC1F22) Unfortunately, some messages from 192.0.2.5 weren't sent. Please try again. We have limits for how many messages can be sent per hour and per day.")]
    [InlineData("4.0.0", false, "smtp; 421 mwinf5c10 ME Service refuse. Veuillez essayer plus tard. Service refused, please try later. LPN007_510")]
    [InlineData("5.0.0", false, "smtp; 550 Message refused (in reply to end of DATA command)")]
    [InlineData("5.2.2", true, "smtp; 552 5.2.2 <m00001@example.com>: Mailbox is full (in reply to end of DATA command)")] // an LMTP store at the data stage: the mailbox
    [InlineData("5.0.0", true, "smtp; 550 Recipient unknown. See our anti-spam policy at http://mx.example.com/anti-spam-policy.html")] // a policy page is no listing
    [InlineData("5.2.1", true, "smtp; 550 5.2.1 Mailbox disabled administratively")]
    public void A_mailed_report_scores_only_when_its_status_may_be_about_the_address(string status, bool scores, string? diagnostic)
    {
        CreateList(l => l.BounceScoreThreshold = 1);
        using var h = new RunnerHarness(_instance);
        Bounce(h, "m00001@example.com", BounceMessages.Dsn([BounceMessages.Recipient("m00001@example.com", status: status, diagnostic: diagnostic ?? $"smtp; 550 {status} refused")]));

        var m = Member("m00001@example.com")!;
        Assert.Equal(scores ? 1 : 0, m.BounceScore);
        Assert.Equal(!scores, m.DeliveryEnabled);
        var line = Assert.Single(h.BounceLog.Lines, l => l.StartsWith("Bounce:", StringComparison.Ordinal));
        Assert.Equal(!scores, line.Contains($"{status} is about the message or our server, not the address: not scored", StringComparison.Ordinal));
        Assert.Empty(h.Queues[QueueSet.Unrecognized].Pending());
    }

    // Review 61: qmail, Exim and old Postfix reports gave no diagnostic, so a refusal of our
    // server (a blocklist, DMARC, spam) scored the member, and a probe refused so disabled them.
    // The text each gives about the recipient is its diagnostic now; a dead mailbox still scores.
    [Theory]
    [InlineData("qmail", "Remote host said: 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", false)]
    [InlineData("qmail", "Remote host said: 550 5.7.26 Unauthenticated email is not accepted due to domain's DMARC policy", false)]
    [InlineData("qmail", "Remote host said: 550 Message rejected as spam", false)]
    [InlineData("qmail", "Sorry, no mailbox here by that name. (#5.1.1)", true)]
    [InlineData("qmail", "", true)]
    [InlineData("qmail", "Remote host said: 550 <virus-reports@example.com>... Unrouteable address", true)] // review 62: an address is no policy
    [InlineData("postfix", "550 Unrouteable address (in reply to RCPT TO command at mx1.antispamcloud.com)", true)]
    [InlineData("qmail", "Connected to 192.0.2.7 but sender was rejected. Remote host said: 550 Access denied", false)] // review 65: the session's stage before RCPT
    [InlineData("exim", "550 Access denied (after MAIL FROM:<dev-bounces@example.org> SIZE=4321)", false)]
    [InlineData("postfix", "550 Access denied (in reply to MAIL FROM command)", false)]
    [InlineData("exim", "550 5.7.1 Unauthenticated email from reject.test is not accepted due to domain's DMARC policy", false)]
    [InlineData("exim", "550 rejected because 192.0.2.1 is in a black list at zen.spamhaus.org", false)]
    [InlineData("exim", "550 5.1.1 unknown or illegal user", true)]
    [InlineData("postfix", "550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", false)]
    [InlineData("postfix", "550 5.1.1 <m00001@example.com>... User unknown", true)]
    public void A_plain_text_report_scores_only_when_what_the_remote_server_said_may_be_about_the_address(string format, string said, bool scores)
    {
        CreateList(l => l.BounceScoreThreshold = 1);
        using var h = new RunnerHarness(_instance);
        const string member = "m00001@example.com";
        var text = format switch
        {
            "qmail" => "From: MAILER-DAEMON@mx.example.com\nTo: dev-bounces@example.org\nSubject: failure notice\n\n" +
                "Hi. This is the qmail-send program at mx.example.com.\nI'm afraid I wasn't able to deliver your message to the following addresses.\n" +
                $"This is a permanent error; I've given up. Sorry it didn't work out.\n\n<{member}>:\n192.0.2.7 does not like recipient.\n{said}\n\n" +
                "--- Below this line is a copy of the message.\n\nSubject: hello\n",
            "exim" => $"From: Mail Delivery System <Mailer-Daemon@mx.example.com>\nTo: dev-bounces@example.org\nSubject: Mail delivery failed: returning message to sender\nX-Failed-Recipients: {member}\n\n" +
                "This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\n" +
                $"recipients. This is a permanent error. The following address(es) failed:\n\n  {member}\n    SMTP error from remote mail server after RCPT TO:<{member}>:\n    host mx.member.example [192.0.2.9]: {said}\n\n" +
                "------ This is a copy of the message, including all the headers. ------\n\nSubject: hello\n",
            _ => "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\nTo: dev-bounces@example.org\nSubject: Undelivered Mail Returned to Sender\n" +
                "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Description: Notification\nContent-Type: text/plain\n\n" +
                "This is the Postfix program at host mx.example.com.\n\nI'm sorry to have to inform you that the message returned\nbelow could not be delivered to one or more destinations.\n\n\t\t\tThe Postfix program\n\n" +
                $"<{member}>: host mx.member.example[192.0.2.9] said:\n    {said} (in reply to RCPT TO command)\n\n--B\nContent-Type: text/plain\n\nSubject: hello\n--B--\n",
        };
        Bounce(h, member, System.Text.Encoding.ASCII.GetBytes(text));

        var m = Member(member)!;
        Assert.Equal(scores ? 1 : 0, m.BounceScore);
        Assert.Equal(!scores, m.DeliveryEnabled);
        var line = Assert.Single(h.BounceLog.Lines, l => l.StartsWith("Bounce:", StringComparison.Ordinal));
        Assert.Equal(!scores, line.Contains("is about the message or our server, not the address: not scored", StringComparison.Ordinal));
    }

    // Review 61: a relay that returns to the VERP address in upper case scores the member, and
    // the log names the member as the list spells it.
    [Fact]
    public void A_VERP_address_returned_in_another_case_names_the_member_as_the_list_spells_it()
    {
        CreateList();
        using var h = new RunnerHarness(_instance);
        h.InjectBounce(List, VerpOf("m00001@example.com").ToUpperInvariant(), BounceMessages.Dsn([BounceMessages.Recipient("M00001@EXAMPLE.COM")]));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Equal(1, Member("m00001@example.com")!.BounceScore);
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith("Bounce: m00001@example.com of dev@example.org", StringComparison.Ordinal));
    }

    // Review 61: a list of this server is delivered here; a report naming it is forged.
    [Fact]
    public void Without_VERP_a_report_naming_a_list_of_this_server_does_not_score_it()
    {
        CreateList(l => { l.Personalize = Personalization.None; l.BounceScoreThreshold = 1; });
        _instance.CreateList("other@example.org");
        _instance.AddMembers(List, [new Member("other@example.org", "")]);
        using var h = new RunnerHarness(_instance);
        h.InjectBounce(List, "dev-bounces@example.org", BounceMessages.Dsn([BounceMessages.Recipient("other@example.org"), BounceMessages.Recipient("m00002@example.com")]));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.True(Member("other@example.org")!.DeliveryEnabled);
        Assert.Equal(0, Member("other@example.org")!.BounceScore);
        Assert.Equal(1, Member("m00002@example.com")!.BounceScore);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("1 addresses not scored: lists of this server, delivered here", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_VERP_addresses_whose_status_is_about_the_message_or_us_do_not_score()
    {
        CreateList(l => l.Personalize = Personalization.None);
        using var h = new RunnerHarness(_instance);
        h.InjectBounce(List, "dev-bounces@example.org", BounceMessages.Dsn([
            BounceMessages.Recipient("m00001@example.com", status: "5.7.1", diagnostic: "smtp; 550 5.7.1 Message rejected as spam"),
            BounceMessages.Recipient("m00002@example.com", status: "5.1.1"),
        ]));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Equal(0, Member("m00001@example.com")!.BounceScore);
        Assert.Equal(1, Member("m00002@example.com")!.BounceScore);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("m00002@example.com scored (score 1); 1 addresses not scored: 5.7.1 is about the message or our server, not the address", StringComparison.Ordinal));

        // Only such addresses: logged, done, not kept as unrecognized.
        h.InjectBounce(List, "dev-bounces@example.org", BounceMessages.Dsn([BounceMessages.Recipient("m00001@example.com", status: "5.3.4", diagnostic: "smtp; 552 5.3.4 Message size exceeds fixed limit")], boundary: "second"));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Equal(0, Member("m00001@example.com")!.BounceScore);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("1 addresses not scored: 5.3.4 is about the message or our server", StringComparison.Ordinal));
        Assert.Empty(h.Queues[QueueSet.Unrecognized].Pending());
    }

    // Review 61: an owner's mail system that returns each forward unrecognizably (no headers of
    // ours quoted) would be forwarded it again for ever; a day's forwards are bounded.
    [Fact]
    public void At_most_a_hundred_unrecognized_messages_a_day_are_forwarded_to_the_owners_and_the_rest_wait_in_unrecognized()
    {
        CreateList();
        using var h = new RunnerHarness(_instance);
        for (var i = 0; i <= BounceProcessor.UnrecognizedForwardsPerDay; i++)
        {
            h.InjectBounce(List, "dev-bounces@example.org", System.Text.Encoding.ASCII.GetBytes($"From: someone@example.net\nSubject: ??? {i}\n\nqwerty {i}\n"), sender: "someone@example.net");
        }

        RunnerHarness.Drain(h.Bounces);
        Assert.Empty(h.Queues[QueueSet.Bounces].Pending());
        Assert.Equal(BounceProcessor.UnrecognizedForwardsPerDay, Notices(h).Count(n => n.Message.Headers["X-Mailman-Notice"] == NoticeTemplates.OwnerUnrecognizedBounce));
        var kept = Assert.Single(h.Queues[QueueSet.Unrecognized].Pending());
        Assert.Contains("past the day's 100 forwards", h.Queues[QueueSet.Unrecognized].ReadState(kept)!.Error, StringComparison.Ordinal);
        Assert.Single(h.BounceLog.Lines, l => l.Contains("the day's 100 forwards to the owners are made", StringComparison.Ordinal));

        // The next day forwards again.
        h.Time.Advance(TimeSpan.FromDays(1));
        h.InjectBounce(List, "dev-bounces@example.org", "From: someone@example.net\nSubject: next\n\nqwerty\n"u8.ToArray(), sender: "someone@example.net");
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Single(h.Queues[QueueSet.Unrecognized].Pending());
        Assert.Equal(BounceProcessor.UnrecognizedForwardsPerDay + 1, Notices(h).Count(n => n.Message.Headers["X-Mailman-Notice"] == NoticeTemplates.OwnerUnrecognizedBounce));
    }

    // Review 75: the forward attached the message whole with its 3,000-character lines.
    [Fact]
    public void An_unrecognized_message_with_a_line_over_998_is_forwarded_as_its_headers()
    {
        CreateList();
        using var h = new RunnerHarness(_instance);
        h.InjectBounce(List, "dev-bounces@example.org", Encoding.ASCII.GetBytes($"From: someone@example.net\nSubject: ???\nX-Long: {new string('h', 3000)}\n\n{new string('b', 3000)}\n"), sender: "someone@example.net");
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        var forward = Assert.Single(Notices(h)).Message;
        Assert.Equal(NoticeTemplates.OwnerUnrecognizedBounce, forward.Headers["X-Mailman-Notice"]);
        Assert.Equal("text/rfc822-headers", Assert.IsType<Multipart>(forward.Body)[1].ContentType.MimeType);
        Assert.True(forward.ToString().Split('\n').All(l => l.TrimEnd('\r').Length <= 998));
    }

    // Review 73: anyone who knows a member's address can write to their bounce address; the
    // owners may choose not to read what is no bounce (Mailman's setting).
    [Fact]
    public void With_bounce_unrecognized_goes_to_list_owner_false_unrecognized_mail_is_kept_not_forwarded()
    {
        CreateList();
        using (var store = new ListStore(_instance.Paths.Database))
        {
            var list = store.GetList(Name);
            list.Set("bounce_unrecognized_goes_to_list_owner", "false");
            store.SaveList(list);
        }

        using var h = new RunnerHarness(_instance);
        h.InjectBounce(List, "dev-bounces@example.org", "From: someone@example.net\nSubject: away\n\nThanks, I'm away.\n"u8.ToArray(), sender: "someone@example.net");
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Empty(Notices(h));
        var kept = Assert.Single(h.Queues[QueueSet.Unrecognized].Pending());
        Assert.Contains("bounce_unrecognized_goes_to_list_owner is false", h.Queues[QueueSet.Unrecognized].ReadState(kept)!.Error, StringComparison.Ordinal);
        Assert.Single(h.BounceLog.Lines, l => l.Contains("not forwarded (bounce_unrecognized_goes_to_list_owner is false)", StringComparison.Ordinal));
    }

    [Fact]
    public void An_unrecognized_bounce_waits_in_unrecognized_until_the_list_has_an_owner_then_is_forwarded()
    {
        CreateList(owner: false);
        using var h = new RunnerHarness(_instance);
        var garbage = "From: someone@example.net\nSubject: ???\n\nqwerty uiop asdf\n"u8.ToArray();
        h.InjectBounce(List, "dev-bounces@example.org", garbage, sender: "someone@example.net");
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        var unrecognized = h.Queues[QueueSet.Unrecognized];
        var name = Assert.Single(unrecognized.Pending());
        Assert.Contains("no owner", unrecognized.ReadState(name)!.Error, StringComparison.Ordinal);
        Assert.Equal(QueueSet.Bounces, unrecognized.ReadState(name)!.FromQueue);
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith("Bounce: nobody of dev@example.org, unrecognized (-), score -: unrecognized and the list has no owner", StringComparison.Ordinal));
        Assert.Empty(h.Queues[QueueSet.Out].Pending());

        // The operator names an owner and sends the waiting bounces round again.
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.AddRole(Name, ListRole.Owner, [new Member(Owner, "Olga")]);
        }

        var unshunt = MailmanProcess.Run(_instance.Home, ["unshunt", "--queue", "unrecognized"]);
        Assert.True(unshunt.ExitCode == 0, unshunt.Stderr);
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Empty(unrecognized.Pending());
        var forward = Assert.Single(Notices(h));
        Assert.Equal([Owner], forward.To);
        Assert.Equal(NoticeTemplates.OwnerUnrecognizedBounce, forward.Message.Headers["X-Mailman-Notice"]);
        var attached = forward.Message.BodyParts.OfType<MessagePart>().Single();
        Assert.Equal("???", attached.Message!.Subject);
        Assert.Contains("qwerty uiop asdf", attached.Message.TextBody, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Owner)]
    [InlineData("stranger@example.net")]
    [InlineData("m00001@forged.example")]
    public void A_VERP_address_naming_a_non_member_scores_nothing_is_never_forwarded_and_is_kept(string named)
    {
        CreateList(l => l.BounceScoreThreshold = 1);
        using var h = new RunnerHarness(_instance);
        Bounce(h, named);
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
        var unrecognized = h.Queues[QueueSet.Unrecognized];
        var name = Assert.Single(unrecognized.Pending());
        Assert.Equal($"VERP names {named}, who is not a member", unrecognized.ReadState(name)!.Error);
        Assert.All(TempInstance.NumberedMembers(3), m => Assert.Equal(0, Member(m.Address)!.BounceScore));
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith($"Bounce: {named} of dev@example.org", StringComparison.Ordinal) && l.Contains("not a member", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(ListRole.Owner)]
    [InlineData(ListRole.Moderator)]
    public void Unrecognized_mail_at_the_VERP_address_of_a_member_who_is_an_owner_or_moderator_is_kept_not_forwarded(string role)
    {
        // Review 27: an owner who is also a member, with a challenge-response robot: each of its
        // replies to a forward came back at the owner's VERP address and was forwarded again.
        CreateList(l => l.BounceScoreThreshold = 1);
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.AddRole(Name, role, [new Member("m00002@example.com", "Mo")]);
        }

        using var h = new RunnerHarness(_instance);
        Bounce(h, "m00002@example.com", Text("From: Mo's robot <verify@m00002.example>\nSubject: Please verify: Unrecognized bounce for dev@example.org\n\nClick to verify.\n"));
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
        var unrecognized = h.Queues[QueueSet.Unrecognized];
        var name = Assert.Single(unrecognized.Pending());
        Assert.Contains("an owner or moderator of the list", unrecognized.ReadState(name)!.Error, StringComparison.Ordinal);
        Assert.Equal(0, Member("m00002@example.com")!.BounceScore);

        // An ordinary member's is still the owners' to read.
        Bounce(h, "m00001@example.com", Text("From: Anne <m00001@example.com>\nSubject: Re: [dev] hello\n\nThanks.\n"));
        Assert.Contains(Notices(h), n => n.To.SequenceEqual([Owner]) && n.Message.Headers["X-Mailman-Notice"] == NoticeTemplates.OwnerUnrecognizedBounce);
    }

    [Fact]
    public void A_returned_notice_never_produces_another_notice()
    {
        CreateList(l => l.BounceScoreThreshold = 1);
        using var h = new RunnerHarness(_instance);
        Bounce(h, "m00001@example.com");
        var before = h.Queues[QueueSet.Out].Pending().Count;
        Assert.Equal(2, before); // warning 1 and the owner's notice

        // The warning bounces (VERP names the disabled member): residual, nothing sent.
        var warning = Notices(h).Single(n => n.To.SequenceEqual(["m00001@example.com"]));
        var original = Encoding.UTF8.GetString(WireFormat.Flatten(warning.Message));
        Bounce(h, "m00001@example.com", Dsn("m00001@example.com", original: original));
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("delivery already disabled (residual bounce)", StringComparison.Ordinal));

        // The owner's notice bounces (VERP names the owner): logged, not kept, not forwarded.
        var ownerNotice = Notices(h).Single(n => n.To.SequenceEqual([Owner]));
        Bounce(h, Owner, Dsn(Owner, original: Encoding.UTF8.GetString(WireFormat.Flatten(ownerNotice.Message))));
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("a bounce of one of our notices: logged only", StringComparison.Ordinal));

        // Unrecognized, and without VERP, but it returns a notice: logged, never forwarded.
        var headers = original.ReplaceLineEndings("\n")[..original.ReplaceLineEndings("\n").IndexOf("\n\n", StringComparison.Ordinal)];
        h.InjectBounce(List, "dev-bounces@example.org", Encoding.UTF8.GetBytes("From: postmaster@example.net\nSubject: returned\n\nThis came back:\n\n" + headers + "\n"));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("unrecognized bounce of one of our notices", StringComparison.Ordinal));

        Assert.Equal(before, h.Queues[QueueSet.Out].Pending().Count);
        Assert.Empty(h.Queues[QueueSet.Unrecognized].Pending());
        Assert.Empty(h.Queues[QueueSet.Bounces].Pending());
    }

    [Fact]
    public void A_bounce_for_a_list_that_was_deleted_is_kept_in_bad_with_the_reason()
    {
        CreateList();
        using var h = new RunnerHarness(_instance);
        h.InjectBounce("gone@example.org", "gone-bounces+m00001=example.com@example.org", Dsn("m00001@example.com"));
        h.InjectBounce(List, VerpOf("m00002@example.com"), Dsn("m00002@example.com"));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces)); // one batch
        var bad = h.Queues[QueueSet.Bad];
        var name = Assert.Single(bad.Pending());
        Assert.Equal("bounce for gone@example.org, which does not exist", bad.ReadState(name)!.Error);
        Assert.Equal(1, Member("m00002@example.com")!.BounceScore);
    }

    [Fact]
    public void An_entry_that_names_an_invalid_list_is_shunted_and_the_rest_of_its_batch_processed()
    {
        CreateList();
        using var h = new RunnerHarness(_instance);
        h.Queues[QueueSet.Bounces].Enqueue(new EntryMetadata { List = "../etc@example.org", Received = h.Time.GetUtcNow() }, Dsn("x@example.com"));
        h.InjectBounce(List, VerpOf("m00002@example.com"), Dsn("m00002@example.com"));
        RunnerHarness.Drain(h.Bounces);
        Assert.Single(h.Queues[QueueSet.Shunt].Pending());
        Assert.Equal(1, Member("m00002@example.com")!.BounceScore);
        Assert.Empty(h.Queues[QueueSet.Bounces].Pending());
    }

    [Fact]
    public void Garbage_a_20_MB_bounce_a_bounce_of_a_bounce_and_a_DSN_naming_10000_recipients_are_processed()
    {
        // Not personalized: the reports without VERP are trusted.
        CreateList(l => l.Personalize = Personalization.None, members: 20);
        using var h = new RunnerHarness(_instance);

        // Garbage (not even a header) to a VERP address: unrecognized content, never scored even
        // though VERP names a member; forwarded to the owner.
        h.InjectBounce(List, VerpOf("m00001@example.com"), "\0\0\0\u0001 not mail at all \n\n\n"u8.ToArray());

        // 20 MB: a DSN with a 20 MB original attached.
        var big = new StringBuilder("From: x@example.org\nSubject: big\n\n");
        var line = new string('x', 999) + "\n";
        while (big.Length < 20 << 20)
        {
            big.Append(line);
        }

        h.InjectBounce(List, VerpOf("m00002@example.com"), BounceMessages.Dsn([BounceMessages.Recipient("m00002@example.com")], big.ToString()));

        // A bounce of a bounce: the outer report names m00003; the attached one names m00004.
        var inner = Encoding.UTF8.GetString(BounceMessages.Dsn([BounceMessages.Recipient("m00004@example.com")], boundary: "INNER"));
        h.InjectBounce(List, "dev-bounces@example.org", BounceMessages.Dsn([BounceMessages.Recipient("m00003@example.com")], inner, boundary: "OUTER"));

        // 10,000 recipients, 10 of them members, no VERP.
        var groups = Enumerable.Range(0, 10_000).Select(i => BounceMessages.Recipient(i % 1000 == 0 ? $"m{10 + i / 1000:D5}@example.com" : $"r{i}@elsewhere.example"));
        h.InjectBounce(List, "dev-bounces@example.org", BounceMessages.Dsn(groups));

        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));

        Assert.Equal(0, Member("m00001@example.com")!.BounceScore);
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith("Bounce: m00001@example.com of dev@example.org, unrecognized (-), score 0: unrecognized", StringComparison.Ordinal));
        Assert.Equal(1, Member("m00002@example.com")!.BounceScore);
        Assert.Equal(1, Member("m00003@example.com")!.BounceScore);
        Assert.Equal(0, Member("m00004@example.com")!.BounceScore);
        Assert.All(Enumerable.Range(10, 10), i => Assert.Equal(1, Member($"m{i:D5}@example.com")!.BounceScore));
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("and 9990 more", StringComparison.Ordinal) && l.Contains("10 scored, 9990 not a member", StringComparison.Ordinal));
        Assert.Empty(h.Queues[QueueSet.Bounces].Pending());
        Assert.Empty(h.Queues[QueueSet.Shunt].Pending());
        Assert.Empty(h.Queues[QueueSet.Bad].Pending());
    }

    [Fact]
    public void A_replayed_batch_changes_no_score_and_queues_no_second_notice()
    {
        CreateList(l => l.BounceScoreThreshold = 2);
        using var h = new RunnerHarness(_instance);
        Bounce(h, "m00001@example.com");
        h.Time.Advance(TimeSpan.FromDays(1));

        // The batch as the runner hands it over; processed, then again as after a crash before
        // its entries were finished (even hours later: the day is the bounce's arrival).
        string[] addresses = ["m00001@example.com", "m00002@example.com", "m00001@example.com"];
        var batch = addresses
            .Select((a, i) => new ReturnedMessage($"1764331200000000{i}-0000000{i}", Name, VerpOf(a),
                BounceClassifier.Classify(new MemoryStream(Dsn(a))), h.Time.GetUtcNow()))
            .ToList();
        var first = h.Processor.Process(batch);
        Assert.All(first, r => Assert.Equal(BounceDisposition.Done, r.Disposition));
        var afterFirst = (Member("m00001@example.com")!, Member("m00002@example.com")!, Notices(h).Count);
        Assert.False(afterFirst.Item1.DeliveryEnabled);
        Assert.Equal(2, afterFirst.Count);

        h.Time.Advance(TimeSpan.FromHours(6));
        var lines = h.BounceLog.Lines.Count;
        h.Processor.Process([.. batch.Select(m => m with { Replayed = true })]);
        Assert.Equal(afterFirst, (Member("m00001@example.com")!, Member("m00002@example.com")!, Notices(h).Count));

        // Its log lines say it is the same entries again (review 106: counting the log's lines
        // over-counted the bounces).
        Assert.All(h.BounceLog.Lines.Skip(lines).Where(l => l.StartsWith("Bounce: m0000", StringComparison.Ordinal)), l => Assert.Contains(", taken up again after a crash)", l, StringComparison.Ordinal));
        Assert.Contains(h.BounceLog.Lines.Skip(lines), l => l.StartsWith("Bounce: m0000", StringComparison.Ordinal));
    }

    [Fact]
    public void Bounces_are_not_processed_on_a_list_that_turned_processing_off()
    {
        CreateList(l =>
        {
            l.ProcessBounces = false;
            l.BounceScoreThreshold = 1;
        });
        using var h = new RunnerHarness(_instance);
        Bounce(h, "m00001@example.com");
        Assert.Equal(0, Member("m00001@example.com")!.BounceScore);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("process_bounces is off", StringComparison.Ordinal));
    }

    [Fact]
    public void Re_enabling_resets_the_score_and_the_warnings_and_stops_the_sweep()
    {
        CreateList(l => l.BounceScoreThreshold = 1);
        using var h = new RunnerHarness(_instance);
        Bounce(h, "m00001@example.com");
        using (var store = new ListStore(_instance.Paths.Database))
        {
            Assert.True(store.SetDelivery(Name, "m00001@example.com", DisabledReason.None, h.Time.GetUtcNow()));
        }

        var m = Member("m00001@example.com")!;
        Assert.True(m.DeliveryEnabled);
        Assert.Equal(0, m.BounceScore);
        Assert.Equal(0, m.WarningsSent);
        Assert.Null(m.LastBounce);
        h.Time.Advance(TimeSpan.FromDays(30));
        Assert.Equal(0, h.Bounces.Sweep());
        Assert.NotNull(Member("m00001@example.com"));
    }

    [Fact]
    public void Refusals_at_SMTP_time_score_through_the_same_processor()
    {
        CreateList(l => l.BounceScoreThreshold = 1, members: 4);
        using var server = ScriptedSmtpServer.Start(rcpt: a => a.StartsWith("m00001@", StringComparison.Ordinal) ? ScriptedSmtpServer.Reply(550, "5.1.1 no such user")
            : a.StartsWith("m00002@", StringComparison.Ordinal) ? ScriptedSmtpServer.Reply(450, "4.2.1 try later") : null);
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = server.Port);
        h.Inject(List, Posts.Plain());
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        Assert.True(h.Outgoing.RunOnce(CancellationToken.None));

        var m = Member("m00001@example.com")!;
        Assert.False(m.DeliveryEnabled);
        Assert.Equal(DisabledReason.Bounces, m.DisabledReason);
        Assert.Equal(0, Member("m00002@example.com")!.BounceScore); // deferred, not bounced
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith("Bounce: m00001@example.com of dev@example.org refused Message-Id post1@example.com: 550", StringComparison.Ordinal)
            && l.EndsWith("score 1: delivery disabled", StringComparison.Ordinal));
        Assert.Equal(2, Notices(h).Count); // warning 1 and the owner's notice, queued by the outgoing runner's call
        Assert.Single(h.Queues[QueueSet.Retry].Pending());
    }

    private static byte[] Text(string text) => Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\n"));

    [Fact]
    public void On_a_VERP_list_a_report_without_VERP_scores_only_members_VERP_cannot_encode()
    {
        CreateList(l => l.BounceScoreThreshold = 1); // personalize full: copies carry VERP
        _instance.AddMembers(List, [new Member("\"quoted\"@example.com", "Quoted"), new Member("lit@[192.0.2.1]", "Literal"), new Member("lit@[IPv6:2001:db8::1]", "Literal 6")]);
        using var h = new RunnerHarness(_instance);

        // A forged report to the plain address naming every member, five days running.
        for (var day = 0; day < 5; day++)
        {
            h.InjectBounce(List, "dev-bounces@example.org", BounceMessages.Dsn(TempInstance.NumberedMembers(3).Select(m => BounceMessages.Recipient(m.Address))));
            Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
            h.Time.Advance(TimeSpan.FromDays(1));
        }

        Assert.All(TempInstance.NumberedMembers(3), m => Assert.True(Member(m.Address)! is { BounceScore: 0, DeliveryEnabled: true }));
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("3 addresses not scored: the list sends with VERP and this report came without it", StringComparison.Ordinal));
        Assert.Equal(5, h.Queues[QueueSet.Unrecognized].Pending().Count);
        Assert.Empty(h.Queues[QueueSet.Out].Pending());

        // A member VERP cannot encode gets the plain sender: its bounces are still read from the report.
        h.InjectBounce(List, "dev-bounces@example.org", BounceMessages.Dsn([BounceMessages.Recipient("m00001@example.com"), BounceMessages.Recipient("\"quoted\"@example.com")]));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.False(Member("\"quoted\"@example.com")!.DeliveryEnabled);
        Assert.Equal(0, Member("m00001@example.com")!.BounceScore);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("\"quoted\"@example.com delivery disabled", StringComparison.Ordinal) && l.Contains("1 addresses not scored", StringComparison.Ordinal));

        // So are those of a member at an address literal (review 106: never recognized, each
        // report went to the owners), in a DSN and in Exim's X-Failed-Recipients.
        h.InjectBounce(List, "dev-bounces@example.org", BounceMessages.Dsn([BounceMessages.Recipient("lit@[192.0.2.1]")]));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.False(Member("lit@[192.0.2.1]")!.DeliveryEnabled);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("lit@[192.0.2.1] delivery disabled", StringComparison.Ordinal));
        h.InjectBounce(List, "dev-bounces@example.org", Text("From: Mail Delivery System <Mailer-Daemon@mx.example.com>\nTo: dev-bounces@example.org\nSubject: Mail delivery failed: returning message to sender\nX-Failed-Recipients: lit@[IPv6:2001:db8::1]\n\nThis message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n  lit@[IPv6:2001:db8::1]\n    host mx said: 550 5.1.1 unknown user\n"));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.False(Member("lit@[IPv6:2001:db8::1]")!.DeliveryEnabled);
    }

    public static TheoryData<string> NotReports => new()
    {
        "From: Anne <m00001@example.com>\nSubject: Out of Office: [dev] hello\n\nI am out until Monday.\n",
        "From: Anne <m00001@example.com>\nSubject: Abwesenheitsnotiz: [dev] hello\n\nIch bin bis Montag nicht im Büro.\n",
        "From: Anne <m00001@example.com>\nSubject: Re: [dev] hello\nIn-Reply-To: <post1@example.com>\n\nThanks, that works for me.\n",
        "From: Spam Arrest <verify@challenge.example.net>\nSubject: Please verify your e-mail address\n\nTo get your message delivered, click the link below.\n",
    };

    [Theory]
    [MemberData(nameof(NotReports))]
    public void Mail_at_a_VERP_address_that_is_no_report_is_forwarded_to_the_owners_and_never_scored(string message)
    {
        CreateList(l => l.BounceScoreThreshold = 1);
        using var h = new RunnerHarness(_instance);
        for (var day = 0; day < 3; day++)
        {
            Bounce(h, "m00001@example.com", Text(message));
            h.Time.Advance(TimeSpan.FromDays(1));
        }

        Assert.True(Member("m00001@example.com")! is { BounceScore: 0, DeliveryEnabled: true });
        var forwards = Notices(h);
        Assert.Equal(3, forwards.Count);
        Assert.All(forwards, n => Assert.Equal(NoticeTemplates.OwnerUnrecognizedBounce, n.Message.Headers["X-Mailman-Notice"]));
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith("Bounce: m00001@example.com of dev@example.org, unrecognized (-), score 0: unrecognized: not scored, forwarded to 1 owners", StringComparison.Ordinal));
    }

    private static void Deliver(RunnerHarness h)
    {
        h.Inject(List, Posts.Plain());
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        Assert.True(h.Outgoing.RunOnce(CancellationToken.None));
    }

    // Review 76: a format without a status or diagnostic (qmail's) said only "no status given".
    // Review 140: the notice's own words stand for what the remote server said; a report with no
    // words at all is kept as its format.
    [Fact]
    public void A_report_without_words_is_kept_as_its_format()
    {
        CreateList();
        using var h = new RunnerHarness(_instance);
        Bounce(h, "m00001@example.com", "From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n\nHi. This is the qmail-send program at mx.example.net.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n<m00001@example.com>:\n\n--- Below this line is a copy of the message.\n\nx\n"u8.ToArray());
        Assert.Equal("a mailed report: Hi. This is the qmail-send program at mx.example.net. I'm afraid I wasn't able to deliver your message to the following addresses. This is a permanent error; I've given up. Sorry it didn't work out. <m00001@example.com>:",
            Member("m00001@example.com")!.LastBounceSaid);

        h.Time.Advance(TimeSpan.FromDays(1));
        Bounce(h, "m00001@example.com", "From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=Q\n\n--Q\nContent-Type: text/plain\n\n--- Below this line is a copy of the message.\n--Q\nContent-Type: text/plain; name=x.txt\n\nHi. This is the qmail-send program at mx.example.net.\n\n<m00001@example.com>:\n\n--Q--\n"u8.ToArray());
        Assert.Equal("a mailed report: a permanent failure (Qmail format), no status or diagnostic given", Member("m00001@example.com")!.LastBounceSaid);
    }

    // Review 76: a multi-line refusal kept only its last line (Gmail's: a URL, not the reason),
    // and UTF-8 in it was read a byte a character.
    [Fact]
    public void A_refusal_is_kept_whole_its_lines_joined_and_its_UTF8_read_as_UTF8()
    {
        CreateList(l => l.BounceScoreThreshold = 5, members: 3);
        static string Bytes(string s) => Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(s));
        using var server = RawSmtpServer.RefusingRecipients(a => a[..6] switch
        {
            "m00000" => "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n550-5.1.1 double-checking the recipient address for typos.\r\n550 5.1.1 https://support.google.com/mail/?p=NoSuchUser x - gsmtp",
            "m00001" => Bytes("550 5.1.1 Адресат не найден"),
            _ => null,
        });
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = server.Port);
        Deliver(h);

        Assert.Equal("refused at SMTP time: 550 5.1.1 The email account that you tried to reach does not exist. Please try 5.1.1 double-checking the recipient address for typos. 5.1.1 https://support.google.com/mail/?p=NoSuchUser x - gsmtp",
            Member("m00000@example.com")!.LastBounceSaid);
        Assert.Equal("refused at SMTP time: 550 5.1.1 Адресат не найден", Member("m00001@example.com")!.LastBounceSaid);
        Assert.Null(Member("m00002@example.com")!.LastBounceSaid);
    }

    // The last column: whether the recipients wait in retry. Every recipient refused alike at
    // RCPT, or for policy, routing or the mail system, is the relay refusing us, our configuration.
    public static TheoryData<string, int, string, bool> RelayRefusals => new()
    {
        { "rcpt", 554, "5.7.1 <{0}>: Relay access denied", true }, // policy
        { "rcpt", 550, "relaying denied", true },                   // every recipient alike: the relay, whatever it says
        { "rcpt", 550, "5.7.1 sender rejected by policy", true },
        { "rcpt", 550, "5.4.4 unable to route", true },
        { "rcpt", 554, "transaction failed", true },
        { "data", 554, "5.6.0 content rejected by filter", false },
        { "data", 550, "5.1.1 no such user", false },               // after DATA: the content, whatever it says
    };

    [Theory]
    [MemberData(nameof(RelayRefusals))]
    public void Refusals_from_the_relay_that_are_not_about_the_address_score_nobody(string stage, int code, string text, bool retried)
    {
        CreateList(l => l.BounceScoreThreshold = 1, members: 4);
        using var server = stage == "rcpt"
            ? ScriptedSmtpServer.Start(rcpt: a => ScriptedSmtpServer.Reply(code, string.Format(System.Globalization.CultureInfo.InvariantCulture, text, a)))
            : ScriptedSmtpServer.Start(data: _ => ScriptedSmtpServer.Reply(code, text));
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = server.Port);
        Deliver(h); // one scored refusal would disable (threshold 1)

        Assert.All(TempInstance.NumberedMembers(4), m => Assert.True(Member(m.Address)! is { BounceScore: 0, DeliveryEnabled: true }));
        Assert.Equal(retried ? 1 : 0, h.Queues[QueueSet.Retry].Pending().Count);
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
    }

    [Fact]
    public void Refusals_at_RCPT_score_only_when_they_are_about_the_address()
    {
        CreateList(l => l.BounceScoreThreshold = 5, members: 6);
        using var server = ScriptedSmtpServer.Start(rcpt: a => a[..6] switch
        {
            "m00001" => ScriptedSmtpServer.Reply(550, "5.1.1 <" + a + ">: Recipient address rejected: User unknown"),
            "m00002" => ScriptedSmtpServer.Reply(552, "5.2.2 mailbox full"),       // 552: deferred, as RFC 5321 allows
            "m00003" => ScriptedSmtpServer.Reply(553, "mailbox name not allowed"), // plain 553: the address
            "m00004" => ScriptedSmtpServer.Reply(554, "5.7.1 <" + a + ">: Relay access denied"), // the relay's policy: waits in retry
            "m00005" => ScriptedSmtpServer.Reply(550, "5.2.1 mailbox disabled"),
            _ => null,
        });
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = server.Port);
        Deliver(h);
        Assert.Equal([0, 1, 0, 1, 0, 1], Enumerable.Range(0, 6).Select(i => Member($"m{i:D5}@example.com")!.BounceScore));
        var retry = h.Queues[QueueSet.Retry];
        var entry = retry.Load(retry.Claim(Assert.Single(retry.Pending()))!);
        Assert.Equal(["m00002@example.com", "m00004@example.com"], retry.Recipients(entry).Select(r => r.Address).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(h.BounceLog.Lines, l => l.Contains("m00004", StringComparison.Ordinal));
    }

    // A smarthost's sending quota reached mid-delivery (Gmail answers 550 5.4.5 at RCPT), or a
    // one-member list refused for policy: nothing is alike, and still nobody loses the post.
    [Theory]
    [InlineData(4, 2, "5.4.5 Daily user sending quota exceeded")]
    [InlineData(1, 0, "5.7.1 <{0}>: Relay access denied")]
    public void A_refusal_for_the_relays_quota_or_policy_waits_in_retry_even_when_not_every_recipient_has_it(int members, int accepted, string reply)
    {
        CreateList(l => l.BounceScoreThreshold = 1, members: members);
        var taken = 0;
        using var server = ScriptedSmtpServer.Start(rcpt: a => Interlocked.Increment(ref taken) > accepted
            ? ScriptedSmtpServer.Reply(550, string.Format(System.Globalization.CultureInfo.InvariantCulture, reply, a))
            : null);
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = server.Port);
        Deliver(h);

        var retry = h.Queues[QueueSet.Retry];
        var entry = retry.Load(retry.Claim(Assert.Single(retry.Pending()))!);
        Assert.Equal(members - accepted, retry.Recipients(entry).Count());
        Assert.Equal(accepted, server.Received.Count);
        Assert.True(TempInstance.NumberedMembers(members).All(m => Member(m.Address)!.BounceScore == 0));
        Assert.DoesNotContain(h.BounceLog.Lines, l => l.StartsWith("Bounce:", StringComparison.Ordinal));
        Assert.Single(h.Logs.Lines, l => l.Contains($"refused {members - accepted} of {members} recipients to dev@example.org for itself", StringComparison.Ordinal));
    }

    // The same quota answered at the end of DATA, from the third copy on (personalized: one
    // transaction a copy): the two sent went, the others wait in retry, nobody scored.
    [Fact]
    public void A_sending_quota_answered_after_DATA_waits_in_retry()
    {
        CreateList(l =>
        {
            l.BounceScoreThreshold = 1;
            l.Personalize = Personalization.Full;
        }, members: 5);
        var taken = 0;
        using var server = ScriptedSmtpServer.Start(data: _ => Interlocked.Increment(ref taken) > 2
            ? ScriptedSmtpServer.Reply(550, "5.4.5 Daily user sending quota exceeded")
            : null);
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = server.Port);
        Deliver(h);

        var retry = h.Queues[QueueSet.Retry];
        var entry = retry.Load(retry.Claim(Assert.Single(retry.Pending()))!);
        Assert.Equal(3, retry.Recipients(entry).Count());
        Assert.Equal(2, server.Received.Count);
        Assert.True(TempInstance.NumberedMembers(5).All(m => Member(m.Address)!.BounceScore == 0));
        Assert.DoesNotContain(h.BounceLog.Lines, l => l.StartsWith("Bounce:", StringComparison.Ordinal));
        var line = Assert.Single(h.Logs.Lines, l => l.Contains("refused 3 of 5 recipients to dev@example.org for itself", StringComparison.Ordinal));
        Assert.Matches(@"; Message-Id <?[^ -][^ ]*>?, queue entry [0-9a-z]", line);
    }

    // A post too big for the relay (Postfix's 552 5.3.4 at the end of DATA) is not retried: it
    // would go to every member again at every attempt for the retry lifetime. Nobody scores.
    [Fact]
    public void A_post_too_big_for_the_relay_after_DATA_is_bounced_not_retried_and_scores_nobody()
    {
        CreateList(l =>
        {
            l.BounceScoreThreshold = 1;
            l.Personalize = Personalization.Full;
        }, members: 3);
        using var server = ScriptedSmtpServer.Start(data: _ => ScriptedSmtpServer.Reply(552, "5.3.4 Message size exceeds fixed limit"));
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = server.Port);
        Deliver(h);

        Assert.Empty(h.Queues[QueueSet.Retry].Pending());
        Assert.True(TempInstance.NumberedMembers(3).All(m => Member(m.Address)!.BounceScore == 0));
        var summary = Assert.Single(h.Logs.Lines, l => l.Contains("delivered: 3 recipients, 0 delivered, 0 deferred, 3 bounced", StringComparison.Ordinal));
        Assert.Contains("(0 msg/s,", summary, StringComparison.Ordinal); // nothing went: no rate (review 68)
    }

    // 5.1.1 to all alike: a relay that takes the members' domain for its own, not four dead members.
    [Theory]
    [InlineData(Personalization.None, 554, "5.7.1 <{0}>: Relay access denied")] // one transaction of four
    [InlineData(Personalization.Full, 554, "5.7.1 <{0}>: Relay access denied")] // four transactions, the whole chunk alike
    [InlineData(Personalization.None, 550, "5.1.1 <{0}>: Recipient address rejected: User unknown in local recipient table")]
    public void A_relay_refusing_every_recipient_alike_leaves_them_waiting_in_retry_with_one_error_line(Personalization personalize, int code, string reply)
    {
        CreateList(l =>
        {
            l.BounceScoreThreshold = 1;
            l.Personalize = personalize;
        }, members: 4);
        using var server = ScriptedSmtpServer.Start(rcpt: a => ScriptedSmtpServer.Reply(code, string.Format(System.Globalization.CultureInfo.InvariantCulture, reply, a)));
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = server.Port);
        Deliver(h);

        var retry = h.Queues[QueueSet.Retry];
        var entry = retry.Load(retry.Claim(Assert.Single(retry.Pending()))!);
        Assert.Equal(TempInstance.NumberedMembers(4).Select(m => m.Address), retry.Recipients(entry).Select(r => r.Address).Order(StringComparer.Ordinal));
        Assert.True(TempInstance.NumberedMembers(4).All(m => Member(m.Address)!.BounceScore == 0));
        Assert.DoesNotContain(h.BounceLog.Lines, l => l.StartsWith("Bounce:", StringComparison.Ordinal));
        Assert.True(h.Logs.Lines.Count(l => l.Contains("refused 4 of 4 recipients to dev@example.org for itself, not for the members", StringComparison.Ordinal)
            && l.Contains(reply[..5], StringComparison.Ordinal) && l.Contains("they wait in retry", StringComparison.Ordinal)) == 1,
            string.Join("\n", h.Logs.Lines));
        Assert.DoesNotContain(h.BounceLog.Lines, l => l.Contains("the relay refuses", StringComparison.Ordinal));
    }

    // A relay answering Postfix's "550 5.1.1 User unknown" to the recipients refuse picks.
    private static ScriptedSmtpServer UserUnknown(Func<string, bool> refuse)
        => ScriptedSmtpServer.Start(rcpt: a => refuse(a) ? ScriptedSmtpServer.Reply(550, "5.1.1 <" + a + ">: Recipient address rejected: User unknown in local recipient table") : null);

    private RunnerHarness Through(ScriptedSmtpServer server, int connections) => new(_instance, o =>
    {
        o.Smtp.Port = server.Port;
        o.Smtp.Connections = connections;
    });

    // Review 99: a relay that began refusing every recipient "550 5.1.1 User unknown" in the
    // middle of a delivery (a broken recipient map) disabled the members whose chunks were in
    // flight: each such chunk saw a part of the refusals only. Now a run of RunLength (25) alike
    // refusals at once across the connections by a chunk's end, nothing accepted between, is the
    // relay's: all wait in retry, nobody scores. Both edges: the relay stops refusing (after a
    // run, on one connection too), or begins early enough in the chunks in flight (four
    // connections, a fifth of their way in) for the run to be long by their end.
    [Theory]
    [InlineData(true, 4, 20)]
    [InlineData(false, 1, 87)]
    [InlineData(false, 4, 87)]
    public void A_relay_that_begins_or_stops_refusing_everyone_in_the_middle_of_chunks_scores_nobody(bool begins, int connections, int edge)
    {
        const int members = 200;
        CreateList(l =>
        {
            l.BounceScoreThreshold = 1;
            l.Personalize = Personalization.Full;
        }, members: members);
        var taken = 0;
        using var server = UserUnknown(_ => (Interlocked.Increment(ref taken) > edge) == begins);
        using var h = Through(server, connections);
        Deliver(h);

        Assert.DoesNotContain(h.BounceLog.Lines, l => l.StartsWith("Bounce:", StringComparison.Ordinal));
        Assert.True(TempInstance.NumberedMembers(members).All(m => Member(m.Address)! is { BounceScore: 0, DeliveryEnabled: true }));
        var retry = h.Queues[QueueSet.Retry];
        var entry = retry.Load(retry.Claim(Assert.Single(retry.Pending()))!);
        var received = server.Received.Select(m => Assert.Single(m.Recipients)).ToHashSet(StringComparer.Ordinal);
        var waiting = retry.Recipients(entry).Select(r => r.Address).ToList();
        Assert.Equal(begins ? edge : members - edge, received.Count);
        Assert.Equal(members - received.Count, waiting.Count);
        Assert.Empty(waiting.Intersect(received, StringComparer.Ordinal));
    }

    // What the run spares is a relay's doing, not dead members' (review 101, against a first
    // version that waited at a chunk's end for the run to grow and counted five): six dead
    // members in a row (imported together), and a dead member ending each chunk of eight
    // connections (which all reach their chunk's end at once), still score and are not retried.
    [Theory]
    [InlineData(1, "m00020,m00021,m00022,m00023,m00024,m00025")]
    [InlineData(4, "m00020,m00021,m00022,m00023,m00024,m00025")]
    [InlineData(8, "m00024,m00049,m00074,m00099,m00124,m00149,m00174,m00199")]
    public void Dead_members_in_a_row_or_ending_each_chunk_still_score(int connections, string deadMembers)
    {
        const int members = 200;
        CreateList(l =>
        {
            l.BounceScoreThreshold = 5;
            l.Personalize = Personalization.Full;
        }, members: members);
        var dead = deadMembers.Split(',').Select(d => d + "@example.com").ToArray();
        using var server = UserUnknown(a => dead.Contains(a, StringComparer.Ordinal));
        using var h = Through(server, connections);
        Deliver(h);

        Assert.All(dead, d => Assert.Equal(1, Member(d)!.BounceScore));
        Assert.Equal(members - dead.Length, server.Received.Count);
        Assert.Empty(h.Queues[QueueSet.Retry].Pending());
    }

    // A batched list whose dead domains follow each other (one transaction each, one wording
    // with the addresses aside): each still scores.
    [Fact]
    public void Dead_domains_in_a_row_of_a_batched_list_still_score()
    {
        CreateList(l => l.BounceScoreThreshold = 5, members: 0);
        var dead = Enumerable.Range(0, 8).SelectMany(d => new[] { $"a@dead{d}.example", $"b@dead{d}.example" }).ToArray();
        var live = Enumerable.Range(0, 30).Select(d => $"x@live{d}.example").ToArray();
        _instance.AddMembers(List, [.. dead.Concat(live).Select(a => new Member(a, ""))]);
        using var server = UserUnknown(a => a.Contains("@dead", StringComparison.Ordinal));
        using var h = Through(server, 1);
        Deliver(h);

        Assert.All(dead, d => Assert.Equal(1, Member(d)!.BounceScore));
        Assert.Empty(h.Queues[QueueSet.Retry].Pending());
    }

    [Fact]
    public void A_100_MB_unrecognized_bounce_is_forwarded_as_its_headers_and_start_only()
    {
        CreateList();
        using var h = new RunnerHarness(_instance);
        const long size = 100L << 20;
        var line = Encoding.ASCII.GetBytes(new string('x', 999) + "\n");
        h.Queues[QueueSet.Bounces].Enqueue(new EntryMetadata { List = List, Received = h.Time.GetUtcNow(), Destination = "dev-bounces@example.org", Sender = "postmaster@example.net" }, stream =>
        {
            stream.Write("From: postmaster@example.net\nSubject: huge and odd\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\nSomething went wrong.\n\n--B\nContent-Type: application/octet-stream\n\n"u8);
            for (long n = 0; n < size; n += line.Length)
            {
                stream.Write(line);
            }

            stream.Write("\n--B--\n"u8);
        }, null);

        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Empty(h.Queues[QueueSet.Bounces].Pending());
        Assert.Empty(h.Queues[QueueSet.Unrecognized].Pending());
        var outQueue = h.Queues[QueueSet.Out];
        var name = Assert.Single(outQueue.Pending());
        Assert.True(outQueue.ReadMetadata(name).MessageLength < 2 * BounceRunner.ForwardLimit, $"forward is {outQueue.ReadMetadata(name).MessageLength} bytes");
        var forward = Assert.Single(Notices(h));
        Assert.Equal([Owner], forward.To);
        var text = forward.Message.BodyParts.OfType<MimePart>().Select(p =>
        {
            using var content = new MemoryStream();
            p.Content?.DecodeTo(content);
            return Encoding.UTF8.GetString(content.ToArray());
        }).ToList();
        Assert.Contains(text, t => t.Contains("too large to forward whole", StringComparison.Ordinal));
        Assert.Contains("Subject: huge and odd", forward.Message.ToString(), StringComparison.Ordinal); // text/rfc822-headers
        Assert.Contains(text, t => t.Contains("Something went wrong.", StringComparison.Ordinal));
    }

    [Fact]
    public void Entries_kept_in_unrecognized_are_deleted_after_UnrecognizedKeepDays_with_a_log_line()
    {
        CreateList();
        using var h = new RunnerHarness(_instance);
        Assert.Equal(30, h.Options.Bounces.UnrecognizedKeepDays);
        Bounce(h, "stranger@example.net");
        var unrecognized = h.Queues[QueueSet.Unrecognized];
        var name = Assert.Single(unrecognized.Pending());

        h.Time.Advance(TimeSpan.FromDays(29));
        h.Bounces.Sweep();
        Assert.Single(unrecognized.Pending());

        // A directory where an older one's claim goes (review 46): that one is left for the
        // operator, the sweep goes on with the others.
        var older = unrecognized.Enqueue(new EntryMetadata { List = "dev@example.org" }, "x"u8, name: "00000000000000001-aaaaaaa1");
        var blocker = Path.Combine(_instance.QueueDir(QueueSet.Unrecognized), older + ".bak");
        Directory.CreateDirectory(blocker);
        h.Time.Advance(TimeSpan.FromDays(1));
        h.Bounces.Sweep();
        Assert.Equal([older], unrecognized.Pending());
        Assert.DoesNotContain(h.BounceLog.Lines, l => l.Contains("failed", StringComparison.Ordinal));

        Directory.Delete(blocker);
        h.Bounces.Sweep();
        Assert.Empty(unrecognized.Pending());
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith($"Bounce: entry {name} of dev@example.org kept in unrecognized since", StringComparison.Ordinal)
            && l.Contains("VERP names stranger@example.net, who is not a member", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_sweep_that_failed_at_start_is_tried_again_a_minute_later_not_an_hour()
    {
        CreateList(l => l.BounceScoreThreshold = 1);
        using var h = new RunnerHarness(_instance);
        Bounce(h, "m00001@example.com");
        Assert.Equal(1, Member("m00001@example.com")!.WarningsSent);
        h.Time.Advance(TimeSpan.FromDays(7)); // warning 2 is due

        // The out queue cannot be written (as on a full disk): the start-up sweep fails.
        var outDir = _instance.QueueDir(QueueSet.Out);
        Directory.Move(outDir, outDir + ".away");
        File.WriteAllText(outDir, "not a directory");
        using var stop = new CancellationTokenSource();
        await h.Bounces.StartAsync(stop.Token);
        try
        {
            Assert.Equal(1, Member("m00001@example.com")!.WarningsSent);
            Assert.Contains(h.BounceLog.Lines, l => l.StartsWith("Bounce sweep failed", StringComparison.Ordinal));
            Assert.Equal(BounceRunner.SweepRetry, h.Bounces.NextSweepDelay);

            File.Delete(outDir);
            Directory.Move(outDir + ".away", outDir);

            // The fake clock moves in steps of 5 s, never as far as the interval: only the retry
            // can come. (Not capped at two minutes: under load the sweep loop may arm its timer
            // after the first minutes have been advanced, and then waits a minute from there.)
            var step = TimeSpan.FromSeconds(5);
            var advanced = TimeSpan.Zero;
            Wait.Until(() =>
            {
                if (advanced + step < h.Options.Bounces.SweepInterval)
                {
                    h.Time.Advance(step);
                    advanced += step;
                }

                return Member("m00001@example.com")!.WarningsSent == 2;
            }, TimeSpan.FromSeconds(60), "the sweep to be retried");
            Assert.Equal(h.Options.Bounces.SweepInterval, h.Bounces.NextSweepDelay);
        }
        finally
        {
            stop.Cancel();
            await h.Bounces.StopAsync(CancellationToken.None);
        }
    }
}
