// `mailman serve`: runs every runner until SIGTERM/SIGINT (or, with --exit-when-idle, until
// no queue has work that can be done now).
using System.CommandLine;
using Mailman.Hosting;
using Mailman.Instance;
using Microsoft.Extensions.Hosting;

namespace Mailman.Cli;

internal static class ServeCommand
{
    public static Command Create()
    {
        var exitWhenIdle = new Option<bool>("--exit-when-idle") { Description = "exit once no queue has work that can be done now" };
        var command = new Command("serve", "run the delivery daemon") { exitWhenIdle };
        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            // SIGHUP's default action ends the process: until the host's HangupHandler is there
            // (after start-up recovery, seconds with many claims left), a logrotate postrotate
            // reading var/serve.pid killed the daemon without a line (review 42). Taken from
            // before the pid file is written; the handler does the work once it is registered.
            using var earlyHangup = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGHUP, c => c.Cancel = true);
            using var serveLock = TakeLock(paths);
            using var host = DaemonHost.Build(paths, parse.GetValue(exitWhenIdle));
            // A runner that died of an unexpected error stops the host (logged in error-DATE.log);
            // the exit code must say so, or systemd's Restart=on-failure leaves the daemon down.
            var failed = DaemonHost.RunCountingFailures(host);
            if (failed > 0)
            {
                Console.Error.WriteLine($"mailman: {failed} runner(s) stopped on an unexpected error (see the error log); exiting {ExitCodes.Software}");
                return ExitCodes.Software;
            }

            return 0;
        }, createsInstance: true));
        return command;
    }

    // Before the host is built: a second daemon answers in one line and touches nothing.
    private static ServeLock TakeLock(InstancePaths paths)
    {
        try
        {
            var held = ServeLock.Acquire(paths);

            // What a killed daemon wrote for status is not this one's: in a container every daemon
            // is pid 1 and would pass for the writer (review 51).
            Runners.ProgressFile.Clear(paths);
            Runners.RelaysFile.Clear(paths);
            return held;
        }
        catch (ServeLockException e)
        {
            throw new CliException(e.Held ? ExitCodes.TempFail : e.Permission ? ExitCodes.NoPerm : ExitCodes.CantCreate, e.Message);
        }
    }
}
