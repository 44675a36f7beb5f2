// Who owns a file, what kind of file it is, and who we are: for one-line errors that name the
// owner, mode and fix of a file the daemon cannot use, for refusing to write root-owned files
// into another user's instance, and for refusing settings files that are not files. .NET has no
// API for st_uid or st_mode's type, nor a rename that never replaces; stat(2), link(2) and
// geteuid(2) come from libc.
using System.Runtime.InteropServices;

namespace Mailman.Instance;

public static partial class FileOwner
{
    /// <summary>Why <paramref name="path"/> could not be opened to read: .NET calls a directory "Access ... denied" (review 39).</summary>
    public static string WhyUnreadable(string path, Exception e) => Directory.Exists(path) ? $"{path} is a directory, not a file" : e.Message;

    /// <summary>
    /// What <paramref name="path"/> links to when that is missing (or a loop of links), else null.
    /// .NET's File.Exists is true of such a link, and opening it says "Could not find file".
    /// </summary>
    public static string? DanglingLinkTarget(string path)
    {
        if (new FileInfo(path).LinkTarget is not { } target)
        {
            return null;
        }

        try
        {
            return File.ResolveLinkTarget(path, returnFinalTarget: true) is { Exists: true } ? null : target;
        }
        catch (IOException)
        {
            return target;
        }
    }

    /// <summary>
    /// Gives <paramref name="existing"/> the name <paramref name="name"/> unless that name is taken
    /// (link(2): the test and the naming are one step; File.Move without overwrite checks, then
    /// renames over whatever came in between). False when it is taken.
    /// </summary>
    /// <exception cref="IOException">Any other failure.</exception>
    public static bool TryLinkNew(string existing, string name)
    {
        if (Link(existing, name) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        return errno == 17 ? false // EEXIST
            : throw new IOException($"cannot link {existing} to {name}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    /// <summary>The effective user id of this process.</summary>
    public static uint EffectiveUid => GetEuid();

    /// <summary>The uid that owns <paramref name="path"/>, or null when it cannot be read (no such file, unknown platform layout).</summary>
    public static uint? Uid(string path) => StatWord(path, x64: 28, arm64: 24); // st_uid

    /// <summary>Whether <paramref name="path"/> (links followed) is a regular file; null when it cannot be read.</summary>
    public static bool? IsRegularFile(string path)
        => StatWord(path, x64: 24, arm64: 16) is { } mode ? (mode & 0xF000) == 0x8000 : null; // st_mode: S_IFMT, S_IFREG

    /// <summary>
    /// <paramref name="path"/>'s device and inode as /proc/locks writes them ("08:01:1234": major
    /// and minor in hex, glibc's dev_t encoding decoded), or null when it cannot be stat'ed.
    /// </summary>
    public static unsafe string? LockId(string path)
    {
        var buffer = stackalloc byte[256];
        if (RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64) || Stat(path, buffer) != 0)
        {
            return null;
        }

        var dev = *(ulong*)buffer; // st_dev, then st_ino: the same offsets on both
        var ino = *(ulong*)(buffer + 8);
        var major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xfffff000);
        var minor = (dev & 0xff) | ((dev >> 12) & 0xffffff00);
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{major:x2}:{minor:x2}:{ino}");
    }

    /// <summary>
    /// Writes <paramref name="temp"/> anew: a link or a FIFO left at its name is removed, never
    /// written through (a FIFO blocked the writer; a link had the bytes written outside the
    /// instance: reviews 45, 48).
    /// </summary>
    public static void WriteNew(string temp, byte[] bytes)
    {
        File.Delete(temp);
        using var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write);
        stream.Write(bytes);
    }

    /// <summary>Replaces <paramref name="path"/> whole: written anew as PATH.tmp (<see cref="WriteNew"/>), then renamed over it.</summary>
    public static void Replace(string path, byte[] bytes)
    {
        WriteNew(path + ".tmp", bytes);
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>Deletes <paramref name="path"/> if it can; a directory or a denied delete leaves it, said by whoever reads it.</summary>
    public static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    // One 32-bit field of struct stat, at its byte offset on x86_64 or arm64 (asm-generic); null
    // when the path cannot be stat'ed or the platform's layout is not known.
    private static unsafe uint? StatWord(string path, int x64, int arm64)
    {
        var offset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => x64,
            Architecture.Arm64 => arm64,
            _ => -1,
        };
        var buffer = stackalloc byte[256];
        return offset >= 0 && Stat(path, buffer) == 0 ? *(uint*)(buffer + offset) : null;
    }

    /// <summary>The first of <paramref name="paths"/> owned by a user other than this process's; null when all are ours or not there.</summary>
    public static string? FirstNotOurs(params string[] paths)
        => Array.Find(paths, f => Uid(f) is { } owner && owner != EffectiveUid);

    /// <summary>
    /// The text of a small file the daemon writes (a pid, a snapshot), or null when there is none
    /// or it is not a regular file: a FIFO there blocked the read, and status, for good (review 43).
    /// </summary>
    /// <exception cref="IOException">It could not be read.</exception>
    public static string? ReadRegularText(string path)
        => IsRegularFile(path) == true ? File.ReadAllText(path) : null;

    /// <summary>
    /// Why a settings file (the configuration, a password, a CA file) is not read whole at start:
    /// a FIFO waits for a writer for good, a device or a huge file reads until memory runs out
    /// (reviews 40, 41). Null when it is a regular file of at most <paramref name="maxBytes"/>, or not there.
    /// </summary>
    public static string? NotASettingsFile(string path, long maxBytes)
        => IsRegularFile(path) switch
        {
            false when !Directory.Exists(path) => "is not a regular file (a FIFO, a device?)",
            true when new FileInfo(path).Length > maxBytes => $"is {new FileInfo(path).Length:N0} bytes, more than such a file holds ({maxBytes:N0} at most)",
            _ => null,
        };

    /// <summary>The device and inode of <paramref name="path"/> (st_dev, st_ino: the first two fields of struct stat on x86_64 and arm64), or null when it cannot be read.</summary>
    public static unsafe (ulong Device, ulong Inode)? Identity(string path)
    {
        var buffer = stackalloc byte[256];
        return Stat(path, buffer) == 0 ? (*(ulong*)buffer, *(ulong*)(buffer + 8)) : null;
    }

    /// <summary>The user name of <paramref name="uid"/> from /etc/passwd, else the number.</summary>
    public static string UserName(uint uid)
        => Users().FirstOrDefault(u => u.Uid == uid).Name ?? uid.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The uid of user <paramref name="name"/> from /etc/passwd; null when there is none (or no file).</summary>
    public static uint? UidOf(string name)
        => Users().Where(u => u.Name == name).Select(u => (uint?)u.Uid).FirstOrDefault();

    // /etc/passwd's names and uids; none when it cannot be read.
    private static List<(string Name, uint Uid)> Users()
    {
        List<(string Name, uint Uid)> users = [];
        try
        {
            foreach (var line in File.ReadLines("/etc/passwd"))
            {
                var fields = line.Split(':');
                if (fields.Length > 2 && uint.TryParse(fields[2], out var u))
                {
                    users.Add((fields[0], u));
                }
            }
        }
        catch (IOException)
        {
        }

        return users;
    }

    /// <summary>"owned by root, mode 0600" for an error line.</summary>
    public static string Describe(string path)
    {
        var uid = Uid(path);
        string mode;
        try
        {
            mode = Convert.ToString((int)File.GetUnixFileMode(path), 8).PadLeft(4, '0');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            mode = "?";
        }

        return $"owned by {(uid is { } u ? UserName(u) : "?")}, mode {mode}";
    }

    /// <summary>umask(077): files this process creates are readable by their owner only.</summary>
    public static void RestrictUmask() => _ = Umask(0x3f);

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Link(string existing, string name);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Stat(string path, byte* buffer);
}
