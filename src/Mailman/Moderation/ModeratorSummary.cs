// The daily summary to the owners and moderators of what awaits them: every held post and every
// subscription waiting for their approval, each with the address a reply decides it at and the
// command that does on the server (Mailman 2.1's checkdbs, Mailman 3's `mailman notify`). It
// goes once a day at Mailman:Moderation:SummaryHour, local time, or at the first sweep after it
// when the daemon was not running then. It names what was waiting at the hour (what came since
// was told at once, or waits for the next one); a list with nothing waiting gets nothing. The notices
// are named by the list and the day, and the day is counted in the database after they are
// queued: a crash between the two repeats none that is still queued.
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Notices;
using Mailman.Queues;
using Mailman.Requests;
using Microsoft.Extensions.Logging;

namespace Mailman.Moderation;

public sealed class ModeratorSummary(
    ListStoreFactory lists, HeldPosts held, ModeratorNotices moderators, NoticeSender notices, ConfirmationTokens tokens, MailmanOptions options, TimeProvider time,
    ILogger<ModeratorSummary> logger)
{
    /// <summary>The list's daily counter: 1 once the day's summary was considered.</summary>
    public const string Counter = "moderator-summary";

    /// <summary>Items of each kind a summary names; the rest it counts.</summary>
    public const int MaxItems = 100;

    /// <summary>When the next summary falls due after <paramref name="now"/>; MaxValue when there is none.</summary>
    public DateTimeOffset NextAfter(DateTimeOffset now) => NextAfter(options.Moderation.SummaryHour, time.LocalTimeZone, now);

    /// <summary>When the summary at <paramref name="hour"/> (-1: none) in <paramref name="zone"/> next falls due after <paramref name="now"/>.</summary>
    public static DateTimeOffset NextAfter(int hour, TimeZoneInfo zone, DateTimeOffset now)
    {
        if (hour < 0)
        {
            return DateTimeOffset.MaxValue;
        }

        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, zone).DateTime);
        var at = ScheduledAt(hour, zone, today);
        return at > now ? at : ScheduledAt(hour, zone, today.AddDays(1));
    }

    /// <summary>Sends today's summaries if they are due and not sent yet.</summary>
    /// <returns>How many lists' summaries were sent.</returns>
    /// <exception cref="IOException">The out queue cannot be written (the sweep tries again).</exception>
    public int SendDue()
    {
        if (options.Moderation.SummaryHour < 0)
        {
            return 0;
        }

        var now = time.GetUtcNow();
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, time.LocalTimeZone).DateTime);
        var scheduled = ScheduledAt(options.Moderation.SummaryHour, time.LocalTimeZone, today);
        if (scheduled > now)
        {
            return 0;
        }

        ILookup<string, HeldPost>? posts = null;
        var sent = 0;
        using var store = lists.Open();
        foreach (var list in store.AllLists())
        {
            if (store.DailyCount(list.Name, Counter, today) > 0)
            {
                continue;
            }

            posts ??= held.List().ToLookup(p => p.List, StringComparer.OrdinalIgnoreCase);
            var waitingPosts = posts[list.Name.Fqdn].Where(p => p.HeldAt < scheduled).ToList();
            var joins = store.PendingRequests(list.Name).Where(p => p.Kind == PendingKind.ModerateSubscription && p.Created < scheduled && p.Expires > now).ToList();
            if (waitingPosts.Count + joins.Count > 0 && Send(store, list, today, scheduled, now, waitingPosts, joins))
            {
                sent++;
            }

            store.CountDaily(list.Name, Counter, today);
        }

        return sent;
    }

    private bool Send(ListStore store, MailingList list, DateOnly day, DateTimeOffset scheduled, DateTimeOffset now, List<HeldPost> posts, List<PendingRequest> joins)
    {
        var people = moderators.Recipients(store, list);
        if (people.Count == 0)
        {
            logger.LogWarning("{ListId} has {Posts} held posts and {Joins} subscription requests waiting and nobody to tell: `mailman held list` and `mailman pending list` show them",
                list.Name.Fqdn, posts.Count, joins.Count);
            return false;
        }

        var text = Requests(list, Named(store, list.Name, posts), posts.Count, joins, now);
        var trigger = TriggerName(list.Name, scheduled);
        foreach (var person in people)
        {
            notices.Send(new Notice(list, NoticeTemplates.ModeratorSummary, person.Address)
            {
                ToName = person.DisplayName,
                From = list.Name.OwnerAddress,
                Values = new Dictionary<string, string>
                {
                    ["count"] = (posts.Count + joins.Count).ToString(CultureInfo.InvariantCulture),
                    ["requests"] = text,
                },
            }, trigger, "moderator summary " + person.Address.ToLowerInvariant());
        }

        logger.LogInformation("Summary of {Day}: {Posts} held posts and {Joins} subscription requests of {ListId} told to {People} owners and moderators",
            day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), posts.Count, joins.Count, list.Name.Fqdn, people.Count);
        return true;
    }

    /// <summary>
    /// The held posts a summary names when there are more than it names: one post of each sender
    /// in turn, each sender's oldest first, members' before others' in each turn; shown in the
    /// order held. A flood from a few addresses does not crowd out the rest (review 54: a
    /// morning's spam left the day's legitimate posts counted, not named, to moderators who work
    /// by mail), even from a member's forged address (review 58: members' posts came before
    /// every turn of the others').
    /// </summary>
    internal static List<HeldPost> Named(ListStore store, ListName list, List<HeldPost> posts)
    {
        if (posts.Count <= MaxItems)
        {
            return [.. posts.OrderBy(p => p.HeldAt)];
        }

        return [.. posts
            .GroupBy(p => p.Sender, StringComparer.OrdinalIgnoreCase)
            .SelectMany(g =>
            {
                var member = g.Key.Length > 0 && store.IsMember(list, g.Key);
                return g.OrderBy(p => p.HeldAt).Select((p, turn) => (Post: p, Member: member, Turn: turn));
            })
            .OrderBy(x => x.Turn).ThenBy(x => x.Member ? 0 : 1).ThenBy(x => x.Post.HeldAt)
            .Take(MaxItems)
            .Select(x => x.Post)
            .OrderBy(p => p.HeldAt)];
    }

    private string Requests(MailingList list, List<HeldPost> posts, int postCount, List<PendingRequest> joins, DateTimeOffset now)
    {
        var text = new StringBuilder();
        if (postCount > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"Held posts ({postCount}{(postCount > posts.Count ? $", {posts.Count} named: each sender's oldest in turn, members' first" : "")}):\n");
            foreach (var post in posts)
            {
                var token = tokens.For(post.Id, PendingKind.HeldPost);
                text.Append(CultureInfo.InvariantCulture, $"\n  From:    {post.From}\n  Subject: {post.Subject}\n  Held:    {When(post.HeldAt, now)}\n");
                foreach (var reason in post.Reasons.Take(3))
                {
                    text.Append(CultureInfo.InvariantCulture, $"  Reason:  {Member.Sanitize(reason.Length > 200 ? reason[..200] : reason)}\n");
                }

                text.Append(CultureInfo.InvariantCulture, $"  Decide:  {HeldPosts.ConfirmAddress(list.Name, token)}\n           mailman held approve|reject|discard {post.Id}\n");
                if (post.Claimed)
                {
                    // A `held` verb killed mid-way, say: the daemon's next start puts it back.
                    text.Append("  (being acted on now, or left so by an action cut short: `mailman held list` on the server)\n");
                }
            }

            More(text, postCount, "mailman held list " + list.Name.Fqdn);
        }

        if (joins.Count > 0)
        {
            text.Append(text.Length > 0 ? "\n" : "").Append(CultureInfo.InvariantCulture, $"Subscription requests ({joins.Count}):\n");
            foreach (var join in joins.Take(MaxItems))
            {
                text.Append(CultureInfo.InvariantCulture, $"\n  Address: {Member.Sanitize(join.Address)}\n  Asked:   {When(join.Created, now)}, expires {join.Expires.UtcDateTime:yyyy-MM-dd HH:mm} UTC\n");
                var decide = Switchboard.IsValidEntryName(join.Data)
                    ? $"{SubscriptionRequests.ConfirmAddress(list.Name, tokens.For(join.Data, PendingKind.ModerateSubscription))}\n           "
                    : "";
                text.Append(CultureInfo.InvariantCulture, $"  Decide:  {decide}mailman pending confirm|discard {join.Id}\n");
            }

            More(text, joins.Count, "mailman pending list " + list.Name.Fqdn);
        }

        return text.ToString().TrimEnd('\n');
    }

    private static void More(StringBuilder text, int count, string command)
    {
        if (count > MaxItems)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n  ... and {count - MaxItems} more: `{command}` shows every one.\n");
        }
    }

    private static string When(DateTimeOffset at, DateTimeOffset now)
    {
        var days = (int)Math.Floor((now - at).TotalDays);
        return $"{at.UtcDateTime:yyyy-MM-dd HH:mm} UTC" + (days >= 1 ? $" ({days} day{(days == 1 ? "" : "s")} ago)" : "");
    }

    // The summary's hour on the day, local time (an hour skipped by a clock change: the next).
    private static DateTimeOffset ScheduledAt(int hour, TimeZoneInfo zone, DateOnly day)
    {
        var local = day.ToDateTime(new TimeOnly(hour, 0));
        if (zone.IsInvalidTime(local))
        {
            local = local.AddHours(1);
        }

        return new DateTimeOffset(local, zone.GetUtcOffset(local));
    }

    // The name the day's notices of a list derive from: shaped as an entry name (its time, then
    // a hash of the list), the same for every run of the same day.
    private static string TriggerName(ListName list, DateTimeOffset scheduled)
    {
        var micros = (scheduled - DateTimeOffset.UnixEpoch).Ticks / 10;
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(list.Fqdn));
        return micros.ToString("D17", CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(hash.AsSpan(0, 4));
    }
}
