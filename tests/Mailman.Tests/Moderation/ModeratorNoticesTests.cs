// The moderators' side of a flood and of a quiet week: held posts and subscription requests are
// told one by one up to the list's daily limit, then once that the rest waits; the daily summary
// lists everything that waits, once a day at its hour, with addresses that decide each item.
using System.Text;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Queues;
using Mailman.Tests.Runners;
using Mailman.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Mailman.Tests.Moderation;

public sealed class ModeratorNoticesTests : IDisposable
{
    private const string List = "dev@example.org";
    private static readonly ListName Dev = ListName.Parse(List);
    private readonly TempInstance _instance = new();

    public ModeratorNoticesTests()
    {
        _instance.CreateList(List, l =>
        {
            l.RespondToPostRequests = false;
            l.MaxModeratorNoticesPerDay = 3;
        });
        using var store = new ListStore(_instance.Paths.Database);
        store.AddRole(Dev, ListRole.Owner, [new Member("olga@example.com", "Olga")]);
        store.AddRole(Dev, ListRole.Moderator, [new Member("mo@example.com", "Mo")]);
    }

    public void Dispose() => _instance.Dispose();

    private static void Post(RunnerHarness h, int n)
    {
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = $"stranger{n}@example.net", Received = h.Time.GetUtcNow() },
            Encoding.UTF8.GetBytes($"From: <stranger{n}@example.net>\nTo: {List}\nSubject: Offer {n}\nMessage-Id: <offer{n}@example.net>\n\nBuy now.\n"));
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
    }

    private static List<MimeMessage> Notices(RunnerHarness h, string template)
        => RequestRunnerTests.Out(h).Where(m => (string?)m.Message.Headers["X-Mailman-Notice"] == template).Select(m => m.Message).ToList();

    private int Counted(RunnerHarness h, string counter, DateOnly day)
    {
        using var store = new ListStore(_instance.Paths.Database);
        return store.DailyCount(Dev, counter, day);
    }

    private static DateOnly Today(RunnerHarness h) => DateOnly.FromDateTime(h.Time.GetUtcNow().UtcDateTime);

    [Fact]
    public void A_flood_of_held_posts_tells_each_moderator_the_daily_limit_and_then_once_that_the_rest_waits()
    {
        using var h = new RunnerHarness(_instance);
        for (var n = 1; n <= 6; n++)
        {
            Post(h, n);
        }

        Assert.Equal(6, h.Queues[QueueSet.Hold].Pending().Count);
        var told = Notices(h, "list:admin:action:post");
        Assert.Equal(6, told.Count);
        Assert.Equal(3, told.Count(m => m.To.Mailboxes.Single().Address == "mo@example.com"));
        Assert.Equal(["stranger1@example.net", "stranger2@example.net", "stranger3@example.net"],
            told.Where(m => m.To.Mailboxes.Single().Address == "olga@example.com").Select(m => m.Subject!.Split(' ')[3]).Order(StringComparer.Ordinal));
        var notes = Notices(h, "list:admin:notice:moderator-limit");
        Assert.Equal(["mo@example.com", "olga@example.com"], notes.Select(m => m.To.Mailboxes.Single().Address).Order(StringComparer.Ordinal));
        Assert.Equal("dev@example.org: more than 3 requests for the moderators today", notes[0].Subject);
        Assert.Contains("daily summary at 08:00", notes[0].TextBody, StringComparison.Ordinal);
        Assert.Contains("confirm_then_moderate", notes[0].TextBody, StringComparison.Ordinal);
        Assert.Equal(3, h.Logs.Lines.Count(l => l.Contains("are not told of the held post", StringComparison.Ordinal)));
        Assert.Equal(6, Counted(h, ModeratorNotices.Counter, Today(h)));

        // A new day (UTC), a new count.
        RequestRunnerTests.Deliver(h);
        h.Time.Advance(TimeSpan.FromDays(1));
        Post(h, 7);
        Assert.Equal(2, Notices(h, "list:admin:action:post").Count);
        Assert.Empty(Notices(h, "list:admin:notice:moderator-limit"));
    }

    [Fact]
    public void A_flood_that_expires_is_told_within_the_same_limit()
    {
        using (var store = new ListStore(_instance.Paths.Database))
        {
            var list = store.GetList(Dev);
            list.MaxDaysToHold = 1;
            store.SaveList(list);
        }

        using var h = new RunnerHarness(_instance, o => o.Moderation.SummaryHour = -1);
        for (var n = 1; n <= 5; n++)
        {
            Post(h, n);
        }

        RequestRunnerTests.Deliver(h);
        h.Time.Advance(TimeSpan.FromDays(2));
        Assert.Equal(5, h.Expiry.Sweep());
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());
        Assert.Equal(6, Notices(h, "list:admin:notice:held-expired").Count);
        Assert.Equal(2, Notices(h, "list:admin:notice:moderator-limit").Count);
        Assert.Equal(2, h.Logs.Lines.Count(l => l.Contains("are not told of the expiry of the held post", StringComparison.Ordinal)));
    }

    [Fact]
    public void Subscription_requests_count_toward_the_same_limit_and_every_one_still_waits()
    {
        using (var store = new ListStore(_instance.Paths.Database))
        {
            var list = store.GetList(Dev);
            list.Set("subscription_policy", "moderate");
            list.MaxModeratorNoticesPerDay = 2;
            store.SaveList(list);
        }

        using var h = new RunnerHarness(_instance);
        foreach (var who in new[] { "ann", "bob", "cat", "dan" })
        {
            h.InjectRequest("dev-join@example.org", RequestRunnerTests.Mail("dev-join@example.org", from: $"{who}@example.net", id: who + "@example.net"), $"{who}@example.net");
        }

        RunnerHarness.Drain(h.Requests);
        Assert.Equal(4, h.Lists.Open().PendingRequests(Dev).Count(p => p.Kind == PendingKind.ModerateSubscription));
        var asked = Notices(h, "list:admin:action:subscribe").Select(m => m.Subject!.Split(' ')[^1]).ToList();
        Assert.Equal(4, asked.Count); // two addresses, each told to both moderators
        Assert.Equal(2, asked.Distinct(StringComparer.Ordinal).Count());
        Assert.All(asked.GroupBy(a => a, StringComparer.Ordinal), g => Assert.Equal(2, g.Count()));
        Assert.Equal(2, Notices(h, "list:admin:notice:moderator-limit").Count);
    }

    [Fact]
    public void A_notice_that_cannot_be_queued_is_not_counted_and_a_repeated_one_is_counted_once()
    {
        using var h = new RunnerHarness(_instance);
        var tell = h.Services.GetRequiredService<ModeratorNotices>();
        var outDirectory = Path.Combine(_instance.Paths.QueuesDirectory, QueueSet.Out);
        using var store = h.Lists.Open();
        var list = store.GetList(Dev);
        const string trigger = "00001764000000000-0000abcd";
        Mailman.Notices.Notice Make(Member m) => new(list, Mailman.Notices.NoticeTemplates.ModeratorSubscribe, m.Address) { Values = new Dictionary<string, string> { ["user_email"] = "x@example.net" } };

        // The out queue is not a directory: the runner's entry is retried later, uncounted.
        Directory.Delete(outDirectory, recursive: true);
        File.WriteAllText(outDirectory, "");
        try
        {
            Assert.ThrowsAny<IOException>(() => tell.Tell(store, list, "a test", trigger, m => (Make(m), "test " + m.Address)));
        }
        finally
        {
            File.Delete(outDirectory);
            Directory.CreateDirectory(outDirectory);
        }

        Assert.Equal(0, Counted(h, ModeratorNotices.Counter, Today(h)));

        Assert.False(tell.Tell(store, list, "a test", trigger, m => (Make(m), "test " + m.Address)).PastLimit);
        Assert.False(tell.Tell(store, list, "a test", trigger, m => (Make(m), "test " + m.Address)).PastLimit); // the run again after a crash
        Assert.Equal(1, Counted(h, ModeratorNotices.Counter, Today(h)));
        Assert.Equal(2, h.Queues[QueueSet.Out].Pending().Count);
    }

    [Fact]
    public void The_daily_summary_lists_what_waits_once_a_day_at_its_hour_and_its_addresses_decide()
    {
        using (var store = new ListStore(_instance.Paths.Database))
        {
            var list = store.GetList(Dev);
            list.Set("subscription_policy", "moderate");
            list.MaxModeratorNoticesPerDay = 0;
            store.SaveList(list);
        }

        _instance.CreateList("quiet@example.org"); // nothing waits: no summary
        using var h = new RunnerHarness(_instance, o => o.Moderation.SummaryHour = 13); // the harness starts at 12:00 UTC
        Post(h, 1);
        Post(h, 2);
        h.InjectRequest("dev-join@example.org", RequestRunnerTests.Mail("dev-join@example.org", from: "carl@example.net", id: "carl@example.net"), "carl@example.net");
        RunnerHarness.Drain(h.Requests);
        RequestRunnerTests.Deliver(h);

        Assert.Equal(0, h.Expiry.Sweep());
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
        Assert.Equal(new DateTimeOffset(2026, 11, 28, 13, 0, 0, TimeSpan.Zero), h.Expiry.NextSummary);
        Assert.False(h.Expiry.HasDueWork(h.Time.GetUtcNow()));

        h.Time.Advance(TimeSpan.FromHours(1));
        Assert.True(h.Expiry.HasDueWork(h.Time.GetUtcNow()));
        h.Expiry.Sweep();
        Assert.Equal(new DateTimeOffset(2026, 11, 29, 13, 0, 0, TimeSpan.Zero), h.Expiry.NextSummary);
        var summaries = Notices(h, "list:admin:notice:pending");
        Assert.Equal(["mo@example.com", "olga@example.com"], summaries.Select(m => m.To.Mailboxes.Single().Address).Order(StringComparer.Ordinal));
        var summary = summaries[0];
        Assert.Equal("Waiting for the moderators of dev@example.org: 3", summary.Subject);
        Assert.Equal("auto-generated", summary.Headers["Auto-Submitted"]);
        var text = summary.TextBody!;
        Assert.Contains("Held posts (2):", text, StringComparison.Ordinal);
        Assert.Contains("Subject: Offer 1", text, StringComparison.Ordinal);
        Assert.Matches(@"\n  From: +<?stranger2@example\.net>?\n", text);
        Assert.Contains("Subscription requests (1):", text, StringComparison.Ordinal);
        Assert.Contains("Address: carl@example.net", text, StringComparison.Ordinal);
        Assert.Contains("mailman held approve|reject|discard ", text, StringComparison.Ordinal);

        // Once a day: a second sweep, or one after a crash that lost the day's count while the
        // summaries still wait in out, sends nothing more.
        h.Expiry.Sweep();
        using (var store = h.Lists.Open())
        {
            store.UncountDaily(Dev, ModeratorSummary.Counter, Today(h));
        }

        h.Expiry.Sweep();
        Assert.Equal(2, h.Queues[QueueSet.Out].Pending().Count);

        // The addresses in the summary decide: approve the first post, the subscription.
        Assert.Equal(3, System.Text.RegularExpressions.Regex.Count(text, @"Decide:  dev-confirm\+[0-9a-f]{32}@example\.org\n"));
        string TokenAfter(string line) => System.Text.RegularExpressions.Regex.Match(text, System.Text.RegularExpressions.Regex.Escape(line) + @"\n(?:.*\n)*?  Decide:  dev-confirm\+([0-9a-f]{32})@").Groups[1].Value;
        var confirms = new[] { TokenAfter("Subject: Offer 1"), TokenAfter("Address: carl@example.net") };
        RequestRunnerTests.Deliver(h);
        foreach (var token in confirms)
        {
            h.InjectRequest($"dev-confirm+{token}@example.org",
                RequestRunnerTests.Mail($"dev-confirm+{token}@example.org", "Re: " + summary.Subject, "approve\n", from: "mo@example.com", id: token + "@example.com"), "mo@example.com");
        }

        RunnerHarness.Drain(h.Requests);
        Assert.Single(h.Queues[QueueSet.Hold].Pending());
        Assert.Single(h.Queues[QueueSet.In].Pending());
        using (var store = h.Lists.Open())
        {
            Assert.NotNull(store.FindMember(Dev, "carl@example.net"));
        }

        // The next day lists what still waits.
        RequestRunnerTests.Deliver(h);
        h.Time.Advance(TimeSpan.FromDays(1));
        h.Expiry.Sweep();
        summaries = Notices(h, "list:admin:notice:pending");
        Assert.Equal(2, summaries.Count);
        Assert.Equal("Waiting for the moderators of dev@example.org: 1", summaries[0].Subject);
        Assert.Contains("Subject: Offer 2", summaries[0].TextBody!, StringComparison.Ordinal);
    }

    // Review 54: a flood early in the day filled the summary's 100 named posts; the day's later
    // posts were counted, not named, to moderators who work by mail.
    [Fact]
    public void A_flood_does_not_crowd_the_days_other_posts_out_of_the_summary()
    {
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.AddMembers(Dev, [new Member("kim@example.com", "Kim"), new Member("lee@example.com", "Lee")]);
            store.SetModerationAction(Dev, "kim@example.com", "hold");
            store.SetModerationAction(Dev, "lee@example.com", "hold");
        }

        using var h = new RunnerHarness(_instance, o => o.Moderation.SummaryHour = 13);
        void PostFrom(string from, string subject, int n)
        {
            h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = from, Received = h.Time.GetUtcNow() },
                Encoding.UTF8.GetBytes($"From: <{from}>\nTo: {List}\nSubject: {subject}\nMessage-Id: <m{n}@example.net>\n\nText.\n"));
            Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
            h.Time.Advance(TimeSpan.FromSeconds(1));
        }

        // The flood comes from a member's address (forged, review 58: members' posts came before
        // every turn of the others').
        for (var n = 1; n <= 110; n++)
        {
            PostFrom("kim@example.com", $"Flood {n}", n);
        }

        PostFrom("late@example.net", "Late but real", 111);
        PostFrom("lee@example.com", "From a moderated member", 112);
        Assert.Equal(112, h.Queues[QueueSet.Hold].Pending().Count);

        h.Time.Advance(TimeSpan.FromHours(1));
        RequestRunnerTests.Deliver(h);
        h.Expiry.Sweep();
        var text = Notices(h, "list:admin:notice:pending")[0].TextBody!;
        Assert.Contains("Held posts (112, 100 named: each sender's oldest in turn, members' first):", text, StringComparison.Ordinal);
        Assert.Equal(100, System.Text.RegularExpressions.Regex.Count(text, @"\n  From: "));
        Assert.Contains("Subject: From a moderated member", text, StringComparison.Ordinal);
        Assert.Contains("Subject: Late but real", text, StringComparison.Ordinal);
        Assert.Contains("Subject: Flood 98\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Subject: Flood 99\n", text, StringComparison.Ordinal);
        Assert.Contains("... and 12 more: `mailman held list dev@example.org` shows every one.", text, StringComparison.Ordinal);

        // Named in the order held: the flood's oldest, then the two others.
        Assert.True(text.IndexOf("Subject: Flood 1\n", StringComparison.Ordinal) < text.IndexOf("Subject: Late but real", StringComparison.Ordinal));
    }

    // Review 54: a kill between counting an item and queueing its notices counted it twice on
    // the run after; at the limit the note past it was never sent.
    [Fact]
    public void An_item_counted_before_a_crash_is_decided_the_same_way_on_the_run_after()
    {
        using var h = new RunnerHarness(_instance);
        for (var n = 1; n <= 3; n++)
        {
            Post(h, n);
        }

        // The fourth is counted, then the process is killed before it queues anything.
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = "stranger4@example.net", Received = h.Time.GetUtcNow() },
            Encoding.UTF8.GetBytes($"From: <stranger4@example.net>\nTo: {List}\nSubject: Offer 4\nMessage-Id: <offer4@example.net>\n\nBuy now.\n"));
        var fourth = Assert.Single(h.Queues[QueueSet.In].Pending());
        using (var store = h.Lists.Open())
        {
            Assert.Equal(4, store.CountDailyOnce(Dev, ModeratorNotices.Counter, $"{fourth} the held post {fourth}", Today(h)));
        }

        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Post(h, 5);
        Assert.Equal(2, Notices(h, "list:admin:notice:moderator-limit").Count);
        Assert.Equal(5, Counted(h, ModeratorNotices.Counter, Today(h)));
    }

    // Review 54: past the limit a join with a short pending_request_life expired before any
    // summary named it; it now lives until the next summary has, and its life after.
    [Fact]
    public void A_join_past_the_limit_lives_until_the_summary_names_it()
    {
        using (var store = new ListStore(_instance.Paths.Database))
        {
            var list = store.GetList(Dev);
            list.Set("subscription_policy", "moderate");
            list.Set("pending_request_life", "12h");
            list.MaxModeratorNoticesPerDay = 1;
            store.SaveList(list);
        }

        using var h = new RunnerHarness(_instance); // 12:00 UTC; the summary at 08:00
        foreach (var who in new[] { "ann", "bob" })
        {
            h.InjectRequest("dev-join@example.org", RequestRunnerTests.Mail("dev-join@example.org", from: $"{who}@example.net", id: who + "@example.net"), $"{who}@example.net");
            RunnerHarness.Drain(h.Requests);
        }

        Assert.Equal(2, Notices(h, "list:admin:action:subscribe").Count); // ann, to both
        var untold = h.Lists.Open().PendingRequests(Dev).Single(p => p.Address == "bob@example.net");
        Assert.Equal(new DateTimeOffset(2026, 11, 29, 20, 0, 0, TimeSpan.Zero), untold.Expires);

        RequestRunnerTests.Deliver(h);
        h.Time.Advance(TimeSpan.FromHours(20)); // 08:00 the next day
        h.Expiry.Sweep();
        var summary = Notices(h, "list:admin:notice:pending")[0].TextBody!;
        Assert.Contains("Address: bob@example.net", summary, StringComparison.Ordinal);
        Assert.DoesNotContain("ann@example.net", summary, StringComparison.Ordinal); // told at once; expired at its 12 h
    }

    // Review 54: a Subject with U+2028 (or an encoded CRLF) wrote lines of its own into the
    // notice and the summary: a "Decide:" line to the attacker's address.
    [Fact]
    public void A_subject_or_sender_from_mail_never_writes_lines_into_a_notice_or_the_summary()
    {
        using var h = new RunnerHarness(_instance, o => o.Moderation.SummaryHour = 13);
        var evil = Convert.ToBase64String(Encoding.UTF8.GetBytes("hi\r\nBcc: victim@x\n  Decide:  evil-confirm@evil.test\u2028LS\u0085NEL\u2029PS"));
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = "eve@evil.test", Received = h.Time.GetUtcNow() },
            Encoding.UTF8.GetBytes($"From: =?utf-8?b?{Convert.ToBase64String(Encoding.UTF8.GetBytes("Eve\u2028  Decide:  x@evil.test"))}?= <eve@evil.test>\nTo: {List}\nSubject: =?utf-8?b?{evil}?=\nMessage-Id: <inj@x>\n\nbody\n"));
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        var notice = Notices(h, "list:admin:action:post")[0].TextBody!;
        h.Time.Advance(TimeSpan.FromHours(1));
        h.Expiry.Sweep();
        var summary = Notices(h, "list:admin:notice:pending")[0].TextBody!;
        foreach (var text in new[] { notice, summary })
        {
            Assert.DoesNotContain(text.Split('\n'), l => l.TrimStart().StartsWith("Decide:  evil", StringComparison.Ordinal) || l.StartsWith("LS", StringComparison.Ordinal)
                || l.TrimStart().StartsWith("Decide:  x@", StringComparison.Ordinal) || l.StartsWith("Bcc:", StringComparison.Ordinal));
            Assert.DoesNotContain('\u2028', text);
            Assert.DoesNotContain('\u0085', text);
        }

        Assert.Equal(1, summary.Split('\n').Count(l => l.StartsWith("  Decide:", StringComparison.Ordinal)));
    }

    // Review 54: a held post left claimed (a `held` verb killed mid-way) was left out.
    [Fact]
    public void A_held_post_left_claimed_is_in_the_summary_marked_so()
    {
        using var h = new RunnerHarness(_instance, o => o.Moderation.SummaryHour = 13);
        Post(h, 1);
        Assert.NotNull(h.Queues[QueueSet.Hold].Claim(Assert.Single(h.Queues[QueueSet.Hold].Pending())));
        RequestRunnerTests.Deliver(h);
        h.Time.Advance(TimeSpan.FromHours(1));
        h.Expiry.Sweep();
        var summary = Notices(h, "list:admin:notice:pending")[0].TextBody!;
        Assert.Contains("Subject: Offer 1", summary, StringComparison.Ordinal);
        Assert.Contains("(being acted on now, or left so by an action cut short", summary, StringComparison.Ordinal);
    }

    // Review 54: serve --exit-when-idle decided it was idle before the first sweep had queued
    // the summary, and exited with it in out.
    [Fact]
    public void Serve_exit_when_idle_sends_a_due_summary_before_it_exits()
    {
        using (var h = new RunnerHarness(_instance))
        {
            Post(h, 1); // held on 2026-11-28: before today's 00:00
            RequestRunnerTests.Deliver(h);
        }

        using var sink = SmtpSink.Start();
        var result = MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, new Dictionary<string, string> { ["Mailman__Moderation__SummaryHour"] = "0" });
        Assert.Equal(0, result.ExitCode);
        Assert.Empty(Directory.GetFiles(_instance.Paths.Queue(QueueSet.Out)));
        var received = sink.Messages();
        Assert.Equal(2, received.Count(m => m.Headers.Contains("X-Mailman-Notice: list:admin:notice:pending", StringComparison.Ordinal)));
    }

    [Fact]
    public void The_summary_hour_is_local_time_and_minus_one_sends_none()
    {
        using var h = new RunnerHarness(_instance);
        h.Time.SetLocalTimeZone(TimeZoneInfo.CreateCustomTimeZone("plus5", TimeSpan.FromHours(5), "plus5", "plus5"));
        Post(h, 1);
        RequestRunnerTests.Deliver(h);

        // 12:00 UTC is 17:00 there: today's summary (08:00, 03:00 UTC) was due before the post
        // was held; tomorrow's names it.
        h.Expiry.Sweep();
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
        Assert.Equal(new DateTimeOffset(2026, 11, 29, 3, 0, 0, TimeSpan.Zero), h.Expiry.NextSummary);
        h.Time.Advance(TimeSpan.FromHours(15));
        h.Expiry.Sweep();
        Assert.Equal(2, Notices(h, "list:admin:notice:pending").Count);
        Assert.Equal(new DateTimeOffset(2026, 11, 30, 3, 0, 0, TimeSpan.Zero), h.Expiry.NextSummary);

        using var off = new RunnerHarness(_instance, o => o.Moderation.SummaryHour = -1);
        RequestRunnerTests.Deliver(off);
        off.Time.Advance(TimeSpan.FromDays(2));
        off.Expiry.Sweep();
        Assert.Empty(off.Queues[QueueSet.Out].Pending());
        Assert.Equal(DateTimeOffset.MaxValue, off.Expiry.NextSummary);
    }

    [Theory]
    [InlineData(24)]
    [InlineData(-2)]
    public void A_summary_hour_that_is_no_hour_is_refused(int hour)
    {
        var e = Assert.Throws<InvalidOperationException>(() => new MailmanOptions
        {
            Pipeline = { Handlers = ["member-recipients"] },
            Moderation = { Chain = ["approved"], SummaryHour = hour },
        }.Validate());
        Assert.Contains("Mailman:Moderation:SummaryHour must be an hour of the day, 0-23", e.Message, StringComparison.Ordinal);
    }
}
