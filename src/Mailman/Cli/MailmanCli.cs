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
        root.Subcommands.Add(InitCommand.Create());

        // --version answers whatever else is on the line (--home DIR included): it reads no instance.
        if (args.Contains("--version", StringComparer.Ordinal))
        {
            Console.WriteLine("mailman " + Version);
            return ExitCodes.Ok;
        }

        // --sender= is the null sender as Postfix's pipe writes it with null_sender= (review 46:
        // the parser took it for a missing value, 64, and every bounce was returned to Postfix).
        var (inject, sender, end) = (Array.IndexOf(args, "inject"), Array.IndexOf(args, "--sender="), Array.IndexOf(args, "--"));
        if (inject >= 0 && sender > inject && (end < 0 || sender < end))
        {
            args = [.. args[..sender], "--sender", "", .. args[(sender + 1)..]];
        }

        // An empty --home before the verb ("--home $UNSET inject L" in a pipe's command): the
        // parser read it as a missing value and took the verb for it, 64 (review 109), which
        // Postfix turns into a bounce. Refused as an empty --home after the verb is.
        var options = end < 0 ? args : args[..end];
        for (var i = 0; i < options.Length; i++)
        {
            if ((options[i] == "--home" && i + 1 < options.Length && options[i + 1].Trim().Length == 0) || options[i].Trim() == "--home=")
            {
                return Fail("--home is empty: give the instance directory", options.Contains("inject", StringComparer.Ordinal) ? ExitCodes.TempFail : ExitCodes.Usage);
            }
        }

        // No response files: an argument starting with '@' (a sender Postfix passes) is an argument.
        var parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parsed.Errors.Count > 0)
        {
            // One line: the first error says what is wrong ("unrecognized command 'bogus'"); the
            // parser's follow-ups ("required command was not provided") only repeat it.
            var error = parsed.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized command", StringComparison.OrdinalIgnoreCase)) ?? parsed.Errors[0];
            // Through Fail: a stderr closed or full aborted the process (review 104: 134).
            return Fail(error.Message + " (mailman --help lists the verbs)", ExitCodes.Usage);
        }

        // The generic host handles SIGTERM for `serve`; the parser must not race it.
        return parsed.Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false });
    }

    /// <summary>The version the binary was built as.</summary>
    public static string Version => Hosting.LifecycleLog.Version;

    /// <summary>
    /// Runs a verb: every failure becomes one stderr line and a sysexits code, the same for every
    /// verb: 64 usage, 65 bad data (a value, a file's contents), 66 unreadable input, 67 no such
    /// list or request, 73 cannot create, 75 try again (the database or a queue cannot be used
    /// now), 77 permission, 78 configuration (a setting, no instance here).
    /// </summary>
    /// <param name="configErrorCode">The code of an InvalidOperationException (a setting; <c>serve</c>'s start-up) and of a home that is not an instance.</param>
    /// <param name="readOnly">The verb writes nothing into the instance (status), so root may run it on any instance.</param>
    /// <param name="needsInstance">The verb reads or writes an instance (all but `bounces scan`).</param>
    /// <param name="createsInstance">
    /// The verb makes the instance named by --home or $MAILMAN_HOME on first use (`serve`,
    /// `lists create`); every other verb has nothing to act on in a directory that is not one, and
    /// says so rather than leave an empty instance where a mistyped --home pointed.
    /// </param>
    public static int Guard(ParseResult parse, Func<InstancePaths, int> action, int configErrorCode = ExitCodes.Config, bool readOnly = false, bool needsInstance = true,
        bool createsInstance = false)
    {
        InstancePaths? paths = null;

        // inject's 75 in place of a code the MTA would bounce: the post is kept until mended.
        int InjectKeeps(int code) => configErrorCode == ExitCodes.TempFail ? ExitCodes.TempFail : code;
        try
        {
            if (parse.GetValue(Home) is { } given && string.IsNullOrWhiteSpace(given))
            {
                // --home "$UNSET" would act on $MAILMAN_HOME or the current directory instead (review 39); inject's 75 keeps the post.
                throw new CliException(InjectKeeps(ExitCodes.Usage), "--home is empty: give the instance directory");
            }

            paths = InstancePaths.Resolve(parse.GetValue(Home));
            if (File.Exists(paths.Home))
            {
                // .NET's "Could not find a part of the path '/etc/hostname/config'" (review 39).
                throw new CliException(configErrorCode, $"{paths.Home} is a file, not an instance directory: check --home or MAILMAN_HOME");
            }

            if (needsInstance && !paths.Exists && !paths.VarUnreadable && (paths.Implicit || !createsInstance))
            {
                // configErrorCode: inject's 75, so that the MTA keeps the message until the path is mended.
                var remedy = paths.Implicit ? "give --home DIR, set MAILMAN_HOME" : "check --home or MAILMAN_HOME";
                throw new CliException(configErrorCode,
                    $"{paths.Home} is not a mailman instance (no config/mailman.json or var/mailman.db): {remedy}, or create one with `mailman init DIR`");
            }

            if (!readOnly && needsInstance)
            {
                // inject's 75 here too: Postfix bounces a 77 (5.7.0), and the post would be lost
                // for a fault of the set-up (root's pipe on the mailman user's instance).
                RefuseForeignInstance(paths, InjectKeeps(ExitCodes.NoPerm));
            }

            var settings = needsInstance && configErrorCode == ExitCodes.Config && paths.Exists ? SettingsWarning(paths) : null;
            var code = action(paths);
            if (settings is not null)
            {
                // After the verb's work: a verb that uses the settings has refused them already (78).
                Console.Error.WriteLine(settings);
            }

            return code;
        }
        catch (CliException e)
        {
            return Fail(e.Message, e.ExitCode);
        }
        catch (Microsoft.Data.Sqlite.SqliteException e) when (e.SqliteErrorCode is 8 or 14 && configErrorCode != ExitCodes.TempFail && OwnershipHint(paths) is { Length: > 0 } hint)
        {
            // CANTOPEN or READONLY as another user than the instance's: a permission, not a busy
            // database to try again (review 39). inject keeps its 75 below, so the MTA keeps the post.
            return Fail($"the list database {paths?.Database} cannot be opened for writing{hint}", ExitCodes.NoPerm);
        }
        catch (Microsoft.Data.Sqlite.SqliteException e) when (e.SqliteErrorCode is 8 && configErrorCode != ExitCodes.TempFail && paths is not null)
        {
            // READONLY as the instance's own user: SQLite could not make its -wal or -shm beside
            // the database (review 80: a read-only var/ said only 'attempt to write a readonly
            // database', exit 75). inject keeps its 75, so the MTA keeps the post.
            var directory = Path.GetDirectoryName(paths.Database)!;
            return Fail($"the list database {paths.Database} cannot be written ({e.Message}): SQLite writes its -wal and -shm files in {directory}, which is {FileOwner.Describe(directory)}; mailman runs as {FileOwner.UserName(FileOwner.EffectiveUid)} (a read-only directory or file system?)", ExitCodes.NoPerm);
        }
        catch (Microsoft.Data.Sqlite.SqliteException e) when (e.SqliteErrorCode is 11 or 26 && configErrorCode != ExitCodes.TempFail)
        {
            // CORRUPT past the header (review 80: 'database disk image is malformed', exit 75, as
            // if waiting would mend it): as a damaged header is.
            return Fail($"the list database {paths?.Database} is damaged ({e.Message}): stop the daemon and restore it from a backup", ExitCodes.Config);
        }
        catch (Microsoft.Data.Sqlite.SqliteException e)
        {
            // The database is named: "unable to open database file" alone does not say which.
            return Fail($"the list database {paths?.Database}: {e.Message}{FullHint(paths, e)}", ExitCodes.TempFail);
        }
        catch (Lists.NoSuchListException e)
        {
            return Fail(e.Message, ExitCodes.NoUser);
        }
        catch (Lists.ListExistsException e)
        {
            return Fail(e.Message, ExitCodes.CantCreate);
        }
        catch (InvalidOperationException e)
        {
            return Fail(e.Message, configErrorCode);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            return Fail(e.Message, ExitCodes.DataError);
        }
        catch (UnauthorizedAccessException e)
        {
            // .NET's sentence names the path; say whose the instance is and as whom we ran.
            return Fail(e.Message + RunAsOwner(paths), ExitCodes.NoPerm);
        }
        catch (IOException e) when (e.HResult is 28 or 122)
        {
            // ENOSPC, EDQUOT: a full file system, of bytes or of inodes, is a wait, not a failure
            // (review 91: serve exited 73 when it could not make a queue directory; systemd
            // restarts on 75, and so does the MTA for inject).
            return Fail($"{e.Message} (the file system is full, or out of inodes: make room and try again)", ExitCodes.TempFail);
        }
        catch (IOException e) when (e.HResult is 24 or 23)
        {
            // EMFILE, ENFILE: a wait too (review 102).
            return Fail($"{e.Message}{ProcessLimits.LowOpenFilesHint()}", ExitCodes.TempFail);
        }
        catch (IOException e)
        {
            // inject's 75 for any failure to read or write that is not the message's: Postfix
            // bounces a 73 (5.2.0), and the post would be lost for a fault of the machine (review
            // 102: an assembly that could not be opened under a low open-files limit).
            return Fail(e.Message + (e is FileNotFoundException or FileLoadException ? ProcessLimits.LowOpenFilesHint() : ""),
                InjectKeeps(ExitCodes.CantCreate));
        }
        catch (Exception e)
        {
            // A bug: the stack trace goes to the error log, the user gets one line; inject's 75
            // keeps the post in the MTA until it is fixed (Postfix bounces a 70).
            var logged = paths is not null && LogError(paths, e);
            return Fail($"internal error: {e.GetType().Name}: {e.Message}" + (logged ? $" (stack trace in {paths!.LogsDirectory}/error-DATE.log)" : ""),
                InjectKeeps(ExitCodes.Software));
        }
    }

    // Every verb warns of settings `serve` would refuse (review 94: `lists list` after an edit
    // that broke mailman.json said nothing), and goes on: the daemon's own environment (systemd's
    // Environment=, a credential) may complete what this shell's does not, and a broken file must
    // not keep the operator from status, the queues and the lists (review 96). The verbs that use
    // the settings refuse them (78) as before; a file this user may not read is left to them
    // (they say whose it is); inject does not look: the post is kept whatever the settings say.
    private static string? SettingsWarning(InstancePaths paths)
    {
        try
        {
            var options = Hosting.MailmanConfiguration.Options(Hosting.MailmanConfiguration.Build(paths, [new("Logging:Console", "false")]));

            // The relays' password and CA files too (review 133: a password file others may read
            // stopped serve and passed the verbs), when this is the instance's owner, whose files
            // they are; systemd's credentials are the daemon's environment's, not this shell's.
            if (FileOwner.Uid(paths.Home) == FileOwner.EffectiveUid)
            {
                _ = Delivery.Smtp.Relay.Resolve(options.Smtp, credentials: false);
            }

            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException)
        {
            var priority = string.IsNullOrEmpty(Environment.GetEnvironmentVariable("JOURNAL_STREAM")) ? "" : "<4>";
            return priority + "mailman: warning: serve would refuse these settings (78): " + Hosting.ControlCharacterEscaper.Escape(e.Message.ReplaceLineEndings(" ").Trim())
                + $" (read from {paths.ConfigFile} and this shell's Mailman__ variables; the daemon's own environment may differ)";
        }
    }

    private static bool LogError(InstancePaths paths, Exception e)
    {
        if (!paths.Exists)
        {
            return false;
        }

        try
        {
            var configuration = Hosting.MailmanConfiguration.Build(paths, [new("Logging:Console", "false")]);
            var logger = Hosting.Logging.Create(configuration, paths);
            logger.ForContext("SourceContext", "Mailman.Cli").Error(e, "mailman {Verb} failed: {Error}", string.Join(' ', Environment.GetCommandLineArgs().Skip(1)), e.Message);
            (logger as IDisposable)?.Dispose();
            return true;
        }
        catch (Exception logFailure) when (logFailure is not OutOfMemoryException)
        {
            // The log itself cannot be written: the one line still says what happened.
            return false;
        }
    }

    private static int Fail(string message, int code)
    {
        // One line whatever the message holds (an SQLite or OS message can span two); under
        // systemd at error priority, as the daemon's own error lines are (review 39).
        var priority = string.IsNullOrEmpty(Environment.GetEnvironmentVariable("JOURNAL_STREAM")) ? "" : "<3>";
        // A value quoted in the message (a setting, an address) may hold an escape sequence that
        // would drive the terminal (review 86: ESC[2J cleared it): escaped as the log lines are.
        Say(priority + "mailman: " + Hosting.ControlCharacterEscaper.Escape(message.ReplaceLineEndings(" ").Trim()));
        return code;
    }

    /// <summary>A line on stderr, which may not be writable: then the exit code says it.</summary>
    internal static void Say(string line)
    {
        try
        {
            Console.Error.WriteLine(line);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No file descriptor left for stderr (review 102: the process aborted, 134), stderr
            // closed (EBADF, which .NET calls UnauthorizedAccessException) or full (review 103).
        }
    }

    /// <summary>" (running as X; HOME is owned by Y ...: run mailman as its owner)", or "" when we are its owner.</summary>
    private static string RunAsOwner(InstancePaths? paths) =>
        paths is null || FileOwner.Uid(paths.Home) is not { } owner || owner == FileOwner.EffectiveUid ? ""
            : $" (running as {FileOwner.UserName(FileOwner.EffectiveUid)}; {paths.Home} is {FileOwner.Describe(paths.Home)}: run mailman as its owner)";

    // Whose the instance or, when the instance is ours, its database or the database's -wal or
    // -shm is (a root-run sqlite3 or cp: chown it, rather than run as another user; review 41);
    // "" when all are ours.
    // IOERR or FULL on a full file system: SQLite could not make its -shm (review 80: serve said
    // only 'disk I/O error' after a clean stop on a full disk).
    internal static string FullHint(InstancePaths? paths, Microsoft.Data.Sqlite.SqliteException e)
    {
        if (paths is null || e.SqliteErrorCode is not (10 or 13))
        {
            return "";
        }

        try
        {
            var directory = Path.GetDirectoryName(paths.Database)!;
            var free = new DriveInfo(directory).AvailableFreeSpace;
            return free < 1024 * 1024 ? $" (the file system of {directory} has {free:N0} bytes free: SQLite needs room for its -wal and -shm files; make room)" : "";
        }
        catch (Exception probe) when (probe is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return "";
        }
    }

    private static string OwnershipHint(InstancePaths? paths)
    {
        if (RunAsOwner(paths) is { Length: > 0 } runAs)
        {
            return runAs;
        }

        var me = FileOwner.UserName(FileOwner.EffectiveUid);
        return paths is null || FileOwner.FirstNotOurs(paths.Database, paths.Database + "-wal", paths.Database + "-shm") is not { } foreign ? ""
            : $" ({foreign} is {FileOwner.Describe(foreign)} and mailman runs as {me}: chown it to {me})";
    }

    /// <summary>
    /// Root writing into an instance another user owns would leave files (queue entries, the
    /// database's journal, logs) that user's daemon cannot read: refused with one line and 77
    /// (<paramref name="code"/>: inject's 75, so that the MTA keeps the message).
    /// </summary>
    /// <exception cref="CliException">Root on another user's instance.</exception>
    private static void RefuseForeignInstance(InstancePaths paths, int code)
    {
        if (FileOwner.EffectiveUid != 0 || !Directory.Exists(paths.Home) || FileOwner.Uid(paths.Home) is not { } owner || owner == 0)
        {
            return;
        }

        var user = FileOwner.UserName(owner);
        throw new CliException(code,
            $"the instance {paths.Home} belongs to {user}; run mailman as {user} (runuser -u {user} -- mailman ...) so the files it writes stay readable by the daemon");
    }
}
