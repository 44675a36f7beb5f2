// Start-up work that must finish before any runner claims an entry: recover the entries a
// crashed run left claimed. `serve` holds the instance's lock (Instance/ServeLock.cs) before
// this runs, so no other daemon is claiming.
using System.IO.Abstractions;
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class StartupRecovery(InstancePaths paths, QueueSet queues, MailmanOptions options, IFileSystem fs, Requests.Membership membership, ILogger<StartupRecovery> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        // A verb claiming entries right now (`held approve` ...) is not a crashed run: wait for it.
        using (QueueLock.Exclusive(paths, TimeSpan.FromSeconds(60)))
        {
            Recover(queues, options.Queues.MaxRecoveries, fs, logger);
        }

        // Welcomes and goodbyes a crashed run (of this daemon or a command line) left owed; those
        // of request entries just recovered are paid when the entries run again.
        try
        {
            membership.PayOwedNotices(RequestRunner.OwedNoticeInterval);
        }
        catch (Exception e) when (e is IOException or Microsoft.Data.Sqlite.SqliteException or UnauthorizedAccessException)
        {
            logger.LogError("Owed welcome or goodbye notices not sent at start, tried again when the request runner is idle: {Error}", e.Message);
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Recovers every queue: checkpoints a crashed run left without their entry follow the entry
    /// (or go, when the entry is finished), then each queue's claims are settled. Idempotent: a
    /// kill anywhere in here and a second run end in the same consistent state.
    /// </summary>
    public static void Recover(QueueSet queues, int maxRecoveries, IFileSystem fs, ILogger logger)
    {
        foreach (var queue in queues.All)
        {
            foreach (var name in queue.OrphanCheckpoints())
            {
                var home = queues.All.FirstOrDefault(q => q != queue && q.Holds(name));
                queue.SettleOrphanCheckpoint(name, home);
            }
        }

        var outgoing = queues[QueueSet.Out];
        foreach (var queue in queues.All)
        {
            if (queue.Name == QueueSet.Bad)
            {
                continue;
            }

            // An out entry's work is done when its checkpoint says so, or when the retry entry
            // that takes its deferred recipients exists (a crash came before the final mark).
            Func<string, bool>? done = queue == outgoing
                ? name => DeliveryCheckpoint.IsFinal(fs, queue.CheckpointPath(name))
                    || queues.All.Any(q => q.Holds(OutgoingRunner.RetryName(name)))
                : null;
            var (recovered, setAside) = queue.Recover(queues[QueueSet.Bad], maxRecoveries,
                name => queues.All.Any(other => other != queue && other.Holds(name)), done,
                (name, why, to) => logger.LogError("Entry {QueueEntry} left claimed in {Queue} moved to {Target}: {Reason}", name, queue.Name, to, why),
                queues[QueueSet.Shunt]);
            if (recovered + setAside > 0)
            {
                logger.LogWarning("Recovered {Recovered} entries left claimed in {Queue}; {SetAside} set aside (bad, shunt)", recovered, queue.Name, setAside);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

}
