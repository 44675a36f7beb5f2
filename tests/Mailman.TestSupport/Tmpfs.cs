// A small tmpfs mounted over a directory of a test instance (root only, as CI runs): a disk
// that really fills up. Fill() takes the free space; Free() gives it back.
using System.Diagnostics;

namespace Mailman.TestSupport;

public sealed class Tmpfs : IDisposable
{
    private readonly string _filler;

    private Tmpfs(string directory)
    {
        Directory = directory;
        _filler = Path.Combine(directory, ".filler");
    }

    public string Directory { get; }

    /// <summary>Mounts a tmpfs of <paramref name="size"/> (e.g. "4m") over <paramref name="directory"/>, keeping nothing of what was there.</summary>
    /// <exception cref="InvalidOperationException">Not root, or mount failed: the test cannot prove a disk-full guarantee.</exception>
    public static Tmpfs Mount(string directory, string size, int? inodes = null)
    {
        System.IO.Directory.CreateDirectory(directory);
        if (Run("mount", "-t", "tmpfs", "-o", $"size={size},mode=0700{(inodes is { } n ? $",nr_inodes={n}" : "")}", "tmpfs", directory) != 0)
        {
            throw new InvalidOperationException($"cannot mount a tmpfs on {directory} (needs root); the disk-full guarantee is untested");
        }

        return new Tmpfs(directory);
    }

    /// <summary>Writes a filler file until the file system is full (leaving <paramref name="leave"/> bytes).</summary>
    public void Fill(long leave = 0)
    {
        var info = new DriveInfo(Directory);
        var size = Math.Max(0, info.AvailableFreeSpace - leave);
        using var f = new FileStream(_filler, FileMode.Create);
        var block = new byte[64 * 1024];
        try
        {
            while (size > 0)
            {
                var n = (int)Math.Min(block.Length, size);
                f.Write(block, 0, n);
                size -= n;
            }

            f.Flush(flushToDisk: true);
        }
        catch (IOException)
        {
            // Full already.
        }
    }

    public void Free() => File.Delete(_filler);

    /// <summary>Takes every inode left (empty files in a directory of their own): mount with few <c>inodes</c>.</summary>
    public void FillInodes()
    {
        var dir = _filler + "-inodes";
        try
        {
            System.IO.Directory.CreateDirectory(dir);
            for (var i = 0; i < 100_000; i++)
            {
                File.Create(Path.Combine(dir, i.ToString(System.Globalization.CultureInfo.InvariantCulture))).Dispose();
            }
        }
        catch (IOException)
        {
            // None left.
        }
    }

    public void FreeInodes() => System.IO.Directory.Delete(_filler + "-inodes", recursive: true);

    /// <summary>
    /// Makes <paramref name="directory"/> read-only until disposed (a read-only bind mount over
    /// it, as a file system remounted read-only after an error): new opens and renames fail with
    /// EROFS. Root only.
    /// </summary>
    public static IDisposable ReadOnly(string directory)
    {
        if (Run("mount", "--bind", directory, directory) != 0)
        {
            throw new InvalidOperationException($"cannot bind-mount {directory} (needs root)");
        }

        if (Run("mount", "-o", "remount,bind,ro", directory) != 0)
        {
            Run("umount", "-l", directory);
            throw new InvalidOperationException($"cannot make {directory} read-only");
        }

        return new Unmount(directory);
    }

    private sealed class Unmount(string directory) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (!_done)
            {
                _done = true;
                Run("umount", "-l", directory);
            }
        }
    }

    public void Dispose() => Run("umount", "-l", Directory);

    private static int Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode;
    }
}
