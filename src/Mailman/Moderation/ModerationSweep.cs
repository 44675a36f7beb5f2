// The moderation sweep: held posts older than their list's max_days_to_hold are discarded, with
// a log line and a note to the moderators (HeldPosts.Expire), and the daily summary of what
// awaits the moderators goes out at its hour (ModeratorSummary). It runs at start, then when the
// next post or summary falls due, at least hourly (so a changed setting is seen), on the
// TimeProvider's clock.
using Mailman.Lists;
using Mailman.Queues;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Moderation;

public sealed class ModerationSweep(QueueSet queues, ListStoreFactory lists, HeldPosts held, ModeratorSummary summary, TimeProvider time, ILogger<ModerationSweep> logger) : BackgroundService
{
    /// <summary>The longest the sweep sleeps.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    private long _nextDue = DateTimeOffset.MaxValue.UtcTicks;
    private long _nextSummary = DateTimeOffset.MaxValue.UtcTicks;
    private volatile bool _swept;

    // Whether the held posts' requests were matched to hold since the daemon started (HeldPosts.Reconcile).
    private bool _reconciled;

    /// <summary>When the next held post falls due, as the last sweep saw it.</summary>
    public DateTimeOffset NextDue => new(Interlocked.Read(ref _nextDue), TimeSpan.Zero);

    /// <summary>When the next daily summary falls due, as the last sweep saw it (MaxValue: none).</summary>
    public DateTimeOffset NextSummary => new(Interlocked.Read(ref _nextSummary), TimeSpan.Zero);

    /// <summary>For `serve --exit-when-idle`: the first sweep has not run yet, or a held post or the summary is due now.</summary>
    public bool HasDueWork(DateTimeOffset now) => !_swept || NextDue <= now || NextSummary <= now;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                Sweep();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Whatever it was, the daemon goes on: a sweep that fails is logged and tried again.
                logger.LogError(e, "Moderation sweep failed; trying again in {Interval}", Interval);
                Interlocked.Exchange(ref _nextDue, (time.GetUtcNow() + Interval).UtcTicks);
                Interlocked.Exchange(ref _nextSummary, DateTimeOffset.MaxValue.UtcTicks);
                _swept = true;
            }

            var wait = (NextDue < NextSummary ? NextDue : NextSummary) - time.GetUtcNow();
            wait = wait < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : wait > Interval ? Interval : wait;
            try
            {
                await Task.Delay(wait, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>Discards every held post that is due now, then sends the daily summaries if they are due.</summary>
    /// <returns>How many posts were discarded.</returns>
    public int Sweep()
    {
        int expired;
        using (var store = lists.Open())
        {
            if (!_reconciled)
            {
                held.Reconcile(store);
                _reconciled = true;
            }

            expired = Expire(store);
        }

        summary.SendDue();
        Interlocked.Exchange(ref _nextSummary, summary.NextAfter(time.GetUtcNow()).UtcTicks);

        // Only now: `serve --exit-when-idle` waits for the first sweep, and its summaries are in
        // out before it looks again (review 54: it exited with them queued).
        _swept = true;
        return expired;
    }

    // One store for the sweep's reads (the chain's metric counts connections per post: review 98's reconcile shares it).
    private int Expire(ListStore store)
    {
        var hold = queues[QueueSet.Hold];
        var now = time.GetUtcNow();
        var next = DateTimeOffset.MaxValue;
        var expired = 0;
        var settings = new Dictionary<string, MailingList?>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in hold.Pending())
        {
            EntryMetadata metadata;
            try
            {
                metadata = hold.ReadMetadata(name);
            }
            catch (Exception e) when (e is CorruptEntryException or IOException)
            {
                continue; // acted on meanwhile, or unreadable (an action on it moves it to bad)
            }

            if (!settings.TryGetValue(metadata.List, out var list))
            {
                list = settings[metadata.List] = ListName.TryParse(metadata.List, out var listName, out _) ? store.FindList(listName) : null;
            }

            if (list is null || list.MaxDaysToHold <= 0)
            {
                continue;
            }

            var due = (metadata.HeldAt ?? metadata.Received) + TimeSpan.FromDays(list.MaxDaysToHold);
            if (due > now)
            {
                next = due < next ? due : next;
                continue;
            }

            if (held.Expire(name, list.MaxDaysToHold).Done)
            {
                expired++;
            }
        }

        Interlocked.Exchange(ref _nextDue, next.UtcTicks);
        return expired;
    }
}
