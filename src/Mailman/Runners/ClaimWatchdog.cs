// Watches claimed entries: one held by a runner much longer than a delivery of its size could
// take (a stalled runner, an SMTP server that accepts and never answers, a lock) is reported
// once, as a warning, so an operator learns of it before the members do. It only looks: it
// never takes, moves or releases a claim.
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class ClaimWatchdog(QueueSet queues, MailmanOptions options, TimeProvider time, ILogger<ClaimWatchdog> logger) : BackgroundService
{
    /// <summary>How often claims are looked at; a claim's age is known to within this.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    // A conservative rate for the estimate: a loaded relay takes well over this.
    private const double BytesPerSecond = 1 << 20;

    private readonly Dictionary<(string Queue, string Name), DateTimeOffset> _firstSeen = [];
    private readonly HashSet<(string Queue, string Name)> _reported = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                Check();
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>
    /// Notes when each claim was first seen and warns once about any held longer than
    /// <see cref="MailmanOptions.ClaimWarningFactor"/> times <see cref="Expected"/>.
    /// </summary>
    public void Check()
    {
        var now = time.GetUtcNow();
        var seen = new HashSet<(string, string)>();
        foreach (var queue in queues.All)
        {
            foreach (var name in queue.Claimed())
            {
                var key = (queue.Name, name);
                seen.Add(key);
                if (!_firstSeen.TryGetValue(key, out var since))
                {
                    _firstSeen[key] = now;
                    continue;
                }

                if (_reported.Contains(key))
                {
                    continue;
                }

                var claimed = now - since;
                var (expected, size, recipients) = Expected(queue, name);
                if (claimed > expected * options.ClaimWarningFactor)
                {
                    _reported.Add(key);
                    logger.LogWarning("Entry {QueueEntry} in {Queue} has been claimed for at least {Claimed}, more than {Factor} times the {Expected} a delivery of {Size} bytes to about {Recipients} recipients should take: a stalled runner or SMTP server? (`mailman status` shows it)",
                        name, queue.Name, Format(claimed), options.ClaimWarningFactor, Format(expected), size, recipients);
                }
            }
        }

        // Finished claims are forgotten.
        foreach (var key in _firstSeen.Keys.Where(k => !seen.Contains(k)).ToList())
        {
            _firstSeen.Remove(key);
            _reported.Remove(key);
        }
    }

    /// <summary>
    /// A generous estimate of how long one entry's work could take: one SMTP timeout, plus every
    /// copy's bytes at 1 MiB/s (copies estimated from the recipient lines, ~32 bytes each).
    /// </summary>
    private (TimeSpan Expected, long Size, long Recipients) Expected(Switchboard queue, string name)
    {
        long size = 0, recipients = 1;
        try
        {
            var path = Path.Combine(queue.Directory, name + Switchboard.ClaimedExtension);
            var head = queue.LoadHead(new ClaimedEntry(queue.Name, name, path));
            size = head.Metadata.MessageLength;
            recipients = Math.Max(1, (new FileInfo(path).Length - head.RecipientsOffset) / 32);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CorruptEntryException)
        {
            // Finished or moved meanwhile, or unreadable: the floor of one timeout applies.
        }

        var seconds = options.Smtp.TimeoutSeconds + (double)size * recipients / BytesPerSecond;
        return (TimeSpan.FromSeconds(seconds), size, recipients);
    }

    private static string Format(TimeSpan span) => span.ToString(@"d\.hh\:mm\:ss", System.Globalization.CultureInfo.InvariantCulture);
}
