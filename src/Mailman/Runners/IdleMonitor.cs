// For `serve --exit-when-idle`: stops the host once no queue has work that could be done now.
// Held posts (unless one is due for expiry) and retries not yet due do not count; what is left
// is logged.
using Mailman.Instance;
using Mailman.Moderation;
using Mailman.Queues;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class IdleMonitor(QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, ModerationSweep sweep, IHostApplicationLifetime lifetime, ILogger<IdleMonitor> logger)
    : BackgroundService
{
    private static readonly string[] Active = [QueueSet.In, QueueSet.Pipeline, QueueSet.Out, QueueSet.Request, QueueSet.Bounces, QueueSet.Owner];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var quietChecks = 0;
        var lastGeneration = -1L;
        while (true)
        {
            // While work runs there is nothing to check: no timer wakes the process per 10 ms of a
            // long delivery. Between hops and after the last, checks every 10 ms (cheap: a few
            // directory listings), so an idle exit follows the work by tens of milliseconds.
            await activity.WhenQuietAsync(stoppingToken);
            await Task.Delay(TimeSpan.FromMilliseconds(10), stoppingToken);
            var generation = activity.Generation;
            var idle = !activity.IsBusy && generation == lastGeneration && !HasWork();
            lastGeneration = generation;
            quietChecks = idle ? quietChecks + 1 : 0;
            if (quietChecks < 2)
            {
                continue;
            }

            var left = string.Join(", ", queues.All
                .Select(q => (q.Name, Count: q.Pending().Count))
                .Where(x => x.Count > 0)
                .Select(x => $"{x.Name}: {x.Count}"));
            logger.LogInformation("Idle: no work to do now; exiting. Left in queues: {Left}", left.Length == 0 ? "nothing" : left);
            lifetime.StopApplication();
            return;
        }
    }

    private bool HasWork()
    {
        foreach (var name in Active)
        {
            var q = queues[name];
            if (q.HasWaiting() || q.ClaimsHeld > 0)
            {
                return true;
            }
        }

        var retry = queues[QueueSet.Retry];
        var now = time.GetUtcNow();
        return retry.ClaimsHeld > 0 || (retry.HasWaiting() && retry.Pending().Any(n => RetryRunner.IsDue(retry, n, now, options.Retry.MaximumDelay))) || sweep.HasDueWork(now);
    }
}
