// CPU time of a whole process tree that forks and reaps its workers (Postfix's master and every
// smtpd, cleanup, trivial-rewrite, qmgr and discard it starts), which /usr/bin/time cannot give:
// the tree is moved into a cgroup of its own (v2's cpu.stat, or v1's cpuacct.usage) and the
// cgroup's counter read. Needs root; where no cgroup can be made the figure is absent, not guessed.
using System.Globalization;

namespace Mailman.Benchmarks;

public sealed class ProcessTreeCpu : IDisposable
{
    private readonly string _dir;
    private readonly bool _v2;

    private ProcessTreeCpu(string dir, bool v2)
    {
        _dir = dir;
        _v2 = v2;
    }

    /// <summary>Moves <paramref name="rootPid"/> and its current children into a new cgroup; null where that cannot be done.</summary>
    public static ProcessTreeCpu? Track(int rootPid)
    {
        var name = $"mailman-bench-{Environment.ProcessId}-{rootPid}";
        foreach (var (parent, v2) in new[] { ("/sys/fs/cgroup", true), ("/sys/fs/cgroup/cpuacct", false) })
        {
            if (v2 != File.Exists(Path.Combine(parent, "cgroup.controllers")) || !Directory.Exists(parent))
            {
                continue;
            }

            var dir = Path.Combine(parent, name);
            try
            {
                Directory.CreateDirectory(dir);

                // The root first: whatever it forks from now on is born inside; then the children it already has.
                File.AppendAllText(Path.Combine(dir, "cgroup.procs"), rootPid.ToString(CultureInfo.InvariantCulture));
                foreach (var child in ChildrenOf(rootPid))
                {
                    try
                    {
                        File.AppendAllText(Path.Combine(dir, "cgroup.procs"), child.ToString(CultureInfo.InvariantCulture));
                    }
                    catch (IOException)
                    {
                        // Exited in between: its time is not ours to count.
                    }
                }

                var tracked = new ProcessTreeCpu(dir, v2);
                _ = tracked.Seconds();
                return tracked;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                TryRemove(dir);
            }
        }

        return null;
    }

    /// <summary>CPU seconds (user and system) the tree has used since it was moved, exited workers included.</summary>
    public double Seconds()
    {
        if (_v2)
        {
            var usage = File.ReadLines(Path.Combine(_dir, "cpu.stat")).First(l => l.StartsWith("usage_usec ", StringComparison.Ordinal));
            return long.Parse(usage["usage_usec ".Length..], CultureInfo.InvariantCulture) / 1e6;
        }

        return long.Parse(File.ReadAllText(Path.Combine(_dir, "cpuacct.usage")).Trim(), CultureInfo.InvariantCulture) / 1e9;
    }

    /// <summary>Moves what still runs back to the parent cgroup and removes this one (rmdir of an emptied cgroup).</summary>
    public void Dispose() => TryRemove(_dir);

    private static void TryRemove(string dir)
    {
        var parentProcs = Path.Combine(Path.GetDirectoryName(dir)!, "cgroup.procs");
        for (var i = 0; i < 20 && Directory.Exists(dir); i++)
        {
            try
            {
                foreach (var pid in File.ReadAllLines(Path.Combine(dir, "cgroup.procs")).Where(l => l.Length > 0))
                {
                    try
                    {
                        File.AppendAllText(parentProcs, pid);
                    }
                    catch (IOException)
                    {
                        // Exited in between.
                    }
                }

                Directory.Delete(dir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A worker forked while the others were moved: once more.
                Thread.Sleep(50);
            }
        }
    }

    private static IEnumerable<int> ChildrenOf(int pid)
    {
        foreach (var stat in Directory.EnumerateDirectories("/proc").Select(d => Path.Combine(d, "stat")))
        {
            string text;
            try
            {
                text = File.ReadAllText(stat);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'.
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            if (fields.Length > 1 && int.TryParse(fields[1], CultureInfo.InvariantCulture, out var ppid) && ppid == pid)
            {
                yield return int.Parse(text.AsSpan(0, text.IndexOf(' ')), CultureInfo.InvariantCulture);
            }
        }
    }
}
