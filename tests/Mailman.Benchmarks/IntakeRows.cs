// The intake row of the day-one issue (`-- intake`): posts accepted per second through the
// daemon's LMTP listener (`smtp-source -L -s 8`, as Postfix's lmtp transport delivers) against
// `mailman inject` started once per post (Postfix's pipe), 8 at a time. Both write the same
// durable entry (Queues/Intake: fsync, rename, directory fsync) into the owner queue; the list has
// no owner, so the owner runner sets each aside in bad by a rename (a few stat and rename calls
// per post beside intake's two fsyncs), and the count is checked on disk in both.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Benchmarks;

internal static class IntakeRows
{
    private const string Owner = "bench-owner@example.org";

    public static string Run(string mailman, string work, int posts, int size)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Intake: {posts:N0} posts of {size / 1024} KB to {Owner}, 8 at a time, each durable before its 250 or exit 0:");
        sb.AppendLine();
        sb.AppendLine("| door | posts | wall (s) | posts/s | CPU ms per post |");
        sb.AppendLine("|---|---|---|---|---|");

        var post = Encoding.ASCII.GetBytes($"From: poster@example.com\nTo: {Owner}\nSubject: intake\nMessage-Id: <intake@example.com>\n\n" + new string('x', size - 100) + "\n");
        var home = Fresh(work, "intake-inject");
        var cpuBefore = CpuSeconds("/proc/self/stat", children: true);
        var watch = Stopwatch.StartNew();
        var next = -1;
        var workers = Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            while (Interlocked.Increment(ref next) < posts)
            {
                Inject(mailman, home, post);
            }
        })).ToArray();
        Task.WaitAll(workers);
        var inject = watch.Elapsed.TotalSeconds;
        var injectCpu = CpuSeconds("/proc/self/stat", children: true) - cpuBefore;
        Check(home, posts, "inject");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| `mailman inject` per post (pipe) | {posts:N0} | {inject:F2} | {posts / inject:N0} | {injectCpu * 1000 / posts:F2} |");

        home = Fresh(work, "intake-lmtp");
        var port = Net.FreePort();
        using var daemon = Start(mailman, home, port);
        Wait.Until(() => Net.CanConnect(port), TimeSpan.FromSeconds(60), "the LMTP listener");
        var daemonStat = $"/proc/{daemon.Id}/stat";
        var daemonBefore = CpuSeconds(daemonStat, children: false);
        watch.Restart();
        var source = Process.Start(new ProcessStartInfo("/usr/sbin/smtp-source", ["-L", "-s", "8", "-m", posts.ToString(CultureInfo.InvariantCulture), "-l", size.ToString(CultureInfo.InvariantCulture), "-f", "poster@example.com", "-t", Owner, $"127.0.0.1:{port}"]) { RedirectStandardError = true })!;
        var stderr = source.StandardError.ReadToEnd();
        source.WaitForExit();
        var lmtp = watch.Elapsed.TotalSeconds;
        if (source.ExitCode != 0)
        {
            daemon.Kill();
            throw new InvalidOperationException("smtp-source: " + stderr);
        }

        var lmtpCpu = CpuSeconds(daemonStat, children: false) - daemonBefore;

        // Stopped before the count: its owner runner claims entries (.msg to .bak) meanwhile.
        daemon.Kill();
        daemon.WaitForExit();
        Check(home, posts, "LMTP");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| LMTP, `smtp-source -L -s 8` | {posts:N0} | {lmtp:F2} | {posts / lmtp:N0} | {lmtpCpu * 1000 / posts:F2} (daemon) |");
        return sb.ToString();
    }

    // utime + stime (fields 14, 15), or the waited-for children's (16, 17), in seconds.
    private static double CpuSeconds(string statPath, bool children)
    {
        var stat = File.ReadAllText(statPath);
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var first = children ? 13 : 11; // 0-based after the comm field: field 3 is index 0
        return (long.Parse(fields[first], CultureInfo.InvariantCulture) + long.Parse(fields[first + 1], CultureInfo.InvariantCulture)) / 100.0;
    }

    private static string Fresh(string work, string name)
    {
        var home = Path.Combine(work, name);
        if (Directory.Exists(home))
        {
            Directory.Delete(home, true);
        }

        var paths = new Mailman.Instance.InstancePaths(home);
        paths.EnsureCreated();
        using var store = new ListStore(paths.Database, create: true);
        store.CreateList(new MailingList { Name = ListName.Parse("bench@example.org"), DisplayName = "Bench" });
        return home;
    }

    private static void Check(string home, int posts, string door)
    {
        // A queue nothing was written to may not exist: inject makes only the one it writes.
        var count = new[] { "owner", "bad" }.Select(q => Path.Combine(home, "queues", q)).Sum(d => Directory.Exists(d) ? Directory.GetFiles(d, "*.msg").Length + Directory.GetFiles(d, "*.bak").Length : 0);
        if (count != posts)
        {
            throw new InvalidOperationException($"{door}: {count} of {posts} posts on disk");
        }
    }

    private static ProcessStartInfo Info(string mailman, string home, IEnumerable<string> args)
    {
        var psi = mailman.EndsWith(".dll", StringComparison.Ordinal) ? new ProcessStartInfo("dotnet", [mailman]) : new ProcessStartInfo(mailman);
        psi.ArgumentList.Add("--home");
        psi.ArgumentList.Add(home);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.RedirectStandardInput = psi.RedirectStandardError = psi.RedirectStandardOutput = true;
        return psi;
    }

    private static void Inject(string mailman, string home, byte[] post)
    {
        using var p = Process.Start(Info(mailman, home, ["inject", Owner, "--sender", "poster@example.com"]))!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.BaseStream.Write(post);
        p.StandardInput.Close();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"inject exited {p.ExitCode}: {stderr.Result}");
        }
    }

    private static Process Start(string mailman, string home, int port)
    {
        var psi = Info(mailman, home, ["serve"]);
        psi.Environment["Mailman__Lmtp__Url"] = $"lmtp://127.0.0.1:{port}";
        psi.Environment["Mailman__Lmtp__MaxSessions"] = "64";
        psi.Environment["Logging__Console"] = "false";
        psi.RedirectStandardOutput = psi.RedirectStandardError = false;
        var p = Process.Start(psi)!;
        p.StandardInput.Close();
        return p;
    }
}
