// The `mailman` command line: one executable, verbs for the daemon and for operators.
using System.CommandLine;
using Mailman.Instance;

namespace Mailman.Cli;

public static class MailmanCli
{
    /// <summary>--home DIR on every verb (default: $MAILMAN_HOME, else the current directory).</summary>
    public static readonly Option<string?> Home = new("--home")
    {
        Description = "instance directory (default: $MAILMAN_HOME, else the current directory)",
        Recursive = true,
    };

    public static int Run(string[] args)
    {
        var root = new RootCommand("Mailman: a mailing-list delivery daemon")
        {
            Options = { Home },
        };
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(InjectCommand.Create());
        root.Subcommands.Add(ListsCommand.Create());
        root.Subcommands.Add(MembersCommand.Create());
        root.Subcommands.Add(StatusCommand.Create());
        root.Subcommands.Add(UnshuntCommand.Create());
        root.Subcommands.Add(AliasesCommand.Create());
        root.Subcommands.Add(HeldCommand.Create());
        root.Subcommands.Add(QueueCommand.Create());
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
            {
                Console.Error.WriteLine("mailman: " + error.Message);
            }

            return ExitCodes.Usage;
        }

        // The generic host handles SIGTERM for `serve`; the parser must not race it.
        return parsed.Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false });
    }

    /// <summary>Runs a verb: user errors become one stderr line and an exit code.</summary>
    public static int Guard(ParseResult parse, Func<InstancePaths, int> action, int defaultErrorCode = 1)
    {
        try
        {
            return action(InstancePaths.Resolve(parse.GetValue(Home)));
        }
        catch (CliException e)
        {
            Console.Error.WriteLine("mailman: " + e.Message);
            return e.ExitCode;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException or IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
        {
            Console.Error.WriteLine("mailman: " + e.Message);
            return defaultErrorCode;
        }
    }
}
