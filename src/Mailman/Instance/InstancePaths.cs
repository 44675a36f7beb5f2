// The layout of an instance directory: config/, queues/, var/ (SQLite) and logs/. Missing
// directories are created on first use, so any empty directory is a working instance.
namespace Mailman.Instance;

/// <summary>Paths inside one Mailman instance directory.</summary>
public sealed class InstancePaths
{
    public InstancePaths(string home)
    {
        Home = Path.GetFullPath(home);
    }

    public string Home { get; }

    public string ConfigDirectory => Path.Combine(Home, "config");

    public string ConfigFile => Path.Combine(ConfigDirectory, "mailman.json");

    public string QueuesDirectory => Path.Combine(Home, "queues");

    public string VarDirectory => Path.Combine(Home, "var");

    public string LogsDirectory => Path.Combine(Home, "logs");

    public string Database => Path.Combine(VarDirectory, "mailman.db");

    /// <summary>The instance's secret HMAC key (one-click links, confirmation tokens): 32 random bytes, mode 0600.</summary>
    public string SecretKeyFile => Path.Combine(VarDirectory, "secret.key");

    public string Queue(string name) => Path.Combine(QueuesDirectory, name);

    /// <summary>The home given by <c>--home</c>, else <c>$MAILMAN_HOME</c>, else the current directory.</summary>
    public static InstancePaths Resolve(string? home)
    {
        if (string.IsNullOrEmpty(home))
        {
            home = Environment.GetEnvironmentVariable("MAILMAN_HOME");
        }

        return new InstancePaths(string.IsNullOrEmpty(home) ? Directory.GetCurrentDirectory() : home);
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
