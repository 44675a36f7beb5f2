// SIGHUP (systemctl reload): absorbed, so a reload never kills the daemon. Nothing needs
// reloading (list settings and members are read from the database for every post), but two things
// are done: the log files are closed and opened again by name (a log an operator or logrotate
// removed or renamed is made anew, not at midnight: review 37), and the configuration files are
// read and checked as a start would, so a broken config/mailman.json is said now, by the daemon
// that keeps running with the settings it started with, not by the next start that fails.
using System.Runtime.InteropServices;
using Mailman.Instance;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Hosting;

public sealed class HangupHandler(InstancePaths paths, LogFiles files, ILogger<HangupHandler> logger) : IHostedService, IDisposable
{
    private PosixSignalRegistration? _registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _registration = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            // Signals that come while one is being handled are one more handling, not one each
            // (review 38: a storm of 70,000 queued a line and a reopening apiece, for minutes).
            if (Interlocked.Increment(ref _pending) == 1)
            {
                _ = Task.Run(Drain);
            }
        });
        return Task.CompletedTask;
    }

    private int _pending;

    private void Drain()
    {
        do
        {
            Interlocked.Exchange(ref _pending, 1);
            try
            {
                Hangup();
            }
            catch (Exception e)
            {
                // Whatever it was, the count goes down below and the next SIGHUP is handled
                // (review 39: an exception escaping here left every later SIGHUP unanswered).
                logger.LogError(e, "SIGHUP could not be handled: {Error}", e.Message);
            }
        }
        while (Interlocked.Decrement(ref _pending) > 0);
    }

    /// <summary>What SIGHUP does: reopen the logs, check the configuration, say both.</summary>
    internal void Hangup()
    {
        var reopened = true;
        try
        {
            files.Reopen();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogError("SIGHUP: the log files could not be opened again: {Error}", e.Message);
            reopened = false;
        }

        try
        {
            var configuration = MailmanConfiguration.Build(paths);
            var options = MailmanConfiguration.Options(configuration);
            options.Smtp.ResolvedRelays(); // password and CA files too, as a start reads them
            Logging.Read(configuration);
            // Of the configuration as the next start would run it (review 107: read as the running daemon's).
            LifecycleLog.WarnOfMissingLoopGuards(options, logger, "SIGHUP: at the next start, ");

            // As a start warns (review 98: a full logs/ was named at start only, and a SIGHUP said "reopened").
            if (reopened && Logging.WhyUnwritable(configuration, paths) is { } unwritable)
            {
                logger.LogWarning("SIGHUP: the log files in {LogsDirectory} cannot be written ({Error}): their lines are lost until that is mended (the console and the journal have them)",
                    paths.LogsDirectory, unwritable);
            }
        }
        catch (InvalidOperationException e)
        {
            logger.LogError("SIGHUP: the configuration would not start a daemon now: {Error}; this daemon keeps the settings it started with (fix it before the next start)", e.Message);
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogError("SIGHUP: the configuration could not be read: {Error}; this daemon keeps the settings it started with (a start would fail the same way)", e.Message);
            return;
        }

        // Review 87: "could not be opened again" was followed by "log files reopened".
        logger.LogInformation("SIGHUP received: {Files}; the configuration checks out (list settings are read per post; other settings take effect at the next start)",
            reopened ? "log files reopened" : "the old log files stay in use");
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _registration?.Dispose();
}
