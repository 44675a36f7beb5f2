// One row of the table: the real daemon (`inject`, then `serve --exit-when-idle` under
// /usr/bin/time) into smtp-sink, alternating with `smtp-source -d -s 8` pushing posts of the same
// size into an identical sink. The ratio of the two, per pair, is the figure; seconds drift.
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Benchmarks;

public sealed record Measurement(double Wall, double User, double Sys, long MaxRssKb, long Count)
{
    public double Cpu => User + Sys;

    /// <summary>The receiving server's CPU seconds for the run (the rows through Postfix), where measured.</summary>
    public double? ServerCpu { get; init; }
}

public sealed partial class EndToEnd(string mailman, string work, bool oneClick = false)
{
    /// <summary>The public URL the --one-click rows set: every copy carries its member's RFC 8058 link.</summary>
    public const string OneClickUrl = "https://lists.example.org/mm";

    // A mailman.dll runs under dotnet; a published executable runs as itself.
    private string[] Mailman(params string[] args)
        => mailman.EndsWith(".dll", StringComparison.Ordinal) ? ["dotnet", mailman, .. args] : [mailman, .. args];

    private const string SinkBinary = "/usr/sbin/smtp-sink";
    private const string SourceBinary = "/usr/sbin/smtp-source";

    public static void CheckTools()
    {
        foreach (var tool in new[] { SinkBinary, SourceBinary, "/usr/bin/time" })
        {
            if (!File.Exists(tool))
            {
                throw new InvalidOperationException($"{tool} is missing: apt-get install postfix time (preseed postfix with 'No configuration')");
            }
        }
    }

    /// <summary>A fresh instance with the list and members; returns its home.</summary>
    public string Instance(Row row, IReadOnlyList<string> members, string name)
    {
        // A pooled SQLite connection would still see the deleted database of the last run.
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        var home = Path.Combine(work, name);
        if (Directory.Exists(home))
        {
            Directory.Delete(home, true);
        }

        var paths = new Mailman.Instance.InstancePaths(home);
        paths.EnsureCreated();
        using var store = new ListStore(paths.Database, create: true);
        var list = new MailingList
        {
            Name = ListName.Parse("bench@example.org"),
            DisplayName = "Bench",
            Personalize = Personalization.Full,
            NonMemberAction = NonMemberAction.Accept,
            FooterTemplate = "_______________________________________________\n$display_name mailing list\nsent to $user_address\n",
            DmarcMitigateAction = row.Dns is null ? DmarcMitigateAction.NoMitigation : DmarcMitigateAction.MungeFrom,
        };
        store.CreateList(list);
        store.AddMembers(list.Name, members.Select(m => new Member(m, "")));
        return home;
    }

    public Measurement Ours(Row row, string home, byte[] post, int expected)
    {
        using var sink = Sink.Start();
        var timed = InjectAndServe(row, home, post, sink.Port);
        var count = sink.Stop();
        if (count != expected)
        {
            throw new InvalidOperationException($"{row.Name}: the sink counted {count} copies, expected {expected}");
        }

        return timed with { Count = count };
    }

    /// <summary>
    /// A running list server: `serve` started first and idle, then the clock runs from `mailman
    /// inject` to the last copy counted at the sink. CPU and peak RSS are the daemon's (from /proc)
    /// plus inject's. <paramref name="extra"/> adds settings (a paced destination). With
    /// <paramref name="relays"/> above 1, a pool: that many smtp-sinks, each a relay of
    /// <paramref name="relayConnections"/> connections and weight 1, their counts summed. With
    /// <paramref name="via"/>, into that Postfix instead: timed until the daemon logs the post
    /// delivered (Postfix's last 250), counted from Postfix's log, Postfix's CPU from
    /// <paramref name="viaCpu"/> until it discarded them all.
    /// </summary>
    public Measurement Warm(Row row, string home, byte[] post, long expected, IDictionary<string, string>? extra = null, bool stopAtExpected = false,
        int relays = 1, int relayConnections = 4, PostfixInstance? via = null, ProcessTreeCpu? viaCpu = null)
    {
        var sinks = via is null ? Enumerable.Range(0, relays).Select(_ => Sink.Start()).ToList() : [];
        using var stopSinks = new Disposer(() => sinks.ForEach(s => s.Dispose()));
        var output = new StringBuilder();

        // Through Postfix the end is the daemon's "delivered:" line, waited for without polling
        // (the loop copied the daemon's whole output every 2 ms, beside Postfix on two cores).
        var delivered = new TaskCompletionSource();
        long Counted() => via is null ? sinks.Sum(s => s.Count()) : delivered.Task.IsCompleted ? expected : 0;

        var env = new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = (via?.Port ?? sinks[0].Port).ToString(CultureInfo.InvariantCulture),
            ["Mailman__Smtp__MaxRecipients"] = row.MaxRecipients.ToString(CultureInfo.InvariantCulture),
            ["Logging__Console"] = "true",
            ["Logging__File"] = "false",
        };
        if (relays > 1)
        {
            for (var i = 0; i < relays; i++)
            {
                env[$"Mailman__Smtp__Relays__{i}__Address"] = "127.0.0.1:" + sinks[i].Port.ToString(CultureInfo.InvariantCulture);
                env[$"Mailman__Smtp__Relays__{i}__Connections"] = relayConnections.ToString(CultureInfo.InvariantCulture);
                env[$"Mailman__Smtp__Relays__{i}__Weight"] = "1";
            }
        }

        foreach (var (k, v) in extra ?? new Dictionary<string, string>())
        {
            env[k] = v;
        }

        var serve = Mailman("--home", home, "serve");
        var psi = new ProcessStartInfo(serve[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in serve[1..])
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        using var daemon = Process.Start(psi)!;
        void Received(string? line)
        {
            lock (output)
            {
                output.AppendLine(line);
            }

            if (line?.Contains(" delivered: ", StringComparison.Ordinal) == true)
            {
                delivered.TrySetResult();
            }
        }

        daemon.OutputDataReceived += (_, e) => Received(e.Data);
        daemon.ErrorDataReceived += (_, e) => Received(e.Data);
        daemon.BeginOutputReadLine();
        daemon.BeginErrorReadLine();
        try
        {
            var ready = Stopwatch.StartNew();
            while (true)
            {
                lock (output)
                {
                    if (output.ToString().Contains("RetryRunner started", StringComparison.Ordinal))
                    {
                        break;
                    }
                }

                if (daemon.HasExited || ready.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new InvalidOperationException("serve did not start: " + output);
                }

                Thread.Sleep(20);
            }

            Thread.Sleep(500); // idle, as a running server is between posts
            var discardedBefore = via is null ? 0 : Discarded(via);
            var serverCpuBefore = viaCpu?.Seconds();
            var cpuBefore = ProcCpu(daemon.Id);
            var watch = Stopwatch.StartNew();
            var inject = Mailman("--home", home, "inject", "bench@example.org");
            var injectCpu = TimedCpu(inject, post);
            while (Counted() < expected)
            {
                if (daemon.HasExited || watch.Elapsed > TimeSpan.FromMinutes(30))
                {
                    throw new InvalidOperationException($"{row.Name}: warm run stopped at {Counted()} of {expected}: {output}");
                }

                if (via is null)
                {
                    Thread.Sleep(2);
                }
                else
                {
                    delivered.Task.Wait(TimeSpan.FromSeconds(1));
                }
            }

            var wall = watch.Elapsed.TotalSeconds;
            var cpu = ProcCpu(daemon.Id) - cpuBefore + injectCpu;
            var rss = ProcPeakRssKb(daemon.Id);
            Terminate(daemon);
            var count = via is null ? sinks.Sum(s => s.Stop()) : WaitForDiscards(via, discardedBefore + expected) - discardedBefore;
            if (!stopAtExpected && count != expected)
            {
                throw new InvalidOperationException($"{row.Name}: the sink counted {count} copies, expected {expected}");
            }

            return new Measurement(wall, cpu, 0, rss, count) { ServerCpu = viaCpu?.Seconds() - serverCpuBefore };
        }
        finally
        {
            if (!daemon.HasExited)
            {
                daemon.Kill();
            }
        }
    }

    // utime + stime of a process, in seconds (clock ticks of 100 Hz).
    private static double ProcCpu(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    private static long ProcPeakRssKb(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    private double TimedCpu(string[] command, byte[] stdin)
    {
        var timing = Path.Combine(work, "time-inject.txt");
        Run("/usr/bin/time", ["-f", "%e %U %S %M", "-o", timing, .. command], stdin);
        var t = File.ReadAllText(timing).Trim().Split('\n')[^1].Split(' ');
        return D(t[1]) + D(t[2]);
    }

    private static void Terminate(Process daemon)
    {
        using var kill = Process.Start("kill", ["-TERM", daemon.Id.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        if (!daemon.WaitForExit(120_000))
        {
            daemon.Kill();
        }
    }

    public Measurement SmtpSource(int size, int count)
    {
        using var sink = Sink.Start();
        var timed = SourceInto(sink.Port, size, count);
        return timed with { Count = sink.Stop() };
    }

    /// <summary>`mailman inject` of the post, then `serve --exit-when-idle` into <paramref name="port"/> under /usr/bin/time.</summary>
    private Measurement InjectAndServe(Row row, string home, byte[] post, int port, bool bdat = false, IDictionary<string, string>? extra = null)
    {
        var inject = Mailman("--home", home, "inject", "bench@example.org");
        Run(inject[0], inject[1..], post);
        var env = WithDns(row, new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = port.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Smtp__MaxRecipients"] = row.MaxRecipients.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Smtp__PreferBdat"] = bdat ? "true" : "false",
            ["Mailman__Http__PublicUrl"] = oneClick ? OneClickUrl : "",
            ["Logging__Console"] = "false",
        });
        foreach (var (k, v) in extra ?? new Dictionary<string, string>())
        {
            env[k] = v;
        }

        return Timed(Mailman("--home", home, "serve", "--exit-when-idle"), env);
    }

    /// <summary>`smtp-source -d -s 8` pushing <paramref name="count"/> messages of <paramref name="size"/> bytes, under /usr/bin/time.</summary>
    private Measurement SourceInto(int port, int size, int count, string[]? extra = null)
        => Timed([SourceBinary, "-d", "-s", "8", "-m", count.ToString(CultureInfo.InvariantCulture), "-l", size.ToString(CultureInfo.InvariantCulture),
            "-f", "bench-bounces@example.org", "-t", "member@example.com", .. extra ?? [], $"127.0.0.1:{port}"], null);

    // Wall time from here; user, system and peak RSS from /usr/bin/time. Count is the caller's.
    private Measurement Timed(string[] command, IDictionary<string, string>? env)
    {
        var timing = Path.Combine(work, "time.txt");
        var watch = Stopwatch.StartNew();
        Run("/usr/bin/time", ["-f", "%e %U %S %M", "-o", timing, .. command], null, env);
        var wall = watch.Elapsed.TotalSeconds;
        var t = File.ReadAllText(timing).Trim().Split('\n')[^1].Split(' ');
        return new Measurement(wall, D(t[1]), D(t[2]), long.Parse(t[3], CultureInfo.InvariantCulture), 0);
    }

    /// <summary>Delivers to a sample of members with smtp-sink's -D dump and checks VERP sender, personalized To: and (--one-click) the member's own link.</summary>
    public string Verify(Row row, IReadOnlyList<string> sample, byte[] post)
    {
        var home = Instance(row, sample, "verify");
        var dump = Path.Combine(work, "verify.dump");
        File.Delete(dump);
        using var sink = Sink.Start("-D", dump);
        var inject = Mailman("--home", home, "inject", "bench@example.org");
        Run(inject[0], inject[1..], post);
        var serve = Mailman("--home", home, "serve", "--exit-when-idle");
        Run(serve[0], serve[1..], null, WithDns(row, new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Http__PublicUrl"] = oneClick ? OneClickUrl : "",
            ["Logging__Console"] = "false",
        }));
        sink.Stop();
        var text = File.ReadAllText(dump, Encoding.Latin1);
        var ok = 0;
        foreach (Match m in TransactionRegex().Matches(text))
        {
            var from = m.Groups["from"].Value;
            var rcpt = m.Groups["rcpt"].Value;
            var at = rcpt.IndexOf('@', StringComparison.Ordinal);
            var verp = $"bench-bounces+{rcpt[..at]}={rcpt[(at + 1)..]}@example.org";
            var rest = text.AsSpan(m.Index + m.Length, Math.Min(4096, text.Length - m.Index - m.Length));
            var munged = row.Dns is null || rest.Contains("\nFrom: Barry Warsaw via Bench <bench@example.org>\n", StringComparison.Ordinal);
            var link = $"\nList-Unsubscribe: <{OneClickUrl}/u/bench@example.org/{Convert.ToBase64String(Encoding.UTF8.GetBytes(rcpt)).TrimEnd('=').Replace('+', '-').Replace('/', '_')}/";
            if (from == verp && munged && rest.Contains("\nTo: " + rcpt + "\n", StringComparison.Ordinal) && (!oneClick || rest.Contains(link, StringComparison.Ordinal)))
            {
                ok++;
            }
        }

        return ok == sample.Count ? $"{ok}/{sample.Count} ok" : throw new InvalidOperationException($"{row.Name}: only {ok} of {sample.Count} sample copies had the VERP sender and personalized To:");
    }

    private static Dictionary<string, string> WithDns(Row row, Dictionary<string, string> env)
    {
        if (row.Dns is not null)
        {
            env["Mailman__Dns__Servers__0"] = row.Dns;
        }

        return env;
    }

    private static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    private static void Run(string file, IEnumerable<string> args, byte[]? stdin, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardInput = stdin is not null, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.BaseStream.Write(stdin);
            p.StandardInput.Close();
        }

        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {stderr.Result}{stdout.Result}");
        }
    }

    private sealed class Disposer(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }

    [GeneratedRegex(@"X-Mail-Args: <(?<from>[^>]*)>[^\n]*\nX-Rcpt-Args: <(?<rcpt>[^>]*)>")]
    private static partial Regex TransactionRegex();

    /// <summary>smtp-sink with -c counters on stdout; Stop returns the message count.</summary>
    private sealed class Sink : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();

        private Sink(Process process, int port)
        {
            _process = process;
            Port = port;
            // The counters are redrawn with CR, never LF: read raw characters, not lines.
            _ = Task.Run(() =>
            {
                var buffer = new char[4096];
                int n;
                while ((n = _process.StandardOutput.Read(buffer, 0, buffer.Length)) > 0)
                {
                    lock (_output)
                    {
                        // Only the last counters matter: a warm run polls Count every 2 ms, and
                        // a regex over the whole output of 8,000 redraws took a core from the
                        // daemon on this 2-core machine (warm ran slower than cold).
                        _output.Append(buffer, 0, n);
                        if (_output.Length > 8192)
                        {
                            _output.Remove(0, _output.Length - 1024);
                        }
                    }
                }
            });
        }

        public int Port { get; }

        public static Sink Start(params string[] extra)
        {
            var port = Net.FreePort();
            // -c counters go through stdio, fully buffered on a pipe: stdbuf unbuffers them.
            var psi = new ProcessStartInfo("stdbuf") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-o0", SinkBinary, "-u", "root", "-c" }.Concat(extra).Append($"127.0.0.1:{port}").Append("1024"))
            {
                psi.ArgumentList.Add(a);
            }

            var sink = new Sink(Process.Start(psi)!, port);
            var deadline = Stopwatch.StartNew();
            while (!Net.CanConnect(port))
            {
                if (deadline.Elapsed > TimeSpan.FromSeconds(10))
                {
                    throw new InvalidOperationException("smtp-sink did not start");
                }

                Thread.Sleep(10);
            }

            return sink;
        }

        /// <summary>Stops the sink once its counters are quiet, and returns the messages it counted.</summary>
        public long Stop()
        {
            long last = -1, now;
            while ((now = Count()) != last)
            {
                last = now;
                Thread.Sleep(200);
            }

            Dispose();
            return last;
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit();
            }
        }

        public long Count()
        {
            string text;
            lock (_output)
            {
                text = _output.ToString();
            }

            var matches = Regex.Matches(text, @"mesg=(\d+)");
            return matches.Count == 0 ? 0 : long.Parse(matches[^1].Groups[1].Value, CultureInfo.InvariantCulture);
        }
    }
}
