// The log files as configured: an error's stack trace goes to error-DATE.log only, in plain text
// and in compact JSON alike; the operator's files carry the error's text in the message.
using System.IO.Abstractions;
using System.Runtime.InteropServices;
using Mailman.Hosting;
using Mailman.Instance;
using Mailman.Queues;
using Mailman.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Mailman.Tests.Hosting;

public sealed class LoggingTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_stack_trace_is_written_to_the_error_log_only(bool compact)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Logging:Console"] = "false",
            ["Logging:CompactJson"] = compact ? "true" : "false",
        }).Build();
        using (var logger = (Serilog.Core.Logger)Logging.Create(configuration, _instance.Paths))
        {
            logger.ForContext("SourceContext", "Mailman.Runners.OutgoingRunner").Error(Thrown(), "Delivery of {Entry} failed: {Error}", "0123-abcd", "the disk is on fire");
        }

        string Read(string prefix) => File.ReadAllText(Directory.GetFiles(_instance.Paths.LogsDirectory, prefix + "*.log").Single());
        foreach (var file in new[] { "mailman-", "smtp-" })
        {
            var text = Read(file);
            Assert.Contains("the disk is on fire", text, StringComparison.Ordinal);
            Assert.DoesNotContain(nameof(Thrown), text, StringComparison.Ordinal);
            Assert.DoesNotContain("\"@x\"", text, StringComparison.Ordinal);
        }

        var error = Read("error-");
        Assert.Contains("the disk is on fire", error, StringComparison.Ordinal);
        Assert.Contains(nameof(Thrown), error, StringComparison.Ordinal);
        if (compact)
        {
            Assert.Contains("\"@x\"", error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_value_with_line_breaks_is_written_on_one_line()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Console"] = "false" }).Build();
        using (var logger = (Serilog.Core.Logger)Logging.Create(configuration, _instance.Paths))
        {
            logger.ForContext("SourceContext", "Mailman.Runners.IncomingRunner").Information("Post received from {Sender}", "evil@x.y\r\n2026-12-01T00:00:00.000+00:00 [INF] FAKE\u001b[2J\u202Egpj.exe\u0085");
        }

        var lines = File.ReadAllLines(Directory.GetFiles(_instance.Paths.LogsDirectory, "post-*.log").Single());
        var line = Assert.Single(lines);
        Assert.Contains("evil@x.y\\r\\n2026-12-01T00:00:00.000+00:00 [INF] FAKE\\u001b[2J\\u202egpj.exe\\u0085", line, StringComparison.Ordinal);
    }

    // Review 140: a bounce to a VERP address of 5,000 characters wrote a line of 10,261, the
    // address twice. A value is written up to 1,000 characters, then says how long it was.
    [Fact]
    public void A_value_over_a_thousand_characters_is_cut_and_says_its_length()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Console"] = "false" }).Build();
        var address = new string('a', 5000) + "\n@example.com";
        using (var logger = (Serilog.Core.Logger)Logging.Create(configuration, _instance.Paths))
        {
            logger.ForContext("SourceContext", "Mailman.Runners.IncomingRunner").Information("Post received from {Sender}, VERP {Verp}", address, "short@example.com");

            // Review 142: cut before escaping, 1,200 control characters made a line of 6,200.
            logger.ForContext("SourceContext", "Mailman.Runners.IncomingRunner").Information("Post received from {Sender}, VERP {Verp}", "x" + new string('\u001b', 1200), "short@example.com");
        }

        var lines = File.ReadAllLines(Directory.GetFiles(_instance.Paths.LogsDirectory, "post-*.log").Single());
        Assert.Equal(2, lines.Length);
        Assert.Contains(new string('a', 1000) + "... (5,013 characters), VERP short@example.com", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain(new string('a', 1001), lines[0], StringComparison.Ordinal);
        Assert.InRange(lines[0].Length, 1000, 1200);

        // Cut after "x" and 166 whole escapes (997 characters), not inside the 167th.
        Assert.Contains("x" + string.Concat(Enumerable.Repeat("\\u001b", 166)) + "... (1,201 characters), VERP short@example.com", lines[1], StringComparison.Ordinal);
        Assert.InRange(lines[1].Length, 1000, 1200);
    }

    // Review 100: `inject` writes the post log and mailman-DATE.log while the daemon does; with
    // Serilog's file sink each process wrote at its own offset, and 59 of the daemon's 60 lines
    // were overwritten by an inject's. A logger with its files open, lines appended by another
    // writer meanwhile, then the logger's next line: it goes after them, and none is lost.
    [Fact]
    public void A_line_goes_after_what_another_process_appended_meanwhile()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Console"] = "false" }).Build();
        string File(string prefix) => Directory.GetFiles(_instance.Paths.LogsDirectory, prefix + "*.log").Single();
        using (var daemon = (Serilog.Core.Logger)Logging.Create(configuration, _instance.Paths))
        {
            var log = daemon.ForContext("Area", "post").ForContext("SourceContext", "Mailman.Runners.IncomingRunner");
            log.Information("Post received: {Number}", 1);
            foreach (var prefix in new[] { "mailman-", "post-" })
            {
                System.IO.File.AppendAllText(File(prefix), "inject's line 1\ninject's line 2\n");
            }

            log.Information("Post received: {Number}", 2);
        }

        foreach (var prefix in new[] { "mailman-", "post-" })
        {
            var lines = System.IO.File.ReadAllLines(File(prefix));
            Assert.Equal(4, lines.Length);
            Assert.EndsWith("Post received: 1", lines[0], StringComparison.Ordinal);
            Assert.Equal(["inject's line 1", "inject's line 2"], lines[1..3]);
            Assert.EndsWith("Post received: 2", lines[3], StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(0.4, "0.4s")]
    [InlineData(3723, "1:02:03")]
    [InlineData(2 * 86400 + 3723, "2d 01:02:03")]
    public void The_stop_line_says_the_uptime_as_a_person_reads_it(double seconds, string expected)
        => Assert.Equal(expected, LifecycleLog.Uptime(TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void A_second_stop_signal_says_the_stop_is_under_way_instead_of_announcing_it_again()
    {
        var logger = new Runners.CapturingLogger<LifecycleLog>();
        using var queues = new QueueSet(new FileSystem(), _instance.Paths, TimeProvider.System);
        using var lifecycle = new LifecycleLog(_instance.Paths, new MailmanOptions(), queues, new ServiceCollection().BuildServiceProvider(), null!, TimeProvider.System, logger);

        lifecycle.Signalled(PosixSignal.SIGINT);
        lifecycle.Signalled(PosixSignal.SIGINT);
        lifecycle.Signalled(PosixSignal.SIGTERM);

        Assert.Equal(
            ["SIGINT received: stopping; work in flight finishes or is put back within 00:01:30", "SIGINT received again: already stopping", "SIGTERM received again: already stopping"],
            logger.Lines);
    }

    // Review 98: a logs/ full since the start was said at the start only, and SIGHUP, which
    // checks the settings as a start would, said "log files reopened" and nothing else.
    [Fact]
    public void SIGHUP_says_when_the_log_files_cannot_be_written()
    {
        Directory.CreateDirectory(_instance.Paths.LogsDirectory);
        using var tmpfs = Tmpfs.Mount(_instance.Paths.LogsDirectory, "256k");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Console"] = "false" }).Build();
        using var logger = (Serilog.Core.Logger)Logging.Create(configuration, _instance.Paths, out var files);
        var log = new Runners.CapturingLogger<HangupHandler>();
        var handler = new HangupHandler(_instance.Paths, files, log);
        handler.Hangup();
        Assert.DoesNotContain(log.Lines, l => l.Contains("cannot be written", StringComparison.Ordinal));

        tmpfs.Fill();
        handler.Hangup();
        Assert.Contains(log.Lines, l => l.Contains($"SIGHUP: the log files in {_instance.Paths.LogsDirectory} cannot be written", StringComparison.Ordinal));
        tmpfs.Free();
    }

    // Review 101: a line cut short by a full disk left a fragment without its line end, and the
    // next line written once there was room was glued to it. Now that line starts a line.
    [Fact]
    public void A_line_cut_short_by_a_full_disk_does_not_swallow_the_next()
    {
        Directory.CreateDirectory(_instance.Paths.LogsDirectory);
        using var tmpfs = Tmpfs.Mount(_instance.Paths.LogsDirectory, "256k");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Console"] = "false" }).Build();
        using (var logger = (Serilog.Core.Logger)Logging.Create(configuration, _instance.Paths))
        {
            var log = logger.ForContext("SourceContext", "Mailman.Runners.IncomingRunner");
            log.Information("Post received before the disk filled");
            tmpfs.Fill();
            for (var i = 0; i < 100; i++)
            {
                log.Information("Post received while the disk is full {Number} {Padding}", i, new string('x', 200));
            }

            tmpfs.Free();
            log.Information("Post received once there was room again");
        }

        var lines = File.ReadAllLines(Directory.GetFiles(_instance.Paths.LogsDirectory, "post-*.log").Single());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\S+ \[INF\] Mailman\.Runners\.IncomingRunner: Post received once there was room again$", lines[^1]);
        Assert.Contains(lines, l => l.EndsWith("before the disk filled", StringComparison.Ordinal));
    }

    // Review 37: logs removed under the running daemon stayed open (written to, space not freed)
    // until midnight, and SIGHUP reopened nothing; a broken config/mailman.json went unnoticed
    // until the next start failed.
    [Fact]
    public void SIGHUP_reopens_removed_log_files_and_says_when_the_configuration_would_not_start()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Console"] = "false" }).Build();
        using var logger = (Serilog.Core.Logger)Logging.Create(configuration, _instance.Paths, out var files);
        using Microsoft.Extensions.Logging.ILoggerFactory factory = new Serilog.Extensions.Logging.SerilogLoggerFactory(logger);
        var handler = new HangupHandler(_instance.Paths, files, Microsoft.Extensions.Logging.LoggerFactoryExtensions.CreateLogger<HangupHandler>(factory));
        logger.ForContext("SourceContext", "Mailman.Runners.IncomingRunner").Information("before the removal");
        string[] Logs(string prefix) => Directory.GetFiles(_instance.Paths.LogsDirectory, prefix + "*.log");
        string Read(string prefix) => string.Concat(Logs(prefix).Select(f =>
        {
            using var s = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new StreamReader(s).ReadToEnd();
        }));
        Assert.Contains("before the removal", Read("mailman-"), StringComparison.Ordinal);
        foreach (var f in Directory.GetFiles(_instance.Paths.LogsDirectory))
        {
            File.Delete(f);
        }

        handler.Hangup();
        logger.ForContext("SourceContext", "Mailman.Runners.IncomingRunner").Information("after the reopening");
        var mailman = Read("mailman-");
        Assert.Contains("SIGHUP received: log files reopened; the configuration checks out", mailman, StringComparison.Ordinal);
        Assert.Contains("after the reopening", mailman, StringComparison.Ordinal);
        Assert.Contains("after the reopening", Read("post-"), StringComparison.Ordinal);

        Directory.CreateDirectory(_instance.Paths.ConfigDirectory);
        File.WriteAllText(_instance.Paths.ConfigFile, "{ \"Mailman\": { \"Smtp\": ");
        handler.Hangup();
        Assert.Contains($"[ERR] Mailman.Hosting.HangupHandler: SIGHUP: the configuration would not start a daemon now: configuration: {_instance.Paths.ConfigFile} is not valid JSON", Read("error-"), StringComparison.Ordinal);

        File.WriteAllText(_instance.Paths.ConfigFile, "{ \"Mailman\": { \"Smtp\": { \"Secrity\": \"tls\" } } }");
        handler.Hangup();
        Assert.Contains("unknown setting 'Secrity' in Smtp", Read("error-"), StringComparison.Ordinal);

        // Review 39: a null escaped as a NullReferenceException (and SIGHUP was dead after it);
        // a metrics URL a start refuses "checked out".
        File.WriteAllText(_instance.Paths.ConfigFile, "{ \"Mailman\": { \"SiteOwner\": null } }");
        handler.Hangup();
        Assert.Contains("SIGHUP: the configuration would not start a daemon now: configuration: Mailman:SiteOwner is null", Read("error-"), StringComparison.Ordinal);
        File.WriteAllText(_instance.Paths.ConfigFile, "{ \"Mailman\": { \"Metrics\": { \"PrometheusUrl\": \"ftp://127.0.0.1:9464/\" } } }");
        handler.Hangup();
        Assert.Contains("Mailman:Metrics:PrometheusUrl must be an http URL on loopback", Read("error-"), StringComparison.Ordinal);

        // As a start: the password file is read too (review 38: a missing one "checked out").
        File.WriteAllText(_instance.Paths.ConfigFile, "{ \"Mailman\": { \"Smtp\": { \"Security\": \"starttls\", \"User\": \"u\", \"PasswordFile\": \"/nonexistent/pw\" } } }");
        handler.Hangup();
        Assert.Contains("Mailman:Smtp:PasswordFile /nonexistent/pw does not exist", Read("error-"), StringComparison.Ordinal);

        // Files that cannot be opened anew: the old ones stay in use, and say so.
        var moved = _instance.Paths.LogsDirectory + ".old";
        Directory.Move(_instance.Paths.LogsDirectory, moved);
        File.WriteAllText(_instance.Paths.LogsDirectory, "a file where the directory was");
        handler.Hangup();
        var kept = string.Concat(Directory.GetFiles(moved, "error-*.log").Select(f => File.ReadAllText(f)));
        Assert.Contains("SIGHUP: the log files could not be opened again", kept, StringComparison.Ordinal);
        File.Delete(_instance.Paths.LogsDirectory);
        Directory.Move(moved, _instance.Paths.LogsDirectory);

        // A chain without the loop guards checks out, and is warned of as at start (review 98).
        File.WriteAllText(_instance.Paths.ConfigFile, "{ \"Mailman\": { \"Moderation\": { \"Chain\": [ \"auto-reply\", \"posting-rate\" ] } } }");
        handler.Hangup();
        Assert.Contains("SIGHUP: at the next start, Mailman:Moderation:Chain has no loop-detection", Read("mailman-"), StringComparison.Ordinal);
        Assert.DoesNotContain("Chain has no posting-rate", Read("mailman-"), StringComparison.Ordinal);
    }

    // Review 38: a SIGHUP storm while lines were written lost and tore lines (the files were
    // closed under writers).
    [Fact]
    public void Reopening_the_log_files_under_writers_loses_and_tears_no_line()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Console"] = "false" }).Build();
        const int writers = 4, lines = 5000;
        using (var logger = (Serilog.Core.Logger)Logging.Create(configuration, _instance.Paths, out var files))
        {
            using var done = new CountdownEvent(writers);
            for (var w = 0; w < writers; w++)
            {
                var id = w;
                new Thread(() =>
                {
                    var log = logger.ForContext("SourceContext", "Mailman.Runners.OutgoingRunner");
                    for (var i = 0; i < lines; i++)
                    {
                        log.Information("line {Writer}-{Index} end", id, i);
                    }

                    done.Signal();
                }).Start();
            }

            while (!done.IsSet)
            {
                files.Reopen();
            }
        }

        var all = Directory.GetFiles(_instance.Paths.LogsDirectory, "mailman-*.log").SelectMany(File.ReadAllLines).ToList();
        Assert.Equal(writers * lines, all.Count(l => l.Contains(": line ", StringComparison.Ordinal)));
        Assert.All(all, l => Assert.Matches(@"^\d{4}-\d\d-\d\dT.* \[INF\] Mailman\.Runners\.OutgoingRunner: line \d+-\d+ end$", l));
    }

    // Review 37: PublicUrl without Url put one-click links in every copy and nothing served them.
    [Theory]
    [InlineData("", true)]
    [InlineData("http://127.0.0.1:8025", false)]
    public async Task A_public_url_without_the_endpoint_is_warned_of_at_start(string url, bool warned)
    {
        var logger = new Runners.CapturingLogger<LifecycleLog>();
        using var queues = new QueueSet(new FileSystem(), _instance.Paths, TimeProvider.System);
        var options = new MailmanOptions();
        options.Http.PublicUrl = "https://lists.example.org/mm";
        options.Http.Url = url;
        using var lifecycle = new LifecycleLog(_instance.Paths, options, queues, new ServiceCollection().BuildServiceProvider(), new Lifetime(), TimeProvider.System, logger);

        await lifecycle.StartAsync(CancellationToken.None);

        Assert.Equal(warned, logger.Lines.Any(l => l.StartsWith("Mailman:Http:PublicUrl is set but Mailman:Http:Url is not: copies carry one-click unsubscribe links to https://lists.example.org/mm", StringComparison.Ordinal)));
    }

    // A chain that leaves out a rule stopping loops is said at start: an instance's own chain
    // written before posting-rate existed lacks it (review 100).
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_chain_without_the_loop_guards_is_warned_of_at_start(bool own)
    {
        var logger = new Runners.CapturingLogger<LifecycleLog>();
        using var queues = new QueueSet(new FileSystem(), _instance.Paths, TimeProvider.System);
        var options = new MailmanOptions();
        options.Moderation.Chain = own ? ["auto-reply", "member-moderation", "nonmember-moderation"] : [.. Mailman.Moderation.ModerationChain.DefaultRules];

        using var lifecycle = new LifecycleLog(_instance.Paths, options, queues, new ServiceCollection().BuildServiceProvider(), new Lifetime(), TimeProvider.System, logger);
        await lifecycle.StartAsync(CancellationToken.None);

        var warned = logger.Lines.Where(l => l.StartsWith("Mailman:Moderation:Chain has no ", StringComparison.Ordinal)).ToList();
        Assert.Equal(own ? ["Mailman:Moderation:Chain has no loop-detection", "Mailman:Moderation:Chain has no posting-rate"] : [], warned.Select(l => l[..l.IndexOf(':', 27)]));
    }

    // The vette log (appended to by the daemon and the held verbs) rolled daily only: it had no
    // size limit like the other files. Two writers (as two processes) meet in the same next file.
    [Fact]
    public void The_vette_log_rolls_past_its_size_limit_and_two_writers_meet_in_the_same_file()
    {
        var directory = Path.Combine(_instance.Paths.LogsDirectory, "roll");
        var formatter = new Serilog.Formatting.Display.MessageTemplateTextFormatter("{Message}{NewLine}", System.Globalization.CultureInfo.InvariantCulture);
        using var first = new AppendFileSink(directory, "vette-", formatter, 4, 1000);
        using var second = new AppendFileSink(directory, "vette-", formatter, 4, 1000);
        using var one = new Serilog.LoggerConfiguration().WriteTo.Sink(first).CreateLogger();
        using var two = new Serilog.LoggerConfiguration().WriteTo.Sink(second).CreateLogger();
        for (var i = 0; i < 30; i++)
        {
            one.Information("line {N:000} of the first writer, padded to some forty bytes", i);
            two.Information("line {N:000} of the second writer, padded to some forty bytes", i);
        }

        var files = Directory.GetFiles(directory).Order(StringComparer.Ordinal).ToList();
        var day = DateTime.Now.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture);
        string Name(int sequence) => sequence == 0 ? $"vette-{day}.log" : $"vette-{day}_{sequence:000}.log";
        Assert.Equal(4, files.Count); // 60 lines of 57 bytes, 1,000 to a file
        Assert.Equal(Enumerable.Range(0, 4).Select(Name), files.Select(Path.GetFileName));
        var lines = files.SelectMany(File.ReadAllLines).ToList();
        Assert.Equal(60, lines.Count);
        Assert.Equal(60, lines.Distinct().Count());
        Assert.All(files.SkipLast(1), f => Assert.InRange(new FileInfo(f).Length, 1000, 1000 + 64));

        // Past `retained` files, the oldest go.
        for (var i = 0; i < 60; i++)
        {
            one.Information("more line {N:000} of the first writer, padded to forty bytes", i);
        }

        var kept = Directory.GetFiles(directory).Order(StringComparer.Ordinal).Select(Path.GetFileName).ToList();
        Assert.Equal(Enumerable.Range(3, 4).Select(Name), kept); // 0-6 written, the newest 4 kept
    }

    private sealed class Lifetime : Microsoft.Extensions.Hosting.IHostApplicationLifetime
    {
        public CancellationToken ApplicationStarted => CancellationToken.None;

        public CancellationToken ApplicationStopping => CancellationToken.None;

        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void StopApplication()
        {
        }
    }

    private static InvalidOperationException Thrown()
    {
        try
        {
            throw new InvalidOperationException("the disk is on fire");
        }
        catch (InvalidOperationException e)
        {
            return e;
        }
    }
}
