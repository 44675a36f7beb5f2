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
        var people = tell.Recipients(store, list);
        const string trigger = "00001764000000000-0000abcd";
        Mailman.Notices.Notice Make(Member m) => new(list, Mailman.Notices.NoticeTemplates.ModeratorSubscribe, m.Address) { Values = new Dictionary<string, string> { ["user_email"] = "x@example.net" } };

        // The out queue is not a directory: the runner's entry is retried later, uncounted.
        Directory.Delete(outDirectory, recursive: true);
        File.WriteAllText(outDirectory, "");
        try
        {
            Assert.ThrowsAny<IOException>(() => tell.Tell(store, list, people, "a test", trigger, m => (Make(m), "test " + m.Address)));
        }
        finally
        {
            File.Delete(outDirectory);
            Directory.CreateDirectory(outDirectory);
        }

        Assert.Equal(0, Counted(h, ModeratorNotices.Counter, Today(h)));

        Assert.True(tell.Tell(store, list, people, "a test", trigger, m => (Make(m), "test " + m.Address)));
        Assert.True(tell.Tell(store, list, people, "a test", trigger, m => (Make(m), "test " + m.Address))); // the run again after a crash
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
        Assert.Equal("3 requests await the moderators of dev@example.org", summary.Subject);
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
        Assert.Equal("1 requests await the moderators of dev@example.org", summaries[0].Subject);
        Assert.Contains("Subject: Offer 2", summaries[0].TextBody!, StringComparison.Ordinal);
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
