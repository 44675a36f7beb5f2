// What the owners and moderators are told of as it happens: each held post, each subscription
// that awaits their approval, each held post that expired. Each of them gets one notice per
// item, for up to the list's max_moderator_notices_per_day items a day (UTC); the first item
// past it brings one note saying so, and the rest are logged and wait for the daily summary
// (ModeratorSummary), `held list` and `pending list`. A forged flood of 1,000 held posts or
// joins from 1,000 addresses costs each moderator the limit and a note, not 1,000 notices (the
// senders' own daily limit cannot see it: every address is new), and so does its expiry.
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Notices;
using Microsoft.Extensions.Logging;

namespace Mailman.Moderation;

public sealed class ModeratorNotices(NoticeSender notices, MailmanOptions options, TimeProvider time, ILogger<ModeratorNotices> logger)
{
    /// <summary>The list's daily counter of the items told one by one.</summary>
    public const string Counter = "moderator-notices";

    /// <summary>
    /// Who is told: the list's owners and moderators (never an address of a list on this
    /// server), else the site owner, else nobody.
    /// </summary>
    public IReadOnlyList<Member> Recipients(ListStore store, MailingList list)
    {
        var people = store.Roles(list.Name, ListRole.Owner).Concat(store.Roles(list.Name, ListRole.Moderator))
            .DistinctBy(m => ListStore.AddressKey(m.Address))
            .Where(m => !HeldPosts.IsListAddress(store, m.Address))
            .ToList();
        if (people.Count == 0 && options.SiteOwner.Length > 0)
        {
            people.Add(new Member(options.SiteOwner, "Site owner"));
        }

        return people;
    }

    /// <summary>
    /// Tells each of the list's <see cref="Recipients"/> of one new item (<paramref name="what"/>: for
    /// the log, and with <paramref name="triggerEntry"/> what names the item) with the notice
    /// <paramref name="make"/> writes for them, named by <paramref name="triggerEntry"/> and the
    /// purpose it gives; within the list's daily limit. The item takes its number in the day's
    /// count once: repeated after a crash, it is decided as it was, and only what was not queued
    /// yet is sent. The notices are placed all or none (each written before the first is
    /// queued: review 138, the first fitted on a full disk, the next did not, and each retry
    /// sent the first again), and with them what <paramref name="then"/> chains (NoticeSender's
    /// beforePlacing), which runs once whether or not anyone is told.
    /// </summary>
    /// <returns>How many people there are to tell, and whether the item was past the day's limit (then none was told of it).</returns>
    /// <exception cref="IOException">The out queue cannot be written: the item is not counted.</exception>
    public ModeratorsTold Tell(ListStore store, MailingList list, string what, string triggerEntry, Func<Member, (Notice Notice, string Purpose)> make, Action? then = null)
    {
        var moderators = Recipients(store, list);
        if (moderators.Count == 0)
        {
            then?.Invoke();
            return new ModeratorsTold(0, PastLimit: false);
        }

        var limit = list.MaxModeratorNoticesPerDay;
        var day = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
        var item = triggerEntry + " " + what;
        try
        {
            var turn = store.TakeDailyTurn(list.Name, Counter, item, day, limit);
            if (turn == DailyTurn.OnItsOwn)
            {
                Chain(moderators.Select(make).ToList(), triggerEntry, then);
                return new ModeratorsTold(moderators.Count, PastLimit: false);
            }

            logger.LogWarning("The moderators of {ListId} are not told of {What} on its own: past the day's {Limit} items told one by one (max_moderator_notices_per_day); {Rest}",
                list.Name.Fqdn, what, limit, Rest);
            if (turn == DailyTurn.FirstPast)
            {
                Chain(moderators.Select(moderator => (new Notice(list, NoticeTemplates.ModeratorLimit, moderator.Address)
                {
                    ToName = moderator.DisplayName,
                    From = list.Name.OwnerAddress,
                    Values = new Dictionary<string, string>
                    {
                        ["count"] = limit.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        ["reason"] = Rest,
                    },
                }, "moderator limit " + moderator.Address.ToLowerInvariant())).ToList(), triggerEntry, then);
            }
            else
            {
                then?.Invoke();
            }

            return new ModeratorsTold(moderators.Count, PastLimit: true);
        }
        catch (Exception) when (limit > 0)
        {
            store.ReturnDailyTurn(list.Name, Counter, item, day);
            throw;
        }
    }

    // Sends each notice with the ones after it and then what `then` does as its beforePlacing:
    // all are written before any is queued.
    private void Chain(IReadOnlyList<(Notice Notice, string Purpose)> told, string triggerEntry, Action? then)
    {
        var chain = then ?? (static () => { });
        for (var i = told.Count - 1; i >= 0; i--)
        {
            var (notice, purpose) = told[i];
            var next = chain;
            chain = () => notices.Send(notice, triggerEntry, purpose, next);
        }

        chain();
    }

    /// <summary>When the next daily summary falls due after <paramref name="now"/>; MaxValue when there is none.</summary>
    public DateTimeOffset NextSummaryAfter(DateTimeOffset now) => ModeratorSummary.NextAfter(options.Moderation.SummaryHour, time.LocalTimeZone, now);

    // Where the rest is to be seen.
    private string Rest => options.Moderation.SummaryHour >= 0
        ? $"the daily summary at {options.Moderation.SummaryHour:00}:00 names what waits (the first {ModeratorSummary.MaxItems} of each kind); `mailman held list` and `mailman pending list` on the server show all of it now"
        : "`mailman held list` and `mailman pending list` on the server show what waits";
}

/// <summary>What <see cref="ModeratorNotices.Tell"/> did: the owners and moderators (or site owner) there are, and whether the item was past the day's limit.</summary>
public sealed record ModeratorsTold(int People, bool PastLimit);
