// `mailman serve`: runs every runner until SIGTERM/SIGINT (or, with --exit-when-idle, until
// no queue has work that can be done now).
using System.CommandLine;
using Mailman.Hosting;
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
            using var host = DaemonHost.Build(paths, parse.GetValue(exitWhenIdle));
            host.Run();
            return 0;
        }));
        return command;
    }
}
