// request: each mail to a list's -request, -join, -leave, -subscribe, -unsubscribe or
// -confirm+TOKEN address is handed to Requests/ (commands, policies, confirmations), then finished.
using Mailman.Instance;
using Mailman.Queues;
using Mailman.Requests;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class RequestRunner(QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, RequestProcessor requests, Membership membership, ILogger<RequestRunner> logger)
    : QueueRunner(queues, QueueSet.Request, activity, options, time, logger)
{
    /// <summary>How often an idle runner looks for welcomes and goodbyes still owed (Requests/Membership).</summary>
    public static readonly TimeSpan OwedNoticeInterval = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How often the idle runner looks for notices another process left owed (a command line
    /// killed, or whose out queue was full), and how old they must be: a command line still
    /// queuing 200,000 welcomes is not raced.
    /// </summary>
    public static readonly TimeSpan OwedNoticeSweep = TimeSpan.FromMinutes(10);

    public static readonly TimeSpan OwedNoticeSweepAge = TimeSpan.FromHours(1);

    private DateTimeOffset _owedLooked = DateTimeOffset.MinValue;

    // Parsed in place from the entry's file: a 100 MB mail to -request costs what the commands
    // read of it (the first lines of its first text part), not its size.
    protected override bool ProcessHead(EntryHead head, CancellationToken stoppingToken)
    {
        using (var message = Queue.OpenMessage(head))
        {
            requests.Process(head.Claim.Name, head.Metadata, message);
        }

        Queue.Finish(head.Claim);
        return true;
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
    {
        requests.Process(entry.Claim.Name, entry.Metadata, entry.Message);
        Queue.Finish(entry.Claim);
    }

    // With nothing to claim, once a minute while this daemon may owe one (the start looks in
    // StartupRecovery, without a database connection per idle pass): the notices of membership
    // changes whose run stopped before queuing them, whose entry is gone (finished, shunted) or
    // never was one (a one-click or command-line change), owed for a minute at least (a change
    // in progress pays its own). Every ten minutes otherwise, for those owed an hour by another
    // process (a command line killed while it queued welcomes).
    protected override void Idle()
    {
        var now = Time.GetUtcNow();
        if (_owedLooked == DateTimeOffset.MinValue)
        {
            _owedLooked = now; // the start looked (StartupRecovery): the clock starts here
            return;
        }

        if (now - _owedLooked < (membership.MayOwe ? OwedNoticeInterval : OwedNoticeSweep))
        {
            return;
        }

        _owedLooked = now;
        try
        {
            membership.PayOwedNotices(membership.MayOwe ? OwedNoticeInterval : OwedNoticeSweepAge, sweep: !membership.MayOwe);
        }
        catch (Exception e) when (e is IOException or Microsoft.Data.Sqlite.SqliteException or UnauthorizedAccessException)
        {
            Log.LogError("Owed welcome or goodbye notices not sent now, tried again in {Interval}: {Error}", OwedNoticeInterval, e.Message);
        }
    }
}
