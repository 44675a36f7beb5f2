// Start-up work that must finish before any runner claims an entry: take the instance's serve
// lock (a kernel lock: a second daemon on the same instance refuses to start) and recover the
// entries a crashed run left claimed.
using System.IO.Abstractions;
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class StartupRecovery(InstancePaths paths, QueueSet queues, MailmanOptions options, IFileSystem fs, ILogger<StartupRecovery> logger) : IHostedService, IDisposable
{
    private FileStream? _lock;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _lock = AcquireServeLock(paths);

        // A verb claiming entries right now (`held approve` ...) is not a crashed run: wait for it.
        using var verbs = QueueLock.Exclusive(paths, TimeSpan.FromSeconds(60));
        Recover(queues, options.Queues.MaxRecoveries, fs, logger);
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
            var (recovered, toBad) = queue.Recover(queues[QueueSet.Bad], maxRecoveries,
                name => queues.All.Any(other => other != queue && other.Holds(name)), done);
            if (recovered + toBad > 0)
            {
                logger.LogWarning("Recovered {Recovered} entries left claimed in {Queue}; {ToBad} moved to bad", recovered, queue.Name, toBad);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _lock?.Dispose();

    /// <summary>
    /// Holds an exclusive lock on var/serve.lock for the life of the process. .NET implements
    /// FileShare.None with flock(2) on Linux, which the kernel drops when the process dies.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another daemon holds it, or the file cannot be opened (with why).</exception>
    public static FileStream AcquireServeLock(InstancePaths paths)
    {
        paths.EnsureCreated();
        FileStream stream;
        try
        {
            stream = new FileStream(paths.ServeLock, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e.HResult == 11)
        {
            // EWOULDBLOCK from flock: the lock is held.
            var holder = "";
            try
            {
                holder = File.ReadAllText(paths.ServeLock).Trim();
            }
            catch (IOException)
            {
            }

            throw new InvalidOperationException($"another mailman serve (pid {(holder.Length > 0 ? holder : "unknown")}) is running on the instance {paths.Home}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"cannot open {paths.ServeLock}: {e.Message}", e);
        }

        try
        {
            // The pid is for the message above; a full disk may keep it from being written.
            stream.SetLength(0);
            stream.Write(System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId + "\n"));
            stream.Flush();
        }
        catch (IOException)
        {
        }

        return stream;
    }
}
