// The daemon's story in the log, start to end: one line when it starts (version, instance, SMTP
// target, runners, listeners, queue counts after recovery), one when SIGTERM or SIGINT arrives
// (a short one for each after it), one when the stop is done. Lines only: it decides nothing and
// stops nothing itself.
using System.Reflection;
using System.Runtime.InteropServices;
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Hosting;

public sealed class LifecycleLog(
    InstancePaths paths,
    MailmanOptions options,
    QueueSet queues,
    IServiceProvider services,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<LifecycleLog> logger) : IHostedService, IDisposable
{
    private static readonly (string Rule, string Without)[] LoopGuards =
    [
        ("loop-detection", "a post that already carries this list's X-BeenThere is distributed again (a mail loop between lists is not stopped here)"),
        ("posting-rate", "a member's auto-responder that answers every copy to the list, unmarked, posts again and again (add it after auto-reply, as the default chain has it)"),
    ];

    private readonly List<PosixSignalRegistration> _signals = [];
    private int _signalled;
    private DateTimeOffset _started;

    /// <summary>The version the binary was built as (the informational version without the commit suffix).</summary>
    public static string Version
    {
        get
        {
            var version = typeof(LifecycleLog).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
            var plus = version.IndexOf('+', StringComparison.Ordinal);
            return plus < 0 ? version : version[..plus];
        }
    }

    /// <summary>
    /// The rules that stop loops may be left out (a site may stop them at the MTA), but not
    /// without a word: a chain written before posting-rate existed lacks it (review 100); said
    /// at start and at each SIGHUP's check (review 98), <paramref name="prefix"/> before it.
    /// </summary>
    internal static void WarnOfMissingLoopGuards(MailmanOptions options, ILogger logger, string prefix)
    {
        foreach (var (rule, without) in LoopGuards)
        {
            if (!options.Moderation.Chain.Contains(rule, StringComparer.OrdinalIgnoreCase))
            {
                logger.LogWarning("{Prefix}Mailman:Moderation:Chain has no {Rule}: {Without}", prefix, rule, without);
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _started = time.GetUtcNow();
        // Resolved now, not injected: this service is one of them.
        var runners = services.GetServices<IHostedService>().OfType<Runners.QueueRunner>().Select(r => r.GetType().Name).ToList();
        var listeners = new List<string>();
        if (options.Lmtp.Url.Length > 0)
        {
            // Where it listens, port included (review 87: lmtp://127.0.0.1 was said so, on 8024).
            var at = options.Lmtp.EndPoint();
            listeners.Add("LMTP lmtp://" + Delivery.Smtp.Relay.FormatAddress(at.Address.ToString(), at.Port));
        }

        if (options.Http.Url.Length > 0)
        {
            listeners.Add("HTTP " + options.Http.Url);
        }

        logger.LogInformation("Mailman {Version} starting: instance {Instance}, SMTP {Smtp}, runners {Runners}, listening {Listeners}, queues {Queues}",
            Version, paths.Home, string.Join(", ", options.Smtp.RelayNames()), string.Join(", ", runners), listeners.Count == 0 ? "nothing" : string.Join(", ", listeners), Counts());

        if (options.Http.PublicUrl.Length > 0 && options.Http.Url.Length == 0)
        {
            // Copies then carry links to an endpoint this daemon does not run (review 37).
            logger.LogWarning("Mailman:Http:PublicUrl is set but Mailman:Http:Url is not: copies carry one-click unsubscribe links to {PublicUrl} and this daemon does not serve them (set Mailman:Http:Url, or unset PublicUrl)",
                options.Http.PublicUrl);
        }

        WarnOfMissingLoopGuards(options, logger, "");

        // A limit the daemon runs into under load, said before it does (review 102: at 256 open
        // files an LMTP burst shunted posts, and the runtime itself died once).
        if (Instance.ProcessLimits.OpenFiles() is { } openFiles && openFiles < Instance.ProcessLimits.RecommendedOpenFiles)
        {
            logger.LogWarning("The open-files limit is {Limit}: LMTP sessions, SMTP connections and queue files run out of it under load (queue runners pause, LMTP answers 451); raise it to {Recommended} or more (ulimit -n, systemd's LimitNOFILE=)",
                openFiles, Instance.ProcessLimits.RecommendedOpenFiles);
        }

        // Logged beside the host's own handlers, which do the stopping.
        foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT })
        {
            _signals.Add(PosixSignalRegistration.Create(signal, _ => Signalled(signal)));
        }

        lifetime.ApplicationStopped.Register(() =>
            logger.LogInformation("Mailman stopped after {Uptime}: queues {Queues}", Uptime(time.GetUtcNow() - _started), Counts()));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// The line for a stop signal. One may come twice (`timeout 30 dotnet run -- serve` delivered
    /// SIGTERM twice: dotnet run passes its own on; a terminal's Ctrl-C reaches the whole process
    /// group; an operator repeats it): the first says what happens, a later one that it is under way.
    /// </summary>
    internal void Signalled(PosixSignal signal)
    {
        if (Interlocked.Increment(ref _signalled) == 1)
        {
            logger.LogInformation("{Signal} received: stopping; work in flight finishes or is put back within {StopTimeout}", signal.ToString(), options.StopTimeout.ToString("c", System.Globalization.CultureInfo.InvariantCulture));
        }
        else
        {
            logger.LogInformation("{Signal} received again: already stopping", signal.ToString());
        }
    }

    public void Dispose()
    {
        foreach (var registration in _signals)
        {
            registration.Dispose();
        }
    }

    // "in 3, out 1 (1 claimed)": the queues that hold something.
    private string Counts()
    {
        var parts = new List<string>();
        foreach (var queue in queues.All)
        {
            var pending = queue.Pending().Count;
            var claimed = queue.Claimed().Count;
            if (pending + claimed > 0)
            {
                parts.Add(claimed > 0 ? $"{queue.Name} {pending + claimed} ({claimed} claimed)" : $"{queue.Name} {pending}");
            }
        }

        return parts.Count == 0 ? "empty" : string.Join(", ", parts);
    }

    // "0.4s" under a minute, "1:02:03" under a day, "2d 01:02:03" beyond.
    internal static string Uptime(TimeSpan t)
        => t < TimeSpan.FromMinutes(1) ? t.TotalSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + "s"
            : t < TimeSpan.FromDays(1) ? t.ToString(@"h\:mm\:ss", System.Globalization.CultureInfo.InvariantCulture)
            : t.ToString(@"d\d\ hh\:mm\:ss", System.Globalization.CultureInfo.InvariantCulture);
}
