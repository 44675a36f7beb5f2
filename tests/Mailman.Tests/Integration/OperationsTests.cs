// What an operator lives with: the systemd unit, readiness, signals, journald, log files,
// status with progress, metrics. Real processes throughout.
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class OperationsTests : IDisposable
{
    private static readonly string UnitFile = Path.Combine(RepositoryRoot(), "config", "mailman.service");
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    private static string RepositoryRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Mailman.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir ?? throw new InvalidOperationException("repository root not found");
    }

    // Review 102: at an open-files limit of 256 an LMTP burst shunted posts and the runtime died;
    // serve says so at start, with the remedy, before it runs into it.
    [Fact]
    public async Task Serve_warns_at_start_of_an_open_files_limit_below_1024()
    {
        var psi = MailmanProcess.StartInfo(_instance.Home, ["serve", "--exit-when-idle"], new Dictionary<string, string> { ["Mailman__Smtp__Port"] = "1" });
        psi.ArgumentList.Insert(0, psi.FileName);
        psi.ArgumentList.Insert(0, "--nofile=700");
        psi.FileName = "prlimit";
        using var process = Process.Start(psi)!;
        process.StandardInput.Close();
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = await process.StandardOutput.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "serve --exit-when-idle did not exit");
        Assert.Equal(0, process.ExitCode);
        var output = stdout + await stderr;
        Assert.Contains("The open-files limit is 700: LMTP sessions, SMTP connections and queue files run out of it under load", output, StringComparison.Ordinal);
        Assert.Contains("LimitNOFILE=", output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_systemd_unit_verifies_and_carries_the_promised_settings()
    {
        var unit = File.ReadAllText(UnitFile);
        string Value(string key) => unit.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith(key + "=", StringComparison.Ordinal))[(key.Length + 1)..];
        Assert.Equal("notify", Value("Type"));
        Assert.Equal("on-failure", Value("Restart"));
        Assert.True(long.Parse(Value("LimitNOFILE"), CultureInfo.InvariantCulture) >= Mailman.Instance.ProcessLimits.RecommendedOpenFiles);
        // Starting again does not cure a configuration, permission or usage error (review 39: a restart every 5 s).
        Assert.Equal(
            new[] { Mailman.Cli.ExitCodes.Usage, Mailman.Cli.ExitCodes.NoPerm, Mailman.Cli.ExitCodes.Config },
            Value("RestartPreventExitStatus").Split(' ').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray());
        Assert.Equal("mailman", Value("User"));
        Assert.Equal("yes", Value("NoNewPrivileges"));
        Assert.Equal("strict", Value("ProtectSystem"));
        Assert.Equal("/var/lib/mailman", Value("ReadWritePaths"));
        Assert.Equal("yes", Value("PrivateTmp"));
        Assert.Equal("SIGTERM", Value("KillSignal"));
        var stop = TimeSpan.FromSeconds(int.Parse(Value("TimeoutStopSec"), CultureInfo.InvariantCulture));
        Assert.InRange(stop, Mailman.Hosting.DaemonHost.ShutdownTimeout, Mailman.Hosting.DaemonHost.ShutdownTimeout + TimeSpan.FromSeconds(30));

        Assert.True(File.Exists("/usr/bin/systemd-analyze"), "systemd-analyze is missing: apt-get install systemd (see .ci/run)");
        var psi = new ProcessStartInfo("/usr/bin/systemd-analyze") { RedirectStandardError = true, RedirectStandardOutput = true };
        // verify also wants ExecStart's binary to exist: the unit as shipped, with the binary
        // at an existing path (the one under test, or a shell).
        Assert.Contains("ExecStart=/opt/mailman/mailman serve\n", unit, StringComparison.Ordinal);
        var copy = Path.Combine(_instance.Home, "mailman.service");
        File.WriteAllText(copy, unit.Replace("ExecStart=/opt/mailman/mailman ", $"ExecStart={MailmanProcess.Binary ?? "/bin/sh"} ", StringComparison.Ordinal));
        psi.ArgumentList.Add("verify");
        psi.ArgumentList.Add(copy);
        using var p = Process.Start(psi)!;
        var errors = p.StandardError.ReadToEnd() + p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0 && errors.Trim().Length == 0, "systemd-analyze verify: " + errors);
    }

    [Fact]
    public void Under_systemd_the_daemon_reports_ready_only_after_queue_recovery_and_SIGHUP_does_not_stop_it()
    {
        // An entry a crashed run left claimed (in hold, where no runner would touch it after):
        // recovery must have put it back before READY=1.
        var hold = new Mailman.Queues.Switchboard(new System.IO.Abstractions.FileSystem(), _instance.QueueDir("hold"), "hold", TimeProvider.System);
        hold.Claim(hold.Enqueue(new Mailman.Queues.EntryMetadata { List = "dev@example.org" }, Posts.Plain()));
        Assert.Equal(1, _instance.Count("hold", ".bak"));

        // Microsoft.Extensions.Hosting.Systemd trusts a parent process named "systemd": /bin/sh
        // under that name (a symlink), running the daemon as its child. Not a script written here
        // and executed at once: another test forking in between holds the new file open for
        // writing until its child execs, and the exec fails with ETXTBSY (the once-in-a-suite
        // failure; alone the test always passed).
        var launcher = Path.Combine(_instance.Home, "systemd");
        File.CreateSymbolicLink(launcher, "/bin/sh");
        var socketPath = Path.Combine(_instance.Home, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(socketPath));
        notify.ReceiveTimeout = 30_000;

        var psi = MailmanProcess.StartInfo(_instance.Home, ["serve"], new Dictionary<string, string>
        {
            ["NOTIFY_SOCKET"] = socketPath,
            ["Mailman__Smtp__Port"] = "1",
            ["Mailman__Queues__PollInterval"] = "01:00:00",
        });
        // "; exit $?" keeps sh the parent: a lone command would be exec'd in its place. systemd
        // starts a service with every signal at its default; a test run started under nohup or
        // in a shell's background has SIGHUP (and SIGINT, SIGQUIT) ignored, which a child inherits
        // and .NET respects (the daemon then ignores SIGHUP instead of logging it): env resets them.
        psi.ArgumentList.Insert(0, psi.FileName);
        foreach (var a in new[] { "--default-signal=HUP,INT,QUIT", "env", "systemd", "\"$@\"; exit $?", "-c" })
        {
            psi.ArgumentList.Insert(0, a);
        }

        psi.FileName = launcher;
        using var daemon = Process.Start(psi)!;
        var stderr = daemon.StandardError.ReadToEndAsync();
        try
        {
            var buffer = new byte[4096];
            var ready = Encoding.ASCII.GetString(buffer, 0, notify.Receive(buffer));
            Assert.Contains("READY=1", ready, StringComparison.Ordinal);
            Assert.Equal(0, _instance.Count("hold", ".bak"));
            Assert.Equal(1, _instance.Count("hold"));

            var pid = int.Parse(File.ReadAllText($"/proc/{daemon.Id}/task/{daemon.Id}/children").Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            Assert.Equal(0, PostfixInstance.Run("kill", "-HUP", pid.ToString(CultureInfo.InvariantCulture)));
            Wait.Until(() => File.ReadAllText(LogFile("mailman")).Contains("SIGHUP", StringComparison.Ordinal) || daemon.HasExited, TimeSpan.FromSeconds(30), "the SIGHUP log line",
                () => $"pid {pid}, serve.pid {ReadOrNothing(Path.Combine(_instance.Paths.VarDirectory, "serve.pid"))}, children now {ReadOrNothing($"/proc/{daemon.Id}/task/{daemon.Id}/children")}, "
                    + $"daemon {(File.Exists($"/proc/{pid}/status") ? string.Join(' ', File.ReadAllLines($"/proc/{pid}/status").Where(l => l.StartsWith("State", StringComparison.Ordinal) || l.StartsWith("Sig", StringComparison.Ordinal) || l.StartsWith("ShdPnd", StringComparison.Ordinal))) : "gone")}; log: {File.ReadAllText(LogFile("mailman"))}");
            Assert.False(daemon.HasExited, $"the daemon exited {(daemon.HasExited ? daemon.ExitCode : 0)} on SIGHUP");

            Assert.Equal(0, PostfixInstance.Run("kill", "-TERM", pid.ToString(CultureInfo.InvariantCulture)));
            Assert.True(daemon.WaitForExit(60_000));
            Assert.Contains("STOPPING=1", Encoding.ASCII.GetString(buffer, 0, notify.Receive(buffer)), StringComparison.Ordinal);
            var log = File.ReadAllText(LogFile("mailman"));
            Assert.True(log.Contains("SIGTERM received: stopping", StringComparison.Ordinal), log);
            Assert.Contains("Mailman stopped after ", log, StringComparison.Ordinal);
        }
        finally
        {
            if (!daemon.HasExited)
            {
                daemon.Kill(entireProcessTree: true);
            }
        }
    }

    [Fact]
    public void Logs_go_to_journald_with_priorities_no_colours_and_to_one_file_per_area()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(3));
        using var sink = SmtpSink.Start("-f", "RCPT");
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain()).ExitCode);
        var result = MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, new Dictionary<string, string> { ["JOURNAL_STREAM"] = "8:12345" });

        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        Assert.All(lines.Where(l => l.StartsWith('<')), l => Assert.Matches(@"^<[2-7]>\[", l));
        // smtp-sink refuses every RCPT alike (550 5.3.0): the relay refusing us, one error line,
        // nobody scored, the recipients wait in retry.
        Assert.Contains(lines, l => l.StartsWith("<3>", StringComparison.Ordinal) && l.Contains("refused 3 of 3 recipients to dev@example.org for itself", StringComparison.Ordinal));
        Assert.DoesNotContain("\u001b[", result.Stderr, StringComparison.Ordinal);

        Assert.Contains("Post received", File.ReadAllText(LogFile("post")), StringComparison.Ordinal);
        Assert.Contains("delivered:", File.ReadAllText(LogFile("smtp")), StringComparison.Ordinal);
        Assert.Contains("refused 3 of 3 recipients to dev@example.org for itself", File.ReadAllText(LogFile("smtp")), StringComparison.Ordinal);
        Assert.Equal(1, _instance.Count("retry"));
        Assert.Contains("started on queue", File.ReadAllText(LogFile("qrunner")), StringComparison.Ordinal);
        Assert.DoesNotContain("Bounce:", File.ReadAllText(LogFile("post")), StringComparison.Ordinal);
    }

    [Fact]
    public void The_logs_tell_the_story_start_to_stop_with_ISO_timestamps_and_no_stack_traces_outside_the_error_log()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(2));
        using var sink = SmtpSink.Start();
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org", "--sender", "poster@example.com"], Posts.Plain()).ExitCode);
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev-owner@example.org", "--sender", "someone@example.com"], Posts.Plain()).ExitCode);
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        var all = File.ReadAllText(LogFile("mailman"));
        Assert.Matches(@"Mailman \S+ starting: instance " + System.Text.RegularExpressions.Regex.Escape(_instance.Home) + $@", SMTP 127\.0\.0\.1:{sink.Port}, runners .*IncomingRunner.*, listening nothing, queues in 1, owner 1", all);
        Assert.Contains("Mailman stopped after ", all, StringComparison.Ordinal);

        var post = File.ReadAllText(LogFile("post"));
        Assert.Contains("Queued for dev@example.org in owner: to dev-owner@example.org", post, StringComparison.Ordinal);
        Assert.Contains("envelope sender someone@example.com", post, StringComparison.Ordinal);
        Assert.Matches("Post received for dev@example.org: .*from .*envelope sender poster@example.com", post);
        foreach (var area in new[] { "post", "smtp" })
        {
            var text = File.ReadAllText(LogFile(area));
            Assert.DoesNotContain("started on queue", text, StringComparison.Ordinal);
            Assert.DoesNotContain("Runner stopped", text, StringComparison.Ordinal);
        }

        Assert.Contains("IncomingRunner stopped", File.ReadAllText(LogFile("qrunner")), StringComparison.Ordinal);
        foreach (var file in Directory.GetFiles(_instance.Paths.LogsDirectory, "*.log").Where(f => !Path.GetFileName(f).StartsWith("error-", StringComparison.Ordinal)))
        {
            foreach (var line in File.ReadAllLines(file))
            {
                Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d \[", line);
            }
        }
    }

    [Fact]
    public void Compact_JSON_logs_and_the_log_level_are_set_by_configuration()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        using var sink = SmtpSink.Start();
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain()).ExitCode);
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, new Dictionary<string, string> { ["Logging__CompactJson"] = "true" });
        var lines = File.ReadAllLines(LogFile("post"));
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            using var json = System.Text.Json.JsonDocument.Parse(line);
            Assert.True(json.RootElement.TryGetProperty("@t", out _));
            Assert.Equal("post", json.RootElement.GetProperty("Area").GetString());
        }

        Assert.Contains(lines, l => l.Contains("\"MessageId\":\"post1@example.com\"", StringComparison.Ordinal));

        var quiet = MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, new Dictionary<string, string> { ["Logging__MinimumLevel"] = "Warning" });
        Assert.DoesNotContain("[INF]", quiet.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Status_shows_the_delivery_in_progress_and_watch_prints_plain_snapshots_when_piped()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(8000));
        using var sink = SmtpSink.Start();
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain()).ExitCode);
        using var daemon = DaemonProcess.Start(_instance.Home, new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Smtp__Connections"] = "1",
        }, exitWhenIdle: true);

        string? seen = null;
        Wait.Until(() =>
        {
            var text = MailmanProcess.Run(_instance.Home, ["status"]).Stdout;
            if (text.Contains("delivering: post1@example.com to dev@example.org:", StringComparison.Ordinal))
            {
                seen = text;
            }

            return seen is not null || daemon.HasExited;
        }, TimeSpan.FromSeconds(120), "status to show the delivery");
        Assert.True(seen is not null, "the delivery finished before status saw it");
        Assert.Matches(@"delivering: post1@example\.com to dev@example\.org: \d+/8000 \(\d+%\) done; this run: \d+ delivered, 0 deferred, 0 bounced, \d+ msg/s, .+ left", seen);
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(120)));

        var watch = MailmanProcess.Run(_instance.Home, ["status", "--watch", "--interval", "0.1", "--iterations", "2"]);
        Assert.Equal(0, watch.ExitCode);
        Assert.Equal(2, watch.Stdout.Split("queue ").Length - 1);
        Assert.DoesNotContain("\u001b[", watch.Stdout, StringComparison.Ordinal);
        Assert.Contains("delivering: nothing", watch.Stdout, StringComparison.Ordinal);

        // A delivery taken but not yet at its first checkpoint is not "nothing" (review 39).
        var outgoing = new Mailman.Queues.Switchboard(new System.IO.Abstractions.FileSystem(), _instance.QueueDir("out"), "out", TimeProvider.System);
        outgoing.Claim(outgoing.Enqueue(new Mailman.Queues.EntryMetadata { List = "dev@example.org" }, Posts.Plain()));
        var pidFile = Path.Combine(_instance.Paths.VarDirectory, "serve.pid");
        using (Mailman.Instance.ServeLock.Acquire(_instance.Paths)) // this process holds the lock, as a running daemon
        {
            File.Delete(pidFile); // the kernel's lock says who runs, not the pid file (review 48)
            var running = MailmanProcess.Run(_instance.Home, ["status"]).Stdout;
            Assert.Contains("delivering: 1 post(s) being sent from out; counts from the first checkpoint on", running, StringComparison.Ordinal);
            Assert.Contains($"daemon: serve runs, pid {Environment.ProcessId}\n", running, StringComparison.Ordinal);
            using var json = System.Text.Json.JsonDocument.Parse(MailmanProcess.Run(_instance.Home, ["status", "--json"]).Stdout);
            Assert.Equal(Environment.ProcessId, json.RootElement.GetProperty("daemonPid").GetInt32());
        }

        // A killed daemon's claim and pid file, its pid since taken by another process (here this
        // one): nothing is being sent (reviews 42, 48).
        File.WriteAllText(pidFile, Environment.ProcessId + "\n");
        var killed = MailmanProcess.Run(_instance.Home, ["status"]).Stdout;
        Assert.Contains("delivering: nothing now: no daemon runs; 1 post(s) left claimed in out are taken up again at its next start", killed, StringComparison.Ordinal);
        Assert.Contains("daemon: none runs\n", killed, StringComparison.Ordinal);
        using (var json = System.Text.Json.JsonDocument.Parse(MailmanProcess.Run(_instance.Home, ["status", "--json"]).Stdout))
        {
            Assert.Equal(System.Text.Json.JsonValueKind.Null, json.RootElement.GetProperty("daemonPid").ValueKind);
            Assert.Equal(System.Text.Json.JsonValueKind.Null, json.RootElement.GetProperty("delivering").ValueKind);
        }
    }

    [Fact]
    public void Metrics_are_scraped_from_a_loopback_Prometheus_endpoint_and_other_addresses_are_refused()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(5));
        using var sink = SmtpSink.Start();
        var port = Net.FreePort();
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain()).ExitCode);
        using var daemon = DaemonProcess.Start(_instance.Home, new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Metrics__PrometheusUrl"] = $"http://127.0.0.1:{port}/",
        });
        using var http = new HttpClient();
        string metrics = "";
        Wait.Until(() =>
        {
            try
            {
                metrics = http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics")).GetAwaiter().GetResult();
            }
            catch (HttpRequestException)
            {
                return false;
            }

            return System.Text.RegularExpressions.Regex.IsMatch(metrics, @"mailman_copies_delivered_total\{[^}]*list=""dev@example\.org""[^}]*\} 5\b");
        }, TimeSpan.FromSeconds(60), "the delivered counter to reach 5");
        Assert.Contains("mailman_messages_received_total", metrics, StringComparison.Ordinal);
        Assert.Contains("mailman_queue_depth", metrics, StringComparison.Ordinal);
        Assert.Contains("mailman_smtp_transaction_duration_seconds_bucket", metrics, StringComparison.Ordinal);
        System.Net.HttpStatusCode Status(string path, string? host = null, HttpMethod? method = null)
        {
            using var request = new HttpRequestMessage(method ?? HttpMethod.Get, new Uri($"http://127.0.0.1:{port}{path}"));
            request.Headers.Host = host;
            using var response = http.Send(request);
            return response.StatusCode;
        }

        Assert.Equal(System.Net.HttpStatusCode.NotFound, Status("/other"));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, Status("/metrics", "rebound.example"));
        Assert.Equal(System.Net.HttpStatusCode.OK, Status("/metrics", "localhost:" + port));
        Assert.Equal(System.Net.HttpStatusCode.OK, Status("/metrics", method: HttpMethod.Head));
        foreach (var method in new[] { HttpMethod.Post, HttpMethod.Delete, HttpMethod.Options })
        {
            Assert.Equal(System.Net.HttpStatusCode.MethodNotAllowed, Status("/metrics", method: method)); // review 95
        }

        // Review 37: 20,000 connections sending a header line every few seconds held as many
        // descriptors (no limit, no header timeout) until every runner paused on "Too many open
        // files" and the daemon aborted. Now at most MaxConnections are served; those that never
        // finish their headers are closed, and the next scrape is served.
        int Descriptors() => Directory.GetFileSystemEntries($"/proc/{daemon.Pid}/fd").Length;
        var before = Descriptors();
        var held = new List<Socket>();
        try
        {
            for (var i = 0; i < 200; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                held.Add(socket);
                socket.Connect(System.Net.IPAddress.Loopback, port);
                socket.Send("GET /metrics HTTP/1.1\r\nX-Slow: 1\r\n"u8);
            }

            // Those past the limit are accepted and closed at once, those within it when their headers time out.
            var bound = before + Mailman.Hosting.MetricsService.MaxConnections + 8;
            Wait.Until(() => Descriptors() <= bound, TimeSpan.FromSeconds(30), $"at most {bound} descriptors", () => $"{Descriptors()} descriptors");
            Wait.Until(() =>
            {
                try
                {
                    return http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics")).GetAwaiter().GetResult().Contains("mailman_queue_depth", StringComparison.Ordinal);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(60), "a scrape served while 200 slow connections are held");
            Wait.Until(() => Descriptors() <= bound, TimeSpan.FromSeconds(30), $"at most {bound} descriptors after the scrape", () => $"{Descriptors()} descriptors");
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }

        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(60)));

        var refused = MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: new Dictionary<string, string> { ["Mailman__Metrics__PrometheusUrl"] = "http://0.0.0.0:9464/" });
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("loopback", refused.Stderr + refused.Stdout, StringComparison.Ordinal);
    }

    private static string ReadOrNothing(string path) => File.Exists(path) ? File.ReadAllText(path).Trim() : "(none)";

    private string LogFile(string area)
        => Directory.GetFiles(_instance.Paths.LogsDirectory, area + "-*.log").Single();

}
