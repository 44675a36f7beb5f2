// The layout of an instance directory: config/, queues/, var/ (SQLite) and logs/. `serve` and
// `lists create` create missing directories in a directory named by --home or $MAILMAN_HOME;
// every other verb, and any verb in the current directory, needs an instance there already
// (`mailman init DIR` makes one).
namespace Mailman.Instance;

/// <summary>Paths inside one Mailman instance directory.</summary>
public sealed class InstancePaths
{
    public InstancePaths(string home, bool isImplicit = false)
    {
        Home = Path.GetFullPath(home);
        Implicit = isImplicit;
    }

    public string Home { get; }

    /// <summary>Neither --home nor $MAILMAN_HOME named it: the current directory, which must already be an instance.</summary>
    public bool Implicit { get; }

    /// <summary>The directory is an instance: it has a configuration file or a list database.</summary>
    public bool Exists => File.Exists(ConfigFile) || File.Exists(Database);

    /// <summary>var/ is there but this user may not look into it: whether the database is there cannot be told (the verb's own error says why).</summary>
    public bool VarUnreadable
    {
        get
        {
            try
            {
                using var entries = Directory.EnumerateFileSystemEntries(VarDirectory).GetEnumerator();
                entries.MoveNext();
                return false;
            }
            catch (UnauthorizedAccessException)
            {
                return true;
            }
            catch (IOException)
            {
                return false;
            }
        }
    }

    public string ConfigDirectory => Path.Combine(Home, "config");

    public string ConfigFile => Path.Combine(ConfigDirectory, "mailman.json");

    public string QueuesDirectory => Path.Combine(Home, "queues");

    public string VarDirectory => Path.Combine(Home, "var");

    public string LogsDirectory => Path.Combine(Home, "logs");

    public string Database => Path.Combine(VarDirectory, "mailman.db");

    /// <summary>
    /// Written by `lists delete` (its time is the deletion's): a delivery of the list's post under
    /// way in the daemon stops when it sees one newer than its entry. The name is a validated
    /// <see cref="Lists.ListName"/>'s (no '/', no "..").
    /// </summary>
    public string DeletedListMarker(Lists.ListName list) => Path.Combine(VarDirectory, "deleted-lists", list.Fqdn);

    /// <summary>The instance's secret HMAC key (one-click links, confirmation tokens): 32 random bytes, mode 0600.</summary>
    public string SecretKeyFile => Path.Combine(VarDirectory, "secret.key");

    /// <summary>Where `queue flush` leaves its requests for the retry runner: one file each, the ids it asks for, a line each.</summary>
    public string FlushRequests => Path.Combine(VarDirectory, "flush");

    /// <summary>
    /// The lock a command line holds while it queues the notices it owes under
    /// <paramref name="trigger"/> (a queue entry name): the daemon pays them only once it is free.
    /// </summary>
    public string OwingLock(string trigger) => Path.Combine(VarDirectory, "owing", trigger + ".lock");

    public string Queue(string name) => Path.Combine(QueuesDirectory, name);

    /// <summary>The home given by <c>--home</c>, else <c>$MAILMAN_HOME</c>, else the current directory.</summary>
    public static InstancePaths Resolve(string? home)
    {
        if (string.IsNullOrEmpty(home))
        {
            home = Environment.GetEnvironmentVariable("MAILMAN_HOME");
        }

        return string.IsNullOrEmpty(home) ? new InstancePaths(Directory.GetCurrentDirectory(), isImplicit: true) : new InstancePaths(home);
    }

    /// <summary>
    /// Creates the instance directories (queue files are private: 0700). logs/ is not needed to
    /// work (the log files say when they cannot be written); the others are.
    /// </summary>
    /// <exception cref="IOException">config/, var/ or queues/ is a file, or a link to nothing: the message says which.</exception>
    public void EnsureCreated()
    {
        foreach (var dir in new[] { ConfigDirectory, VarDirectory })
        {
            Create(dir, null);
        }

        try
        {
            Directory.CreateDirectory(LogsDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Said by the log files' probe (serve's warning, the verbs' stderr line).
        }

        Create(QueuesDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>
    /// Why <paramref name="dir"/> cannot be the directory it should be (a file, a link to nothing
    /// or to a file), or null (a directory, or nothing there yet).
    /// </summary>
    public static string? WhyNoDirectory(string dir)
    {
        if (Directory.Exists(dir))
        {
            return null;
        }

        var info = new FileInfo(dir);
        return FileOwner.DanglingLinkTarget(dir) is { } dangling ? $"{dir} is a symbolic link to {dangling}, which does not exist (a file system not mounted?)"
            : info.LinkTarget is { } target ? $"{dir} is a symbolic link to {target}, which is a file, not a directory"
            : info.Exists ? $"{dir} is a file, not a directory"
            : null;
    }

    // .NET says only "The file '...' already exists" for a file or a dangling link in the way
    // (review 86: serve exited 73 so for an unmounted queues/).
    private static void Create(string dir, UnixFileMode? mode)
    {
        if (WhyNoDirectory(dir) is { } why)
        {
            throw new IOException(why);
        }

        if (Directory.Exists(dir))
        {
            return;
        }

        if (mode is { } m)
        {
            Directory.CreateDirectory(dir, m);
        }
        else
        {
            Directory.CreateDirectory(dir);
        }
    }
}
