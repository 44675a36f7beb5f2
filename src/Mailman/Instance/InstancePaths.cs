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

    /// <summary>Creates the instance directories (queue files are private: 0700).</summary>
    public void EnsureCreated()
    {
        foreach (var dir in new[] { ConfigDirectory, VarDirectory, LogsDirectory })
        {
            Directory.CreateDirectory(dir);
        }

        if (!Directory.Exists(QueuesDirectory))
        {
            Directory.CreateDirectory(QueuesDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }
}
