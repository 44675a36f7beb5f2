// `mailman init DIR`: makes DIR an instance (config/mailman.json, queues/, var/ with the list
// database, logs/), so that verbs run there without --home. Never overwrites a configuration.
using System.CommandLine;
using Mailman.Instance;
using Mailman.Lists;

namespace Mailman.Cli;

internal static class InitCommand
{
    // The shipped file is the embedded defaults; an instance's own file holds what it changes.
    private const string Starter = """
        {
          "Mailman": {
            "Smtp": { "Host": "127.0.0.1", "Port": 25 }
          }
        }

        """;

    public static Command Create()
    {
        var dir = new Argument<string>("directory") { Description = "the new instance's directory (created if missing)" };
        var command = new Command("init", "create an instance: config/mailman.json, queues/, var/ (the list database), logs/") { dir };
        command.SetAction(parse => MailmanCli.Guard(parse, _ =>
        {
            var paths = new InstancePaths(parse.GetValue(dir)!);
            if (paths.Exists)
            {
                Console.WriteLine($"{paths.Home} is an instance already");
                return ExitCodes.Ok;
            }

            if (File.Exists(paths.Home))
            {
                throw new CliException(ExitCodes.CantCreate, $"cannot create the instance {paths.Home}: it is a file, not a directory");
            }

            try
            {
                paths.EnsureCreated();
            }
            catch (UnauthorizedAccessException)
            {
                // Say which directory refused, not the one the shell stood in (review 39).
                var parent = Path.GetFullPath(paths.Home);
                while (!Directory.Exists(parent) && Path.GetDirectoryName(parent) is { } up)
                {
                    parent = up;
                }

                var refusing = Directory.Exists(paths.Home) ? paths.Home : parent;
                throw new CliException(ExitCodes.NoPerm,
                    $"cannot create the instance {paths.Home}: {refusing} is {FileOwner.Describe(refusing)} and mailman runs as {FileOwner.UserName(FileOwner.EffectiveUid)}; choose a directory that user may write, or create it as its owner");
            }

            // The database first: when it cannot be made (a full disk), no configuration is left
            // behind to make the next init say "an instance already" (review 40).
            try
            {
                using (new ListStore(paths.Database, create: true))
                {
                    // Opening creates the schema.
                }
            }
            catch (Microsoft.Data.Sqlite.SqliteException e)
            {
                throw new CliException(ExitCodes.TempFail, $"the list database {paths.Database}: {e.Message}");
            }

            using (var file = new FileStream(paths.ConfigFile, FileMode.CreateNew, FileAccess.Write))
            {
                file.Write(System.Text.Encoding.UTF8.GetBytes(Starter));
            }

            // A directory that was there already (a mount point, 1777) keeps its mode; others
            // may not write in the instance's (review 109: var/ stayed world-writable). The
            // home itself is only warned about: it may be a directory others share (init /tmp).
            foreach (var dir in new[] { paths.ConfigDirectory, paths.VarDirectory, paths.QueuesDirectory, paths.LogsDirectory })
            {
                if (Tighten(dir) is { } line)
                {
                    Console.Error.WriteLine(line);
                }
            }

            if (WritableByOthers(paths.Home))
            {
                Console.Error.WriteLine($"mailman: warning: {paths.Home} is writable by others, who could replace the instance's directories: chmod go-w {paths.Home}, or make the instance in a directory of its own");
            }

            Console.WriteLine($"created the instance {paths.Home}; next: mailman --home {paths.Home} lists create LIST@HOST");
            return ExitCodes.Ok;
        }, needsInstance: false));
        return command;
    }

    private const UnixFileMode OthersWrite = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    private static bool WritableByOthers(string dir)
    {
        try
        {
            return (File.GetUnixFileMode(dir) & OthersWrite) != 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static string? Tighten(string dir)
    {
        try
        {
            // A link's target may be a directory others share (var -> /tmp): only said (review 112).
            if (new DirectoryInfo(dir).LinkTarget is { } target)
            {
                return WritableByOthers(dir) ? $"mailman: warning: {dir} is a symbolic link to {target}, which is writable by others: give the instance a directory of its own there" : null;
            }

            var mode = File.GetUnixFileMode(dir);
            if ((mode & OthersWrite) == 0)
            {
                return null;
            }

            File.SetUnixFileMode(dir, mode & ~OthersWrite);
            return $"mailman: {dir} was writable by others (mode {Convert.ToString((int)mode, 8)}): made {Convert.ToString((int)(mode & ~OthersWrite), 8)}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"mailman: warning: {dir} is writable by others and cannot be changed ({e.Message}): chmod go-w {dir}";
        }
    }
}
