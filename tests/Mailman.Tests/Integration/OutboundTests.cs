// The outbound side with real processes and real servers: configuration refused at start with one
// line, a password that never reaches a log, STARTTLS to a private Postfix, a pool of two
// smtp-sinks (weights, one killed mid-delivery, the daemon SIGKILLed), and destinations that
// throttle (a server that answers 421 4.7.0 for one domain, a configured rate).
using System.Globalization;
using Mailman.Cli;
using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class OutboundTests : IDisposable
{
    private const string List = "dev@example.org";
    private const string EndMarker = "--END-OF-COPY--";
    private const int Chunk = 20;
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    private void CreateList(IEnumerable<Member> members)
    {
        _instance.CreateList(List, l =>
        {
            l.NonMemberAction = NonMemberAction.Accept;
            l.FooterTemplate = "to $user_address\n" + EndMarker;
        });
        _instance.AddMembers(List, members);
    }

    private void Inject(string messageId = "post1@example.com")
    {
        var result = MailmanProcess.Run(_instance.Home, ["inject", List], Posts.Plain(messageId: messageId));
        Assert.True(result.ExitCode == 0, result.Stderr);
    }

    private static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    private static Dictionary<string, string> Pool(params (int Port, int Weight)[] relays)
    {
        var env = new Dictionary<string, string>
        {
            ["Mailman__Smtp__CheckpointRecipients"] = P(Chunk),
            ["Mailman__Queues__PollInterval"] = "00:00:00.050",
            ["Mailman__Retry__MinimumDelay"] = "00:00:00.200",
            ["Mailman__Retry__MaximumDelay"] = "00:00:00.400",
        };
        for (var i = 0; i < relays.Length; i++)
        {
            env[$"Mailman__Smtp__Relays__{i}__Address"] = "127.0.0.1:" + P(relays[i].Port);
            env[$"Mailman__Smtp__Relays__{i}__Connections"] = "2";
            env[$"Mailman__Smtp__Relays__{i}__Weight"] = P(relays[i].Weight);
        }

        return env;
    }

    private static List<string> Copies(params SmtpSink[] sinks)
        => [.. sinks.SelectMany(s => s.Messages()).Where(m => m.Body.Contains(EndMarker, StringComparison.Ordinal)).Select(m => Assert.Single(m.Recipients))];

    private static void AssertEveryoneWithin(List<string> copies, IEnumerable<string> members, int bound)
    {
        var all = members.ToList();
        var got = copies.ToHashSet();
        var missing = all.Where(a => !got.Contains(a)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} members got no copy, e.g. {string.Join(", ", missing.Take(5))}");
        Assert.InRange(copies.Count - all.Count, 0, bound);
    }

    // Every event is in mailman-DATE.log (the area files repeat some).
    private string Logs() => string.Concat(Directory.GetFiles(_instance.Paths.LogsDirectory, "mailman-*.log").Select(f =>
    {
        using var s = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(s).ReadToEnd();
    }));

    // Serves until idle, making retries due in between, until nothing is left to retry or to
    // deliver. Out too: a retry that came due while an idle daemon was stopping is moved back
    // to out by the retry runner, and waits there for the next start (ci, the AOT pass: the
    // next run found retry empty and the test missed those ten copies).
    private void ServeUntilDone(Dictionary<string, string> env, int port)
    {
        for (var i = 0; i < 20; i++)
        {
            MailmanProcess.ServeUntilIdle(_instance.Home, port, env);
            if (_instance.Count("retry") == 0 && _instance.Count("out") == 0)
            {
                return;
            }

            Runners.RetryTestHelper.MakeDue(_instance);
        }

        Assert.Fail("recipients still waiting in retry or out after 20 runs");
    }

    public static TheoryData<string, string, string> BadConfigurations => new()
    {
        { "Mailman__Smtp__Security", "startls", "Mailman:Smtp:Security must be none, starttls, opportunistic or tls (got 'startls')" },
        { "Mailman__Smtp__PasswordFile", "missing", "does not exist" },
        { "Mailman__Smtp__PasswordFile", "dangling", "is a symbolic link to /nonexistent/pw, which cannot be read as a file" }, // exit 73, "Could not find file" (review 53)
        { "Mailman__Smtp__PasswordFile", "world-readable", "is open to others (mode 0644): chmod 600" },
        { "Mailman__Smtp__PasswordFile", "group-readable", "is open to its group (mode 0640): chmod 600" }, // "by others" (review 133)
        { "Mailman__Smtp__PasswordFile", "fifo", "is not a regular file (a FIFO, a device?)" },            // serve waited for a writer for good (review 41)
        { "Mailman__Smtp__PasswordFile", "nul", "must hold the password on one line, without NUL, carriage return, tab or another control character" }, // AUTH PLAIN's separator (review 86)
        { "Mailman__Smtp__PasswordFile", "utf-16", "is not UTF-8 text (UTF-16, or another charset): write the password as UTF-8" }, // read as UTF-16 by its BOM, its NUL unseen (review 137)
        { "Mailman__Smtp__PasswordFile", "tab", "must hold the password on one line, without NUL, carriage return, tab or another control character" }, // sent as part of it (review 133)
        { "Mailman__Smtp__PasswordFile", "nel", "must hold the password on one line, without NUL, carriage return, tab or another control character" }, // a C1 control, U+0085 (review 138)
        { "Mailman__Smtp__PasswordFile", "bom-only", "holds no password (it is empty)" },
        { "Mailman__Smtp__CaFile", "/dev/zero", "CaFile /dev/zero is not a regular file (a FIFO, a device?)" }, // read until memory ran out: exit 70
        { "Mailman__Smtp__Credential", "smtp", "needs systemd's LoadCredential=NAME:/path/to/file in the unit" },
        { "Mailman__Smtp__Relays__1__Address", "127.0.0.1:2525", "Mailman:Smtp:Relays lists 127.0.0.1:2525 twice" },
        { "Mailman__Smtp__Relays__1__Address", "LocalHost.:2525", "Mailman:Smtp:Relays lists 127.0.0.1:2525 and LocalHost.:2525, one server (loopback:2525) twice" },
        { "Mailman__Smtp__Relays__1__Address", "[::1]:2525", "Mailman:Smtp:Relays lists 127.0.0.1:2525 and [::1]:2525, one server (loopback:2525) twice" },
        { "Mailman__Smtp__Relays__0__Weight", "0", "Mailman:Smtp:Relays:0:Weight must be 1-1000" },
        { "Mailman__Smtp__Relays__0__Weight", "2147483647", "Mailman:Smtp:Relays:0:Weight must be 1-1000" },
        { "Mailman__Smtp__Destinations__gmail.com__MaxConnections", "0", "Mailman:Smtp:Destinations:gmail.com:MaxConnections must be at least 1" },
        { "Mailman__Smtp__Password", "hunter2", "Mailman:Smtp:Password is not read" },
        { "Mailman__Smtp__CaFile", "/nonexistent/ca.pem", "CaFile /nonexistent/ca.pem cannot be read" },
        { "Mailman__Smtp__CaFile", "/etc", "CaFile /etc cannot be read: /etc is a directory, not a file" },
        { "Mailman__Smtp__CaFile", "ca.pem", "Mailman:Smtp:CaFile must be an absolute path (got 'ca.pem')" },  // relative to / under systemd, to the shell's directory for a verb
        { "Mailman__Smtp__PasswordFile", "config/pw", "Mailman:Smtp:PasswordFile must be an absolute path (got a relative one of 9 characters, not shown" }, // a password typed there is not echoed (review 86)
        { "Mailman__Smtp__Relays__-1__Address", "b.example:25", "Mailman:Smtp:Relays:-1: a list's entries are numbered 0, 1, 2 ... (Mailman__Smtp__Relays__0), not '-1'" }, // bound to nothing (review 86)
        { "Mailman__Moderation__Chain__-1", "no-such-rule", "Mailman:Moderation:Chain:-1: a list's entries are numbered 0, 1, 2" },
        { "Mailman__Smtp__Relays__01__Address", "127.0.0.3:2525", "Mailman:Smtp:Relays:01: a list's entries are numbered 0, 1, 2 ... (Mailman__Smtp__Relays__0), not '01'" }, // an entry beside 1 (review 87)
        { "Mailman__Smtp__Destinations__g__Domains__-2", "gmail.com", "Mailman:Smtp:Destinations:g:Domains:-2: a list's entries are numbered" },
        { "Mailman__Smtp__Fingerprint", new string('a', 64), "Mailman:Smtp:CaFile and Mailman:Smtp:Fingerprint are both set: use one" },
        { "Mailman__Smtp__HeloName", "evil\r\nMAIL FROM:<x@evil>", "Mailman:Smtp:HeloName must be a host name" },
        { "Mailman__Smtp__HeloName", "[1.2.3]", "Mailman:Smtp:HeloName must be a host name in ASCII" },   // IPAddress.TryParse's short form (review 39)
        { "Mailman__Smtp__HeloName", "[::1]", "Mailman:Smtp:HeloName must be a host name in ASCII" },     // IPv6 needs its tag
        { "Mailman__Smtp__HeloName", "münchen.example", "Mailman:Smtp:HeloName must be a host name in ASCII (A-labels: xn--...)" },  // sent raw (review 41)
        { "Mailman__Smtp__HeloName", "[IPv6:fe80::1%eth0]", "Mailman:Smtp:HeloName must be a host name in ASCII" },             // a zone id is not a literal
        { "Mailman__Smtp__HeloName", "mail.example.org.", "Mailman:Smtp:HeloName must be a host name in ASCII" },               // RFC 5321's Domain has no root dot
        { "Mailman__Smtp__Secrity", "tls", "unknown setting 'Secrity' in Smtp" },                         // a typo is not ignored
        { "Mailman__Smtp__Port", "abc", "Mailman:Smtp:Port \"abc\" is not a whole number" },                // the binder's own words before (review 121)
        { "Mailman__Smtp__PreferBdat", "maybe", "Mailman:Smtp:PreferBdat \"maybe\" is not true or false" },
        { "Mailman__Retry__MaximumDelay", "soon", "Mailman:Retry:MaximumDelay \"soon\" is not a duration (hh:mm:ss, or d.hh:mm:ss)" },
        { "Mailman__Smtp__Port", "", "Mailman:Smtp:Port is empty: give it a value, or remove it to keep the default" }, // the binder skipped it: port 25
        { "Mailman__Smtp__MaxRecipients", " ", "Mailman:Smtp:MaxRecipients is empty" },
        { "Mailman__Smtp__TimeoutSeconds", "3000000", "Mailman:Smtp:TimeoutSeconds must be 1-86400" },   // milliseconds past int.MaxValue
        { "Mailman__Smtp__Checkpoint", "", "Mailman:Smtp:Checkpoint is empty" },
        { "Mailman__StopTimeout", "", "Mailman:StopTimeout is empty" },
        { "Mailman__StopTimeout", "90", "Mailman:StopTimeout must be 1 second to 1 hour, as hh:mm:ss (got 90.00:00:00; a bare number is days)" },
        { "Mailman__Smtp__Relays", "127.0.0.1:2999", "Mailman:Smtp:Relays must be a list" },              // a list as one value binds to nothing
        { "Mailman__Smtp__Relays__1", "127.0.0.1:2999", "Mailman:Smtp:Relays:1 must be a section with Address" }, // an entry without a key: to nothing too
        { "Mailman__Http__Url__0", "http://127.0.0.1:8024", "Mailman:Http:Url is one value, not a list or a section" },
        { "Mailman__Smtp__Relays__1__Address", "127.0.0.1:", "Mailman:Smtp:Relays:1:Address must be host:port (got '127.0.0.1:')" },
        { "Mailman__Smtp__Destinations__gmail.com__Domains__0", "not a domain", "Mailman:Smtp:Destinations:gmail.com: 'not a domain' is not a domain name" },
        { "Mailman__Smtp__Destinations__gmail.com__MaxPerMinut", "5", "unknown setting 'MaxPerMinut' in Destination" },
    };

    [Theory]
    [MemberData(nameof(BadConfigurations))]
    public void Bad_outbound_configuration_is_refused_at_start_with_one_line_and_exit_78(string key, string value, string message)
    {
        var env = new Dictionary<string, string> { [key] = value };
        if (key.Contains("Relays__", StringComparison.Ordinal))
        {
            env["Mailman__Smtp__Relays__0__Address"] = "127.0.0.1:2525";
        }

        if (key.EndsWith("CaFile", StringComparison.Ordinal) && value.StartsWith('/'))
        {
            env["Mailman__Smtp__Security"] = "starttls";
        }

        if (key.EndsWith("Fingerprint", StringComparison.Ordinal))
        {
            env["Mailman__Smtp__CaFile"] = "/nonexistent/ca.pem";
            env["Mailman__Smtp__Security"] = "starttls";
        }

        if (key.EndsWith("PasswordFile", StringComparison.Ordinal) || key.EndsWith("Credential", StringComparison.Ordinal))
        {
            env["Mailman__Smtp__User"] = "lists";
            env["Mailman__Smtp__Security"] = "starttls";
            if (value is "world-readable" or "group-readable")
            {
                var file = Path.Combine(_instance.Home, "pw");
                File.WriteAllText(file, "secret\n");
                File.SetUnixFileMode(file, (UnixFileMode)Convert.ToInt32(value == "world-readable" ? "644" : "640", 8));
                env[key] = file;
            }
            else if (value is "nel" or "bom-only")
            {
                var file = Path.Combine(_instance.Home, "pw-" + value);
                File.WriteAllBytes(file, value == "nel" ? [(byte)'S', 0xC2, 0x85, (byte)'P', (byte)'\n'] : [0xEF, 0xBB, 0xBF, (byte)'\n']);
                File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                env[key] = file;
            }
            else if (value == "utf-16")
            {
                var file = Path.Combine(_instance.Home, "pw-utf16");
                File.WriteAllBytes(file, [0xFF, 0xFE, (byte)'P', (byte)'W', 0x00, (byte)'\n']);
                File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                env[key] = file;
            }
            else if (value is "nul" or "tab")
            {
                var file = Path.Combine(_instance.Home, "pw-" + value);
                File.WriteAllText(file, value == "nul" ? "sec\0ret\n" : "secret\t\n");
                File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                env[key] = file;
            }
            else if (value == "fifo")
            {
                var fifo = Path.Combine(_instance.Home, "pw-fifo");
                Assert.Equal(0, PostfixInstance.Run("mkfifo", "-m", "600", fifo));
                env[key] = fifo;
            }
            else if (value == "missing")
            {
                env[key] = Path.Combine(_instance.Home, "no-such-file");
            }
            else if (value == "dangling")
            {
                var link = Path.Combine(_instance.Home, "pw-link");
                File.CreateSymbolicLink(link, "/nonexistent/pw");
                env[key] = link;
            }
        }

        var result = MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: env);

        Assert.Equal(ExitCodes.Config, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("mailman: configuration: ", line, StringComparison.Ordinal);
        Assert.Contains(message, line, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", result.Stdout + result.Stderr, StringComparison.Ordinal);

        // A verb warns of what serve would refuse, the relays' files too (review 133: a password
        // file others may read passed the verbs).
        if (key.EndsWith("PasswordFile", StringComparison.Ordinal) || key.EndsWith("CaFile", StringComparison.Ordinal))
        {
            var verb = MailmanProcess.Run(_instance.Home, ["status"], env: env);
            Assert.True(verb.ExitCode == ExitCodes.Ok, verb.Stderr);
            Assert.StartsWith("mailman: warning: serve would refuse these settings (78): configuration: ", verb.Stderr, StringComparison.Ordinal);
            Assert.Contains(message, verb.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_password_from_a_file_or_a_systemd_credential_authenticates_and_never_reaches_a_log()
    {
        const string password = "Pw-7c1e9d-never-logged";
        const string wrong = "Wrong-4b2a-never-logged";
        using var certs = TestCertificates.Create();
        using var server = ScriptedSmtpServer.Start(certificate: certs.Server, users: new Dictionary<string, string> { ["lists"] = password });
        CreateList(TempInstance.NumberedMembers(5));
        var file = Path.Combine(_instance.Home, "smtp.pw");
        File.WriteAllText(file, wrong + "\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead);
        var env = new Dictionary<string, string>
        {
            ["Mailman__Smtp__Security"] = "starttls",
            ["Mailman__Smtp__CaFile"] = certs.CaFile,
            ["Mailman__Smtp__User"] = "lists",
            ["Mailman__Smtp__PasswordFile"] = file,
            ["Logging__MinimumLevel"] = "Verbose",
        };

        // A refused password: the relay is down, the copies wait in retry, the log says why.
        Inject();
        var first = MailmanProcess.ServeUntilIdle(_instance.Home, server.Port, env);
        Assert.Equal(1, _instance.Count("retry"));
        Assert.Contains("AUTH as lists refused", Logs(), StringComparison.Ordinal);

        // The right one, as systemd's LoadCredential= hands it over.
        var credentials = Path.Combine(_instance.Home, "credentials");
        Directory.CreateDirectory(credentials);
        File.WriteAllText(Path.Combine(credentials, "smtp"), password + "\n");
        env.Remove("Mailman__Smtp__PasswordFile");
        env["Mailman__Smtp__Credential"] = "smtp";
        env["CREDENTIALS_DIRECTORY"] = credentials;
        Runners.RetryTestHelper.MakeDue(_instance);
        var second = MailmanProcess.ServeUntilIdle(_instance.Home, server.Port, env);

        Assert.Equal(5, server.Received.Count);
        Assert.All(server.Received, m => Assert.Equal("lists", m.User));
        Assert.All(server.Received, m => Assert.True(m.Secure));
        var everything = Logs() + first.Stdout + first.Stderr + second.Stdout + second.Stderr;
        Assert.DoesNotContain(password, everything, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, everything, StringComparison.Ordinal);
    }

    [Fact]
    public void The_daemon_delivers_over_required_STARTTLS_through_Postfix()
    {
        using var certs = TestCertificates.Create();
        using var sink = SmtpSink.Start();
        using var postfix = PostfixInstance.Create(sink.Port, $"""
            smtpd_tls_security_level = encrypt
            smtpd_tls_cert_file = {certs.ServerCertFile}
            smtpd_tls_key_file = {certs.ServerKeyFile}
            smtpd_tls_loglevel = 1
            """, "tlsmgr    unix  -       -       n       1000?   1       tlsmgr");
        postfix.Start();
        CreateList(TempInstance.NumberedMembers(20));
        Inject();

        MailmanProcess.ServeUntilIdle(_instance.Home, postfix.Port, new Dictionary<string, string>
        {
            ["Mailman__Smtp__Security"] = "starttls",
            ["Mailman__Smtp__CaFile"] = certs.CaFile,
        });

        var copies = sink.WaitFor(20, TimeSpan.FromSeconds(90));
        Assert.Equal(20, copies.Select(m => Assert.Single(m.Recipients)).Distinct().Count());
        Assert.All(copies, m => Assert.Contains("\n.leading dot\n..two dots\nbye\n", m.Body, StringComparison.Ordinal));
        Assert.Contains("TLS connection established from localhost", postfix.Log(), StringComparison.Ordinal);
    }

    // A smarthost that takes fewer connections from us than we open (Postfix's anvil: 421 4.7.0
    // "too many connections" at the greeting) is not down: a refused worker retires and the
    // open ones carry the whole post in one attempt, nothing deferred to retry, no one twice.
    [Fact]
    public void A_relay_that_takes_fewer_connections_than_configured_gets_the_whole_post_over_those_it_takes()
    {
        const int members = 200;
        using var sink = SmtpSink.Start();
        using var postfix = PostfixInstance.Create(sink.Port, """
            smtpd_client_connection_count_limit = 2
            smtpd_client_event_limit_exceptions =
            """, "");
        postfix.Start();
        CreateList(TempInstance.NumberedMembers(members));
        Inject();

        MailmanProcess.ServeUntilIdle(_instance.Home, postfix.Port, new Dictionary<string, string>
        {
            ["Mailman__Smtp__Connections"] = "6",
            ["Mailman__Smtp__CheckpointRecipients"] = "10",
        });

        Assert.Equal(0, _instance.Count("retry"));
        Assert.Equal(0, _instance.Count("out"));
        var logs = Logs();
        Assert.Contains("refused a connection while", logs, StringComparison.Ordinal);
        Assert.Contains("too many connections", logs, StringComparison.Ordinal);
        Assert.DoesNotContain("is down", logs, StringComparison.Ordinal);
        Assert.Contains("Connection concurrency limit exceeded", postfix.Log(), StringComparison.Ordinal);
        sink.WaitFor(members, TimeSpan.FromSeconds(90));
        AssertEveryoneWithin(Copies(sink), TempInstance.NumberedMembers(members).Select(m => m.Address), 0);
    }

    [Fact]
    public void Copies_spread_over_the_relays_by_weight()
    {
        const int members = 2000;
        CreateList(TempInstance.NumberedMembers(members));
        using var heavy = SmtpSink.Start();
        using var light = SmtpSink.Start();
        Inject();

        ServeUntilDone(Pool((heavy.Port, 3), (light.Port, 1)), heavy.Port);

        AssertEveryoneWithin(Copies(heavy, light), TempInstance.NumberedMembers(members).Select(m => m.Address), 0);
        var share = (double)Copies(heavy).Count / members;
        Assert.InRange(share, 0.65, 0.85);
    }

    [Fact]
    public void A_relay_killed_mid_delivery_is_marked_down_once_its_work_goes_to_the_other_and_nothing_is_lost()
    {
        const int members = 2000;
        CreateList(TempInstance.NumberedMembers(members));
        using var dying = SmtpSink.Start();
        using var surviving = SmtpSink.Start();
        Inject();
        var env = Pool((dying.Port, 1), (surviving.Port, 1));

        using (var daemon = DaemonProcess.Start(_instance.Home, env))
        {
            Wait.Until(() => Copies(dying).Count >= 300 || daemon.HasExited, TimeSpan.FromSeconds(120), "300 copies through the first relay");
            dying.Kill();
            Wait.Until(() => Copies(dying, surviving).ToHashSet().Count >= members || daemon.HasExited, TimeSpan.FromSeconds(180), "every member's copy");
            var status = MailmanProcess.Run(_instance.Home, ["status"]).Stdout;
            Assert.Contains($"relay 127.0.0.1:{dying.Port} (none, 2 connections, weight 1): down", status, StringComparison.Ordinal);
            Assert.Contains($"relay 127.0.0.1:{surviving.Port} (none, 2 connections, weight 1): up", status, StringComparison.Ordinal);
            daemon.Terminate();
            Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(90)));
        }

        // Copies the dying sink took whose reply never came were retried: within the bound.
        AssertEveryoneWithin(Copies(dying, surviving), TempInstance.NumberedMembers(members).Select(m => m.Address), 4 * Chunk);
        Assert.Single(Logs().Split('\n'), l => l.Contains($"Relay 127.0.0.1:{dying.Port} is down", StringComparison.Ordinal));
    }

    // Review 67's fix marks a relay down when it breaks a connection in the middle of a
    // transaction; a sole relay that does so once (a reset) is waited for once, as after a 421
    // in a session: the rest of the post goes on, only the copy whose reply was lost waits.
    [Fact]
    public void A_sole_relay_that_drops_one_connection_after_the_data_defers_only_that_copy()
    {
        const int members = 300;
        CreateList(TempInstance.NumberedMembers(members));
        using var relay = RawSmtpServer.DroppingMessage(40);
        Inject();
        var line = DeliverOnce(Pool((relay.Port, 1)), members);
        Assert.Contains($"{members - 1} delivered, 1 deferred", line, StringComparison.Ordinal);
        Assert.Equal(members - 1, relay.Delivered.Distinct().Count());
        Assert.Contains($"Relay 127.0.0.1:{P(relay.Port)} is down: the connection broke in the middle of a transaction", Logs(), StringComparison.Ordinal);
    }

    // The review of #14: a relay that accepted copies and then stalled (no reply to the end of
    // data) was never marked down, and the weighted share held the healthy relay back to its pace.
    [Fact]
    public void A_relay_that_stops_answering_is_marked_down_after_the_timeout_and_the_other_takes_the_post()
    {
        const int members = 600;
        CreateList(TempInstance.NumberedMembers(members));
        using var stalling = RawSmtpServer.StallingInData(after: 10);
        using var taking = SmtpSink.Start();
        Inject();
        var env = Pool((stalling.Port, 1), (taking.Port, 1));
        env["Mailman__Smtp__TimeoutSeconds"] = "3";

        using (var daemon = DaemonProcess.Start(_instance.Home, env))
        {
            Wait.Until(() => daemon.HasExited || Logs().Contains($"Relay 127.0.0.1:{stalling.Port} is down: no reply within 3 s", StringComparison.Ordinal),
                TimeSpan.FromSeconds(120), "the stalled relay to be marked down", () => Logs());
            Wait.Until(() => daemon.HasExited || (_instance.Count("out") == 0 && _instance.Count("in") == 0), TimeSpan.FromSeconds(120), "the post to be delivered", () => Logs());
            Assert.False(daemon.HasExited, daemon.Output);
            daemon.Terminate();
            Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(90)));
        }

        // Only the transactions the stalled relay held when it stalled wait in retry; the healthy
        // relay took every other copy in the same delivery.
        var got = Copies(taking).Concat(stalling.Delivered).ToHashSet();
        var waiting = QueuedRecipients("retry").Concat(QueuedRecipients("out")).ToHashSet();
        Assert.All(TempInstance.NumberedMembers(members), m => Assert.True(got.Contains(m.Address) || waiting.Contains(m.Address), m.Address + " is neither delivered nor queued"));
        Assert.InRange(got.Count, members - (2 * Chunk), members);
    }

    // Review 53: a relay that takes connections and never greets held the chunks its workers had
    // taken until Smtp:TimeoutSeconds, and with them every post. Another worker takes a chunk
    // over once its worker has been opening its connection for 2 s (nothing of it was sent), and
    // the delivery ends without waiting for the connections still opening.
    [Fact]
    public void A_relay_that_never_greets_holds_no_chunk_and_no_post()
    {
        const int members = 400;
        CreateList(TempInstance.NumberedMembers(members));
        using var silent = RawSmtpServer.Silent();
        using var taking = SmtpSink.Start();
        Inject();
        var env = Pool((silent.Port, 1), (taking.Port, 1));
        env["Mailman__Smtp__TimeoutSeconds"] = "40";
        var line = DeliverOnce(env, members);
        Assert.Contains($" {members} delivered, 0 deferred", line, StringComparison.Ordinal);
        Assert.Equal(members, Copies(taking).ToHashSet().Count);
        Assert.Equal(members, Copies(taking).Count);

        // Ended while the silent relay's connections were still waiting for its greeting: they
        // were cut, and the relay marked down once (review 55: never reported), not after the
        // 40 s timeout.
        Assert.DoesNotContain("sent no greeting", Logs(), StringComparison.Ordinal);
        Assert.Single(Logs().Split('\n'), l => l.Contains($"Relay 127.0.0.1:{P(silent.Port)} is down: SMTP server 127.0.0.1:{P(silent.Port)} took the connection but did not finish its greeting", StringComparison.Ordinal)
            && l.Contains("while the other relays sent the post", StringComparison.Ordinal));
    }

    // Review 55: a sole relay that greets slowly had its chunks taken over by its own other
    // workers, who opened new sessions to the same slow server: slower, with twice the
    // connections. Only a worker of another relay takes a chunk over.
    [Fact]
    public void A_sole_relay_that_greets_slowly_keeps_its_chunks_and_its_connection_count()
    {
        const int members = 100;
        CreateList(TempInstance.NumberedMembers(members));
        using var slow = RawSmtpServer.GreetingAfter(TimeSpan.FromSeconds(3));
        Inject();
        var env = Pool((slow.Port, 1));
        env["Mailman__Smtp__Relays__0__Connections"] = "8"; // more workers than the post's 5 chunks: 3 have nothing to do
        var line = DeliverOnce(env, members);
        Assert.Contains($" {members} delivered, 0 deferred", line, StringComparison.Ordinal);
        Assert.Equal(members, slow.Delivered.Count);
        Assert.Equal(members / Chunk, slow.Connections); // one per chunk: the idle ones opened none
        Assert.DoesNotContain(" is down", Logs(), StringComparison.Ordinal);
    }

    private HashSet<string> QueuedRecipients(string queue)
    {
        var q = new Mailman.Queues.Switchboard(new System.IO.Abstractions.FileSystem(), _instance.QueueDir(queue), queue, TimeProvider.System);
        var result = new HashSet<string>();
        foreach (var name in q.Pending())
        {
            var claim = q.Claim(name)!;
            result.UnionWith(q.Recipients(q.Load(claim)).Select(r => r.Address));
            q.Unclaim(claim);
        }

        return result;
    }

    [Theory]
    [InlineData("CONNECT")]
    [InlineData("MAIL")]
    [InlineData("RCPT")] // review 28: "421 4.0.0" at RCPT was taken for every domain's throttle
    [InlineData("DATA")]
    public void A_relay_that_answers_421_is_marked_down_once_and_status_shows_it_while_the_other_delivers_everything(string when)
    {
        const int members = 500;
        CreateList(TempInstance.NumberedMembers(members));
        using var refusing = SmtpSink.Start("-Q", when);
        using var taking = SmtpSink.Start();
        Inject();

        using (var daemon = DaemonProcess.Start(_instance.Home, Pool((refusing.Port, 1), (taking.Port, 1))))
        {
            Wait.Until(() => Copies(taking).Count >= members || daemon.HasExited, TimeSpan.FromSeconds(120), "every member's copy through the other relay");

            // The daemon publishes the pool when the delivery ends: status shows it from then on.
            Dictionary<string, System.Text.Json.JsonElement> relays = [];
            Wait.Until(() =>
            {
                using var status = System.Text.Json.JsonDocument.Parse(MailmanProcess.Run(_instance.Home, ["status", "--json"]).Stdout);
                relays = status.RootElement.GetProperty("relays") is { ValueKind: System.Text.Json.JsonValueKind.Array } list
                    ? list.EnumerateArray().ToDictionary(r => r.GetProperty("relay").GetString()!, r => r.Clone())
                    : [];
                return daemon.HasExited || (relays.TryGetValue("127.0.0.1:" + P(taking.Port), out var r) && r.GetProperty("sent").GetInt64() >= members);
            }, TimeSpan.FromSeconds(30), "status to show every copy sent");
            var down = relays["127.0.0.1:" + P(refusing.Port)];
            Assert.Equal("down", down.GetProperty("state").GetString());
            Assert.True(down.GetProperty("lastError").GetString()!.Contains("421", StringComparison.Ordinal), down.GetProperty("lastError").GetString());
            Assert.Equal(0, down.GetProperty("sent").GetInt64());
            var up = relays["127.0.0.1:" + P(taking.Port)];
            Assert.Equal("up", up.GetProperty("state").GetString());
            Assert.Equal(members, up.GetProperty("sent").GetInt64());
            Assert.True(up.TryGetProperty("rate", out _));
            daemon.Terminate();
            Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(90)));
        }

        AssertEveryoneWithin(Copies(refusing, taking), TempInstance.NumberedMembers(members).Select(m => m.Address), 0);
        Assert.Empty(Copies(refusing));
        Assert.Single(Logs().Split('\n'), l => l.Contains($"Relay 127.0.0.1:{refusing.Port} is down", StringComparison.Ordinal));
    }

    [Fact]
    public void SIGKILL_during_a_delivery_over_two_relays_then_restart_stays_within_connections_times_chunk()
    {
        const int members = 2000;
        CreateList(TempInstance.NumberedMembers(members));
        using var a = SmtpSink.Start();
        using var b = SmtpSink.Start();
        Inject();
        var env = Pool((a.Port, 1), (b.Port, 1));
        using (var daemon = DaemonProcess.Start(_instance.Home, env))
        {
            Wait.Until(() => Copies(a, b).Count >= members / 2 || daemon.HasExited, TimeSpan.FromSeconds(120), "half the copies");
            Assert.False(daemon.HasExited, daemon.Output);
            daemon.Kill();
        }

        ServeUntilDone(env, a.Port);

        // Two relays of two connections each: at most 4 chunks in flight.
        AssertEveryoneWithin(Copies(a, b), TempInstance.NumberedMembers(members).Select(m => m.Address), 4 * Chunk);
    }

    // Runs the daemon until the post's delivery line (what it defers stays in retry) and returns the line.
    private string DeliverOnce(Dictionary<string, string> env, int members)
    {
        env["Mailman__Retry__MinimumDelay"] = "00:10:00";
        env["Mailman__Retry__MaximumDelay"] = "00:10:00";
        using var daemon = DaemonProcess.Start(_instance.Home, env);
        Wait.Until(() => Logs().Contains($" delivered: {members} recipients", StringComparison.Ordinal) || daemon.HasExited, TimeSpan.FromSeconds(120), "the delivery line");
        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(60)));
        return Logs().Split('\n').Single(l => l.Contains($" delivered: {members} recipients", StringComparison.Ordinal));
    }

    // Review 29: a relay that answers 421 (not 4.7.x) at RCPT and takes the next connection again
    // was marked down, but each of its chunks went on, every copy deferred to retry.
    [Fact]
    public void A_relay_that_answers_421_at_RCPT_hands_the_rest_of_its_chunks_to_the_other_at_once()
    {
        const int members = 300;
        CreateList(TempInstance.NumberedMembers(members));
        using var sick = ScriptedSmtpServer.Start(rcpt: _ => ScriptedSmtpServer.Reply(421, "4.4.5 Too many connections"));
        using var taking = SmtpSink.Start();
        Inject();
        var line = DeliverOnce(Pool((sick.Port, 1), (taking.Port, 1)), members);
        var deferred = int.Parse(System.Text.RegularExpressions.Regex.Match(line, @"(\d+) deferred").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(deferred <= 4, $"{deferred} copies deferred: only the transactions in flight on the sick relay's two connections may be ({line})");
        Assert.Equal(members - deferred, Copies(taking).Distinct().Count());
        Assert.Empty(sick.Received);
    }

    // Review 31: a sole relay's one 421 (not 4.7.x) on the last transaction of a chunk left
    // every relay in its backoff when the worker asked for the next chunk: the delivery ended as
    // unreachable and 476 of 500 copies went to retry. The relay is waited for once. MailKit's
    // path (no pipelining) marks it down too: it lost the 421 when MailKit dropped the session.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_sole_relays_one_421_defers_only_that_transaction(bool pipelining)
    {
        const int members = 100;
        CreateList(TempInstance.NumberedMembers(members));
        var seen = 0;
        using var relay = ScriptedSmtpServer.Start(rcpt: _ => Interlocked.Increment(ref seen) == Chunk ? ScriptedSmtpServer.Reply(421, "closing now") : null);
        Inject();
        var env = Pool((relay.Port, 1));
        env["Mailman__Smtp__Relays__0__Connections"] = "1";
        env["Mailman__Smtp__Pipelining"] = pipelining ? "true" : "false";
        var line = DeliverOnce(env, members);
        var logs = Logs();
        Assert.Contains(" 1 deferred", line, StringComparison.Ordinal);
        Assert.Equal(members - 1, relay.Received.SelectMany(m => m.Recipients).Distinct().Count());
        Assert.Contains($"Relay 127.0.0.1:{P(relay.Port)} is down", logs, StringComparison.Ordinal);
        Assert.DoesNotContain("SMTP server unreachable", logs, StringComparison.Ordinal);
    }

    // Review 53: a stray 421 to the very first MAIL FROM of a delivery (on a session the relay
    // took), with eight connections, ended it: 7 delivered, 493 deferred, as if the relay had
    // refused the connection. It is waited for like a 421 in a session.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_sole_relays_421_to_the_first_MAIL_FROM_is_waited_for_once(bool pipelining)
    {
        const int members = 300;
        CreateList(TempInstance.NumberedMembers(members));
        var seen = 0;
        using var relay = ScriptedSmtpServer.Start(mail: _ => Interlocked.Increment(ref seen) == 1 ? ScriptedSmtpServer.Reply(421, "4.3.0 stray") : null);
        Inject();
        var env = Pool((relay.Port, 1));
        env["Mailman__Smtp__Relays__0__Connections"] = "8";
        env["Mailman__Smtp__Pipelining"] = pipelining ? "true" : "false";
        var line = DeliverOnce(env, members);
        Assert.Contains($" {members} delivered, 0 deferred", line, StringComparison.Ordinal);
        Assert.Equal(members, relay.Received.SelectMany(m => m.Recipients).Distinct().Count());
        Assert.Contains($"Relay 127.0.0.1:{P(relay.Port)} is down", Logs(), StringComparison.Ordinal);
    }

    // Review 32: a sole relay that answers 421 to every transaction was waited for once, but
    // only after every copy of the post had been tried within its first backoff. Once it has
    // refused more transactions than it has connections, the rest waits in retry.
    [Fact]
    public void A_sole_relay_that_answers_421_to_everything_is_not_tried_with_every_copy()
    {
        const int members = 200;
        CreateList(TempInstance.NumberedMembers(members));
        var tried = 0;
        using var relay = ScriptedSmtpServer.Start(rcpt: _ =>
        {
            Interlocked.Increment(ref tried);
            return ScriptedSmtpServer.Reply(421, "4.3.2 going away");
        });
        Inject();
        var line = DeliverOnce(Pool((relay.Port, 1)), members);
        Assert.Contains(" 0 delivered", line, StringComparison.Ordinal);
        Assert.True(Volatile.Read(ref tried) <= 8, $"{tried} transactions tried on a relay refusing every one ({line})");
        Assert.Contains("SMTP server unreachable", Logs(), StringComparison.Ordinal);
        // Review 81: what it said when marked down, and when it is tried again.
        Assert.Matches(@"127\.0\.0\.1:\d+: .*421.* \(marked down \d+ s ago, tried again in \d+ s\)", Logs());
        Assert.Equal(members, QueuedRecipients("retry").Distinct().Count());
    }

    [Fact]
    public void A_destination_that_answers_421_4_7_0_is_slowed_down_and_the_other_domains_are_delivered_meanwhile()
    {
        var members = TempInstance.NumberedMembers(70).Concat(TempInstance.NumberedMembers(30, "slow.example")).ToList();
        CreateList(members);
        var refusals = 0;
        using var server = ScriptedSmtpServer.Start(rcpt: a =>
            a.EndsWith("@slow.example", StringComparison.Ordinal) && Interlocked.Increment(ref refusals) <= 10
                ? ScriptedSmtpServer.Reply(421, "4.7.0 Try again later, closing connection")
                : null);
        Inject();
        var env = Pool((server.Port, 1));

        MailmanProcess.ServeUntilIdle(_instance.Home, server.Port, env);
        var firstRun = server.Received.SelectMany(m => m.Recipients).ToList();
        Assert.Equal(70, firstRun.Count(r => r.EndsWith("@example.com", StringComparison.Ordinal)));
        Assert.Contains("Destination slow.example asks us to slow down", Logs(), StringComparison.Ordinal);

        ServeUntilDone(env, server.Port);
        var all = server.Received.SelectMany(m => m.Recipients).ToList();
        Assert.Equal(members.Count, all.Count);
        Assert.Equal(members.Count, all.Distinct().Count());
    }

    [Fact]
    public void A_configured_rate_paces_its_destination_without_holding_up_the_others()
    {
        var members = TempInstance.NumberedMembers(8, "paced.example").Concat(TempInstance.NumberedMembers(150)).ToList();
        CreateList(members);
        using var server = ScriptedSmtpServer.Start();
        Inject();
        var env = Pool((server.Port, 1));
        // One every two seconds: the 150 others have some eight seconds on a loaded machine
        // before a fifth paced copy (at one a second a full test run once missed it).
        env["Mailman__Smtp__Destinations__paced.example__MaxPerMinute"] = "30";

        ServeUntilDone(env, server.Port);

        var received = server.Received.ToList();
        Assert.Equal(members.Count, received.Select(m => m.Recipients[0]).Distinct().Count());
        var paced = received.Where(m => m.Recipients[0].EndsWith("@paced.example", StringComparison.Ordinal)).ToList();
        var lastOther = received.FindLastIndex(m => m.Recipients[0].EndsWith("@example.com", StringComparison.Ordinal));
        Assert.True(received.Take(lastOther).Count(m => m.Recipients[0].EndsWith("@paced.example", StringComparison.Ordinal)) <= 4,
            "the paced destination held up the others");

        // One in two seconds (a burst of one): eight copies span at least twelve seconds, however fast the machine.
        Assert.True(paced[^1].At - paced[0].At >= TimeSpan.FromSeconds(12), $"8 paced copies in {(paced[^1].At - paced[0].At).TotalSeconds:F1}s");
    }

    // Review 90: out is one line; a confirmation or an owner's forward waited for a
    // 200,000-member post's whole delivery.
    [Fact]
    public void A_long_delivery_makes_way_for_a_small_post_waiting_behind_it_and_every_member_gets_one_copy()
    {
        // 25 ms a copy: four seconds at least on two connections.
        var (received, smallAt) = SmallPostBehindABigOne(300, TimeSpan.FromMilliseconds(25), injectAfter: 10, []);

        var bigAfter = received.Skip(smallAt + 1).Count(m => m.Recipients[0].EndsWith("@example.com", StringComparison.Ordinal));
        Assert.True(bigAfter >= 20, $"the small post waited for the big one: {bigAfter} of its copies came after it");
        Assert.Contains("makes way for the notices and small posts waiting behind it", Logs(), StringComparison.Ordinal);
    }

    // Review 93: it made way only when a worker took its next chunk, and a chunk on a slow relay
    // took longer than the slice (25 copies at a second each).
    [Fact]
    public void A_delivery_on_a_slow_relay_makes_way_between_the_transactions_of_a_chunk()
    {
        // 100 ms a copy on one connection: a chunk of 60 takes six seconds.
        var (_, smallAt) = SmallPostBehindABigOne(120, TimeSpan.FromMilliseconds(100), injectAfter: 1, new()
        {
            ["Mailman__Smtp__Relays__0__Connections"] = "1",
            ["Mailman__Smtp__CheckpointRecipients"] = "60",
        });

        Assert.True(smallAt < 50, $"the small post waited for the big one's chunk of 60: {smallAt} copies before it");
    }

    // A post to `members` through a relay taking `perCopy` for each of its copies, and a
    // one-member post injected once `injectAfter` copies are in, with YieldAfterSeconds 1: what
    // the relay received (every member once checked) and where the small post's copy is in it.
    private (List<ReceivedMessage> Received, int SmallAt) SmallPostBehindABigOne(int members, TimeSpan perCopy, int injectAfter, Dictionary<string, string> settings)
    {
        var big = TempInstance.NumberedMembers(members).ToList();
        CreateList(big);
        _instance.CreateList("small@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("small@example.org", [new Member("someone@small.example", "")]);
        using var server = ScriptedSmtpServer.Start(data: recipients =>
        {
            if (!recipients.Any(r => r.EndsWith("@small.example", StringComparison.Ordinal)))
            {
                Thread.Sleep(perCopy); // a slow relay, as smtp-sink -w
            }

            return null;
        });
        Inject();
        var env = Pool((server.Port, 1));
        env["Mailman__Smtp__YieldAfterSeconds"] = "1";
        foreach (var (key, value) in settings)
        {
            env[key] = value;
        }

        using var daemon = DaemonProcess.Start(_instance.Home, env, exitWhenIdle: true);
        Wait.Until(() => server.Received.Count >= injectAfter || daemon.HasExited, TimeSpan.FromSeconds(60), "the big post's delivery to start");
        var small = MailmanProcess.Run(_instance.Home, ["inject", "small@example.org"], Posts.Plain(to: "small@example.org", messageId: "small@example.com"));
        Assert.True(small.ExitCode == 0, small.Stderr);
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(120)), "the deliveries did not end");
        Assert.True(daemon.ExitCode == 0, daemon.Output);

        var received = server.Received.ToList();
        var smallAt = received.FindIndex(m => m.Recipients[0] == "someone@small.example");
        Assert.True(smallAt >= 0, "the small post was not delivered");
        var copies = received.Where(m => m.Recipients[0].EndsWith("@example.com", StringComparison.Ordinal)).Select(m => Assert.Single(m.Recipients)).ToList();
        Assert.Equal(big.Select(m => m.Address).Order(StringComparer.Ordinal), copies.Order(StringComparer.Ordinal));
        return (received, smallAt);
    }

    [Fact]
    public void A_post_left_waiting_for_a_paced_destination_makes_way_for_the_next_post()
    {
        var members = TempInstance.NumberedMembers(5, "paced.example").Concat(TempInstance.NumberedMembers(40)).ToList();
        CreateList(members);
        using var server = ScriptedSmtpServer.Start();
        Inject("first@example.com");
        Inject("second@example.com");
        var env = Pool((server.Port, 1));
        env["Mailman__Smtp__Destinations__paced.example__MaxPerMinute"] = "60";
        env["Mailman__Smtp__YieldAfterSeconds"] = "1";

        ServeUntilDone(env, server.Port);

        var received = server.Received.ToList();
        bool Of(ReceivedMessage m, string id) => System.Text.Encoding.UTF8.GetString(m.Content).Contains($"<{id}>", StringComparison.Ordinal);
        foreach (var id in new[] { "first@example.com", "second@example.com" })
        {
            var copies = received.Where(m => Of(m, id)).Select(m => Assert.Single(m.Recipients)).ToList();
            Assert.Equal(members.Select(m => m.Address).Order(StringComparer.Ordinal), copies.Order(StringComparer.Ordinal));
        }

        // The first post's five paced copies take four seconds at least (one a second): the
        // second post's other members have theirs before the last of them.
        var lastPacedOfFirst = received.FindLastIndex(m => Of(m, "first@example.com") && m.Recipients[0].EndsWith("@paced.example", StringComparison.Ordinal));
        var lastOtherOfSecond = received.FindLastIndex(m => Of(m, "second@example.com") && m.Recipients[0].EndsWith("@example.com", StringComparison.Ordinal));
        Assert.True(lastOtherOfSecond < lastPacedOfFirst, "the second post waited for the first one's paced destination");
        Assert.Contains("makes way for the posts waiting", Logs(), StringComparison.Ordinal);

        // Five paced copies each: the posts take turns more than once, but each says so at
        // Information once (later turns at Debug), and its summary counts the turns.
        foreach (var id in new[] { "first@example.com", "second@example.com" })
        {
            Assert.True(System.Text.RegularExpressions.Regex.Count(Logs(), $@"Delivery of <?{System.Text.RegularExpressions.Regex.Escape(id)}>? .* makes way") <= 1, Logs());
        }

        Assert.Contains("; made way for other posts ", Logs(), StringComparison.Ordinal);
        Assert.Contains("paced: paced.example at 60 copies a minute", Logs(), StringComparison.Ordinal);

        // The resumed run's summary counts its own copies and says how many were done before:
        // together every member, once (status counts the same way).
        var summary = System.Text.RegularExpressions.Regex.Match(Logs(), @"Post <?first@example\.com>? to \S+ delivered: 45 recipients, (\d+) delivered, 0 deferred, 0 bounced.*; resumed: (\d+) recipients were handled in earlier runs \(delivered, deferred or refused there\)");
        Assert.True(summary.Success, Logs());
        Assert.Equal(45, int.Parse(summary.Groups[1].Value, CultureInfo.InvariantCulture) + int.Parse(summary.Groups[2].Value, CultureInfo.InvariantCulture));
    }
}
