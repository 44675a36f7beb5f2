// Start-up work that must finish before any runner claims an entry: take the instance's serve
// lock (a kernel lock: a second daemon on the same instance refuses to start) and recover the
// entries a crashed run left claimed.
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class StartupRecovery(InstancePaths paths, QueueSet queues, MailmanOptions options, ILogger<StartupRecovery> logger) : IHostedService, IDisposable
{
    private FileStream? _lock;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _lock = AcquireServeLock(paths);

        // A verb claiming entries right now (`held approve` ...) is not a crashed run: wait for it.
        using var verbs = QueueLock.Exclusive(paths, TimeSpan.FromSeconds(60));
        foreach (var queue in queues.All)
        {
            if (queue.Name == QueueSet.Bad)
            {
                continue;
            }

            var (recovered, toBad) = queue.Recover(queues[QueueSet.Bad], options.Queues.MaxRecoveries,
                name => queues.All.Any(other => other != queue && other.Holds(name)));
            if (recovered + toBad > 0)
            {
                logger.LogWarning("Recovered {Recovered} entries left claimed in {Queue}; {ToBad} moved to bad", recovered, queue.Name, toBad);
            }
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _lock?.Dispose();

    /// <summary>
    /// Holds an exclusive lock on var/serve.lock for the life of the process. .NET implements
    /// FileShare.None with flock(2) on Linux, which the kernel drops when the process dies.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another daemon holds it.</exception>
    public static FileStream AcquireServeLock(InstancePaths paths)
    {
        paths.EnsureCreated();
        try
        {
            var stream = new FileStream(paths.ServeLock, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(0);
            var pid = System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId + "\n");
            stream.Write(pid);
            stream.Flush();
            return stream;
        }
        catch (IOException)
        {
            var holder = "";
            try
            {
                holder = File.ReadAllText(paths.ServeLock).Trim();
            }
            catch (IOException)
            {
            }

            throw new InvalidOperationException($"another mailman serve (pid {holder}) is running on the instance {paths.Home}");
        }
    }
}
