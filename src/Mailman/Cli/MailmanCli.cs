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
        root.Subcommands.Add(PendingCommand.Create());
        root.Subcommands.Add(StatusCommand.Create());
        root.Subcommands.Add(UnshuntCommand.Create());
        root.Subcommands.Add(AliasesCommand.Create());
        root.Subcommands.Add(BouncesCommand.Create());
        root.Subcommands.Add(HeldCommand.Create());
        root.Subcommands.Add(QueueCommand.Create());
        // No response files: an argument starting with '@' (a sender Postfix passes) is an argument.
        var parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
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
    /// <param name="readOnly">The verb writes nothing into the instance (status), so root may run it on any instance.</param>
    public static int Guard(ParseResult parse, Func<InstancePaths, int> action, int defaultErrorCode = 1, bool readOnly = false)
    {
        try
        {
            var paths = InstancePaths.Resolve(parse.GetValue(Home));
            if (!readOnly)
            {
                RefuseForeignInstance(paths);
            }

            return action(paths);
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

    /// <summary>
    /// Root writing into an instance another user owns would leave files (queue entries, the
    /// database's journal, logs) that user's daemon cannot read: refused with one line and 77.
    /// </summary>
    /// <exception cref="CliException">Root on another user's instance.</exception>
    private static void RefuseForeignInstance(InstancePaths paths)
    {
        if (FileOwner.EffectiveUid != 0 || !Directory.Exists(paths.Home) || FileOwner.Uid(paths.Home) is not { } owner || owner == 0)
        {
            return;
        }

        var user = FileOwner.UserName(owner);
        throw new CliException(ExitCodes.NoPerm,
            $"the instance {paths.Home} belongs to {user}; run mailman as {user} (runuser -u {user} -- mailman ...) so the files it writes stay readable by the daemon");
    }
}
