// One daemon per instance. `serve` takes flock(2) LOCK_EX on the instance's home and on the
// queues directory itself, before the host is built, and holds them for its whole life; the
// kernel drops them when the process dies. A lock file in var/ could be deleted under a running
// daemon (a second one then locked a fresh file and ran beside it, both claiming entries); the
// directory holding the queues cannot be removed while it holds them, and the home stays
// locked when queues/ is replaced or removed all the same. Who holds the lock is read from
// /proc/locks; the pid also goes to var/serve.pid for where that cannot be read: a full disk
// may keep it from being written, never the lock from being taken, and nothing is ever
// buffered on the locked descriptor (a failed flush at exit cannot fail the stop).
using System.Runtime.InteropServices;

namespace Mailman.Instance;

public sealed partial class ServeLock : IDisposable
{
    private const int ORdOnly = 0;
    private const int ODirectory = 0x10000;
    private const int OCloexec = 0x80000;
    private const int LockEx = 2;
    private const int LockNb = 4;
    private const int EWouldBlock = 11;
    private const int EAccess = 13;

    private readonly InstancePaths _paths;
    private int _fd;
    private int _homeFd;

    private ServeLock(InstancePaths paths, int homeFd, int fd)
    {
        _paths = paths;
        _homeFd = homeFd;
        _fd = fd;
    }

    public static string PidFile(InstancePaths paths) => Path.Combine(paths.VarDirectory, "serve.pid");

    /// <summary>Takes the instance's serve lock, or says who holds it.</summary>
    /// <exception cref="ServeLockException">Another daemon holds it (<see cref="ServeLockException.Held"/>), or the queues directory cannot be opened.</exception>
    public static ServeLock Acquire(InstancePaths paths)
    {
        paths.EnsureCreated();

        // The instance's home as well as its queues: an operator who replaced queues/ under a
        // running daemon (a copy moved into place) let a second one lock the new directory and
        // deliver the same post beside the first (review 28).
        var home = Lock(paths, paths.Home);
        try
        {
            return new ServeLock(paths, home, Lock(paths, paths.QueuesDirectory)).WithPid();
        }
        catch
        {
            _ = Close(home);
            throw;
        }
    }

    /// <summary>
    /// Takes the serve lock for a verb that must know no daemon runs while it works (no pid is
    /// written: it is no daemon); null when a daemon holds it. A daemon started meanwhile
    /// is refused, as beside another daemon.
    /// </summary>
    /// <exception cref="ServeLockException">The lock cannot be taken for another reason (the queues directory cannot be opened).</exception>
    public static ServeLock? WhileNoneRuns(InstancePaths paths)
    {
        int home;
        try
        {
            home = Lock(paths, paths.Home);
        }
        catch (ServeLockException e) when (e.Held)
        {
            return null;
        }

        try
        {
            return new ServeLock(paths, home, Lock(paths, paths.QueuesDirectory));
        }
        catch (ServeLockException e) when (e.Held)
        {
            _ = Close(home);
            return null;
        }
        catch
        {
            _ = Close(home);
            throw;
        }
    }

    private static int Lock(InstancePaths paths, string directory)
    {
        var fd = Open(directory, ORdOnly | ODirectory | OCloexec);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new ServeLockException(held: false, errno == EAccess,
                $"cannot open {directory}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        // A verb that takes the lock for a moment (`lists delete`, to know no daemon runs) is
        // waited for; a daemon is not (review 72: a serve started then was refused, naming the
        // verb's pid as "another mailman serve", and a second delete took the first for a daemon).
        // A holder not seen in /proc/locks most often let go between the two looks (ci49: the
        // verb's moment ended there, and the daemon was refused naming "pid unknown"): the lock
        // is tried again, a few times, before it is taken for a holder /proc/locks cannot show.
        var waitedSince = Environment.TickCount64;
        int status;
        var lastErrno = 0;
        var unseen = 0;
        while ((status = Flock(fd, LockEx | LockNb)) != 0 && (lastErrno = Marshal.GetLastPInvokeError()) == EWouldBlock
            && Environment.TickCount64 - waitedSince < VerbWait.TotalMilliseconds)
        {
            var holder = Running(paths);
            if (holder is null ? ++unseen > 3 : IsServe(holder))
            {
                break;
            }

            Thread.Sleep(holder is null ? 10 : 50);
        }

        if (status != 0)
        {
            var errno = lastErrno;
            _ = Close(fd);
            if (errno == EWouldBlock)
            {
                // The kernel names the holder (/proc/locks); the pid file only where it cannot.
                var pid = Running(paths) ?? Holder(paths);
                throw new ServeLockException(held: true, permission: false,
                    $"another mailman serve (pid {pid ?? "unknown"}) is running on the instance {paths.Home}");
            }

            throw new ServeLockException(held: false, permission: false,
                $"cannot lock {directory}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        return fd;
    }

    /// <summary>How long a verb holding the lock for a moment is waited for.</summary>
    public static readonly TimeSpan VerbWait = TimeSpan.FromSeconds(30);

    // Whether the process is a `mailman serve` (its command line has the verb as a word); one
    // whose command line cannot be read is taken for one (nothing is waited for).
    private static bool IsServe(string pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0').Contains("serve");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    private ServeLock WithPid()
    {
        WritePid();
        return this;
    }

    /// <summary>The pid the running daemon recorded, if it could; null when unknown.</summary>
    public static string? Holder(InstancePaths paths)
    {
        try
        {
            var text = FileOwner.ReadRegularText(PidFile(paths))?.Trim();
            return int.TryParse(text, out var pid) && pid > 0 ? pid.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The pid of the daemon serving this instance, or null when none runs.</summary>
    /// <remarks>
    /// The kernel's word, not the pid file's: /proc/locks lists the flock serve holds on the home
    /// with its pid (review 48: a killed daemon's pid file naming a pid reused since said a daemon
    /// ran; a running daemon's pid file removed said none did). Without /proc/locks, the pid file.
    /// </remarks>
    public static string? Running(InstancePaths paths)
    {
        try
        {
            if (FileOwner.LockId(paths.Home) is { } id)
            {
                // The kernel writes /proc/locks a page per read(2) and finds its place again by
                // counting: a lock dropped before that place between two reads (SQLite's fcntl
                // locks come and go all the time) moves our line back past it, unseen. A line is
                // never made up, so a miss is read again: a holder missed twenty times running
                // is not there (ci 2026-12-05: status said no daemon ran beside a running one;
                // under CI's load one read in five missed while locks churned, and five reads
                // in a row missed once in 3,000). A read is some microseconds.
                for (var attempt = 0; attempt < 20; attempt++)
                {
                    if (LockHolder(id) is { } pid)
                    {
                        return pid;
                    }
                }

                return null;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return Holder(paths) is { } recorded && Directory.Exists("/proc/" + recorded) ? recorded : null;
    }

    private static string? LockHolder(string id)
    {
        foreach (var line in File.ReadLines("/proc/locks"))
        {
            // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters are "1: -> FLOCK ...".
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields is [_, "FLOCK", _, "WRITE", var pid, var on, ..] && on == id)
            {
                return pid;
            }
        }

        return null;
    }

    /// <summary>
    /// Whether <paramref name="recordedPid"/>, a pid the daemon wrote itself (var/progress.json,
    /// var/relays.json), is the daemon <paramref name="daemonPid"/> that <see cref="Running"/>
    /// named: the same number, or its pid inside its own pid namespace (a container, systemd's
    /// PrivatePIDs=: it writes 1 where /proc/locks names the host's pid; review 50).
    /// </summary>
    public static bool IsDaemon(string? daemonPid, int recordedPid)
    {
        if (daemonPid is null)
        {
            return false;
        }

        var recorded = recordedPid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (daemonPid == recorded)
        {
            return true;
        }

        try
        {
            // "NSpid:\t9342\t1": the pid in each namespace it is in, the innermost last.
            return File.ReadLines($"/proc/{daemonPid}/status").FirstOrDefault(l => l.StartsWith("NSpid:", StringComparison.Ordinal)) is { } line
                && line.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[^1] == recorded;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        if (_fd < 0)
        {
            return;
        }

        // The pid file goes first: once the lock is released another daemon may write its own.
        try
        {
            if (Holder(_paths) == Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                File.Delete(PidFile(_paths));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        _ = Close(_fd);
        _ = Close(_homeFd);
        _fd = -1;
        _homeFd = -1;
    }

    private void WritePid()
    {
        // Written whole through a temporary name: a second daemon never reads half a pid.
        var file = PidFile(_paths);
        var temp = file + ".tmp";
        try
        {
            FileOwner.Replace(file, System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId + "\n")); // review 48: a FIFO at its temporary hung every start
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A crashed daemon's pid must not be named instead of ours.
            try
            {
                File.Delete(temp);
                File.Delete(file);
            }
            catch (Exception again) when (again is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}

/// <summary>The serve lock could not be taken: held by another daemon, or the queues directory is unusable.</summary>
public sealed class ServeLockException(bool held, bool permission, string message) : Exception(message)
{
    public bool Held { get; } = held;

    public bool Permission { get; } = permission;
}
