// The rows of the hardening issue: claims that cost the same however deep the queue
// (`-- queue-depth`), and memory that does not follow the size of a post (`-- large-posts`).
// Both run the deployed binary as separate processes and read time and peak RSS from
// /usr/bin/time, like the seed's rows.
using System.Diagnostics;
using System.Globalization;
using System.IO.Abstractions;
using System.Text;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.TestSupport;

namespace Mailman.Benchmarks;

internal static class Hardening
{
    /// <summary>
    /// For each depth, that many one-line posts (one member each, delivered to smtp-sink) are
    /// queued in `in` as `inject` would, then one `serve --exit-when-idle` drains them: posts per
    /// second should not fall as the depth grows. The queues sit on a tmpfs unless --disk, so the
    /// figure is the queue's own cost, not the disk's fsync.
    /// </summary>
    public static string QueueDepth(string mailman, string work, IReadOnlyList<int> depths, bool disk)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Queue depth: one-line posts queued, then drained by one `serve --exit-when-idle` (3 hops and one SMTP copy each), queues on {(disk ? "the disk" : "a tmpfs")}:");
        sb.AppendLine();
        sb.AppendLine("| posts queued | drain (s) | posts/s | CPU ms/post | peak RSS MB |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var depth in depths)
        {
            var home = Path.Combine(work, "depth");
            var paths = Workloads.FreshInstance(home, () => Unmount(Path.Combine(home, "queues")));
            if (!disk)
            {
                Run("mount", "-t", "tmpfs", "-o", "size=4g,mode=0700", "tmpfs", paths.QueuesDirectory);
            }

            using (var store = new ListStore(paths.Database, create: true))
            {
                store.CreateList(new MailingList { Name = ListName.Parse("bench@example.org"), NonMemberAction = NonMemberAction.Accept, FooterTemplate = "" });
                store.AddMembers(ListName.Parse("bench@example.org"), [new Member("member@example.com", "")]);
            }

            var queue = new Switchboard(new FileSystem(), paths.Queue(QueueSet.In), QueueSet.In, TimeProvider.System);
            for (var i = 0; i < depth; i++)
            {
                queue.Enqueue(new EntryMetadata { List = "bench@example.org", Received = DateTimeOffset.UtcNow, Destination = "bench@example.org" },
                    Encoding.ASCII.GetBytes($"From: p@example.com\nTo: bench@example.org\nSubject: {i}\nMessage-Id: <{i}@example.com>\n\nhi\n"));
            }

            using var sink = SmtpSink.Start();
            var (wall, cpu, rss) = Timed(mailman, home, ["serve", "--exit-when-idle"], new Dictionary<string, string>
            {
                ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
                ["Logging__Console"] = "false",
                ["Logging__MinimumLevel"] = "Warning",
            });
            var left = Directory.GetFiles(paths.Queue(QueueSet.In)).Length + Directory.GetFiles(paths.Queue(QueueSet.Out)).Length;
            if (left > 0)
            {
                throw new InvalidOperationException($"depth {depth}: {left} entries left");
            }

            sb.AppendLine(CultureInfo.InvariantCulture, $"| {depth:N0} | {wall:F1} | {depth / wall:F0} | {cpu * 1000 / depth:F2} | {rss / 1024} |");
            Console.Error.WriteLine(sb.ToString().Split('\n')[^2]);
            if (!disk)
            {
                Unmount(paths.QueuesDirectory);
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// Peak RSS of `inject` and of `serve` for posts of growing size: one held for being over the
    /// list's limit (never read into memory), one delivered to two members.
    /// </summary>
    public static string LargePosts(string mailman, string work, IReadOnlyList<int> sizesMb)
    {
        var sb = new StringBuilder();
        sb.AppendLine("Large posts: peak RSS of each process (target: at most 64 MB + twice the post; at most 100 MB for a post that is held):");
        sb.AppendLine();
        sb.AppendLine("| post | inject (MB) | serve, held over the limit (MB) | serve, delivered to 2 members (MB) | target (MB) |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var mb in sizesMb)
        {
            var file = Path.Combine(work, "large.eml");
            using (var f = File.Create(file))
            {
                f.Write("From: p@example.com\nTo: bench@example.org\nSubject: large\nMessage-Id: <large@example.com>\n\n"u8);
                var line = Encoding.ASCII.GetBytes(new string('x', 1023) + "\n");
                for (var i = 0; i < mb * 1024; i++)
                {
                    f.Write(line);
                }
            }

            var held = Measure(mailman, work, file, limitKb: 1024);
            var delivered = Measure(mailman, work, file, limitKb: 0);
            File.Delete(file);
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {mb:N0} MB | {held.Inject} | {held.Serve} | {delivered.Serve} | {64 + 2 * mb:N0} |");
            Console.Error.WriteLine(sb.ToString().Split('\n')[^2]);
        }

        return sb.ToString();
    }

    private static (long Inject, long Serve) Measure(string mailman, string work, string file, int limitKb)
    {
        var home = Path.Combine(work, "large");
        var paths = Workloads.FreshInstance(home);
        using (var store = new ListStore(paths.Database, create: true))
        {
            store.CreateList(new MailingList { Name = ListName.Parse("bench@example.org"), NonMemberAction = NonMemberAction.Accept, MaxMessageSizeKb = limitKb });
            store.AddMembers(ListName.Parse("bench@example.org"), [new Member("a@example.com", ""), new Member("b@example.com", "")]);
        }

        var (_, _, inject) = Timed(mailman, home, ["inject", "bench@example.org", "--file", file], null);
        using var sink = SmtpSink.Start();
        var (_, _, serve) = Timed(mailman, home, ["serve", "--exit-when-idle"], new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
            ["Logging__Console"] = "false",
        });
        Directory.Delete(home, true);
        return (inject / 1024, serve / 1024);
    }

    internal static (double Wall, double Cpu, long RssKb) Timed(string mailman, string home, string[] args, IDictionary<string, string>? env)
    {
        var timing = Path.Combine(Path.GetTempPath(), "mailman-bench-time.txt");
        string[] command = mailman.EndsWith(".dll", StringComparison.Ordinal) ? ["dotnet", mailman, "--home", home, .. args] : [mailman, "--home", home, .. args];
        var psi = new ProcessStartInfo("/usr/bin/time") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-f", "%e %U %S %M", "-o", timing }.Concat(command))
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        var watch = Stopwatch.StartNew();
        using (var p = Process.Start(psi)!)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
            {
                throw new InvalidOperationException($"mailman {string.Join(' ', args)} exited {p.ExitCode}: {stderr.Result}");
            }
        }

        var wall = watch.Elapsed.TotalSeconds;
        var t = File.ReadAllText(timing).Trim().Split('\n')[^1].Split(' ');
        return (wall, double.Parse(t[1], CultureInfo.InvariantCulture) + double.Parse(t[2], CultureInfo.InvariantCulture), long.Parse(t[3], CultureInfo.InvariantCulture));
    }

    private static void Unmount(string dir) => Run("umount", "-l", dir);

    private static void Run(string file, params string[] args)
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
    }
}
