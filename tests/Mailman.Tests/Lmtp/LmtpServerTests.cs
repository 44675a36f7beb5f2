// The LMTP listener in a real `mailman serve` process, spoken to by a plain client, by Postfix's
// own lmtp transport (the private Postfix, configured by `mailman aliases --lmtp`) and by
// `smtp-source -L`. Posts to LIST-owner@ stay in the owner queue (no runner takes them in this
// daemon), so what was accepted can be counted on disk afterwards.
using System.Diagnostics;
using System.Text;
using Mailman.Cli;
using Mailman.Lists;
using Mailman.TestSupport;
using MimeKit;
using LmtpSession = Mailman.Lmtp.LmtpSession;

namespace Mailman.Tests.Lmtp;

public sealed class LmtpServerTests : IDisposable
{
    private const string List = "dev@lists.example.org";
    private const string Owner = "dev-owner@lists.example.org";
    private readonly TempInstance _instance = new();
    private readonly SmtpSink _sink = SmtpSink.Start();
    private readonly int _port = Net.FreePort();

    public LmtpServerTests() => _instance.CreateList(List, l => l.NonMemberAction = NonMemberAction.Hold);

    public void Dispose()
    {
        _sink.Dispose();
        _instance.Dispose();
    }

    private DaemonProcess Serve(int maxMessageSizeKb = 102400, string timeout = "00:05:00")
    {
        var daemon = DaemonProcess.Start(_instance.Home, new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = _sink.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mailman__Lmtp__Url"] = $"lmtp://127.0.0.1:{_port}",
            ["Mailman__Lmtp__MaxMessageSizeKb"] = maxMessageSizeKb.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mailman__Lmtp__Timeout"] = timeout,
        });
        Wait.Until(() => Net.CanConnect(_port) || daemon.HasExited, TimeSpan.FromSeconds(60), "the LMTP listener");
        Assert.False(daemon.HasExited, daemon.Output);
        return daemon;
    }

    private static string Post(string id, string from = "poster@example.com") => $"From: {from}\nTo: {List}\nSubject: lmtp {id}\nMessage-Id: <{id}@example.com>\n\nbody of {id}\n.leading dot\n";

    // Mail for LIST-owner@: the owner runner moves it on to bad (the list has no owner and there
    // is no site owner) by a rename under the same name; an accepted post is in one of these.
    private static readonly string[] OwnerMailQueues = ["owner", "bad"];
    private static readonly string[] PostQueues = ["in", "pipeline", "hold"];

    private string[] OwnerEntries()
        => OwnerMailQueues.SelectMany(q => Directory.GetFiles(_instance.QueueDir(q)))
            .Where(f => f.EndsWith(".msg", StringComparison.Ordinal) || f.EndsWith(".bak", StringComparison.Ordinal))
            .DistinctBy(Path.GetFileNameWithoutExtension).ToArray();

    // The one owner entry's text, read wherever it is by then.
    private string OwnerEntryText()
    {
        string? text = null;
        Wait.Until(() => (text = ReadIfStill(Assert.Single(OwnerEntries()))) is not null, TimeSpan.FromSeconds(30), "the owner entry");
        return text!;
    }

    // A queue file's text, or null when it moved on (the runner's next hop) between the listing
    // and the read.
    private static string? ReadIfStill(string file)
    {
        try
        {
            return File.ReadAllText(file);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    [Fact]
    public void Unknown_lists_are_refused_at_RCPT_and_each_accepted_recipient_gets_its_own_reply_once_on_disk()
    {
        using var daemon = Serve();
        using var client = new LmtpClient(_port);
        Assert.StartsWith("220 ", client.Greeting, StringComparison.Ordinal);
        var lhlo = client.Command("LHLO postfix.example.org");
        Assert.Contains("250 SIZE 104857600", lhlo, StringComparison.Ordinal);
        Assert.Contains("250-PIPELINING", lhlo, StringComparison.Ordinal);
        Assert.StartsWith("250 ", client.Command("MAIL FROM:<poster@example.com> BODY=8BITMIME"), StringComparison.Ordinal);
        Assert.StartsWith("550 5.1.1 ", client.Command("RCPT TO:<gone@lists.example.org>"), StringComparison.Ordinal);
        Assert.StartsWith("550 5.1.1 ", client.Command("RCPT TO:<../etc@lists.example.org>"), StringComparison.Ordinal);
        Assert.StartsWith("250 ", client.Command($"RCPT TO:<{List}>"), StringComparison.Ordinal);
        Assert.StartsWith("250 ", client.Command($"RCPT TO:<{Owner}>"), StringComparison.Ordinal);
        var replies = new List<string>();
        Assert.StartsWith("354", client.Data(Post("one"), 2, replies), StringComparison.Ordinal);
        Assert.Equal(2, replies.Count);
        Assert.All(replies, r => Assert.StartsWith("250 2.0.0 ", r, StringComparison.Ordinal));
        Assert.Contains($"<{Owner}> queued as ", replies[1], StringComparison.Ordinal);

        // The owner's entry is on disk when its 250 arrives: the sender and the message as sent, dot-stuffing undone.
        var entry = OwnerEntryText();
        Assert.Contains("\"Sender\":\"poster@example.com\"", entry, StringComparison.Ordinal);
        Assert.Contains("body of one\n.leading dot\n", entry, StringComparison.Ordinal);

        // The post itself went the way of any post: held, the list being members-only.
        Wait.Until(() => _instance.Count("hold") == 1, TimeSpan.FromSeconds(60), "the post to be held");
        Assert.StartsWith("503 ", client.Command("DATA"), StringComparison.Ordinal);
        Assert.StartsWith("221 ", client.Command("QUIT"), StringComparison.Ordinal);
    }

    // A From_ line before the message is skipped, as inject skips it, for each recipient.
    [Fact]
    public void A_leading_From_line_is_not_kept_in_any_recipients_entry()
    {
        using var daemon = Serve();
        using var client = new LmtpClient(_port);
        client.Command("LHLO postfix.example.org");
        Assert.StartsWith("250 ", client.Command("MAIL FROM:<poster@example.com>"), StringComparison.Ordinal);
        Assert.StartsWith("250 ", client.Command($"RCPT TO:<{Owner}>"), StringComparison.Ordinal);
        var replies = new List<string>();
        client.Data("From poster@example.com  Tue Dec  1 19:00:00 2026\n" + Post("fromline"), 1, replies);
        Assert.StartsWith("250 2.0.0 ", Assert.Single(replies), StringComparison.Ordinal);
        var entry = OwnerEntryText();
        Assert.DoesNotContain("From poster@example.com  Tue", entry, StringComparison.Ordinal);
        Assert.Contains("From: poster@example.com\nTo: ", entry, StringComparison.Ordinal);
        Assert.Contains("body of fromline\n.leading dot\n", entry, StringComparison.Ordinal);
    }

    // The day-one review: RCPT repeated 100 times made 100 entries (every member got the post
    // 100 times); a bare LF ended DATA (the rest was read as commands: SMTP smuggling); a command
    // line that never ends held its session slot for as long as the client trickled bytes.
    [Fact]
    public void A_repeated_RCPT_is_one_entry_only_CRLF_dot_CRLF_ends_the_data_and_an_endless_command_line_ends_the_session()
    {
        using var daemon = Serve();
        using (var client = new LmtpClient(_port))
        {
            client.Command("LHLO postfix.example.org");
            client.Command("MAIL FROM:<poster@example.com>");
            for (var i = 0; i < 5; i++)
            {
                Assert.StartsWith("250 ", client.Command($"RCPT TO:<{Owner}>"), StringComparison.Ordinal);
            }

            var replies = new List<string>();
            client.Data(Post("dup"), 5, replies);
            Assert.Equal(5, replies.Count);
            Assert.All(replies, r => Assert.Equal(replies[0], r));
            Assert.StartsWith("250 2.0.0 ", replies[0], StringComparison.Ordinal);
            Wait.Until(() => OwnerEntries().Length >= 1, TimeSpan.FromSeconds(30), "the owner entry");
            Assert.Single(OwnerEntries());

            // A bare-LF dot line is data; the message ends at CRLF.CRLF only.
            client.Command("MAIL FROM:<poster@example.com>");
            client.Command($"RCPT TO:<{List}>");
            Assert.StartsWith("354", client.Command("DATA"), StringComparison.Ordinal);
            client.Raw($"From: poster@example.com\r\nTo: {List}\r\nSubject: smuggled\r\nMessage-Id: <smuggle@example.com>\r\n\r\nfirst\n.\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<{Owner}>\r\nDATA\r\nsecond\r\n.\r\n");
            var reply = client.Reply();
            Assert.StartsWith("250 2.0.0 ", reply, StringComparison.Ordinal);
            Assert.StartsWith("250 ", client.Command("NOOP"), StringComparison.Ordinal);
            Wait.Until(() => PostQueues.SelectMany(q => Directory.GetFiles(_instance.QueueDir(q), "*.msg"))
                .Any(f => ReadIfStill(f)?.Contains("smuggle@example.com", StringComparison.Ordinal) == true), TimeSpan.FromSeconds(30), "the smuggling post");
            Assert.Single(OwnerEntries());
        }

        using (var client = new LmtpClient(_port))
        {
            client.Raw(new string('x', 5000));
            Assert.StartsWith("500 ", client.Reply(), StringComparison.Ordinal);
            Assert.Throws<IOException>(() => client.Reply());
        }

        // Review 95: junk drew a 500 a line for as long as it came; after LmtpSession.MaxProtocolErrors the session is closed.
        using (var client = new LmtpClient(_port))
        {
            client.Command("LHLO postfix.example.org");
            // Counted between messages taken (review 96: a cached connection carries many).
            for (var i = 1; i < LmtpSession.MaxProtocolErrors; i++)
            {
                Assert.StartsWith("503 ", client.Command("DATA"), StringComparison.Ordinal);
            }

            client.Command("MAIL FROM:<poster@example.com>");
            client.Command($"RCPT TO:<{Owner}>");
            var taken = new List<string>();
            client.Data(Post("between"), 1, taken);
            Assert.StartsWith("250 2.0.0 ", Assert.Single(taken), StringComparison.Ordinal);
            for (var i = 1; i < LmtpSession.MaxProtocolErrors; i++)
            {
                Assert.StartsWith(i % 2 == 0 ? "500 " : "503 ", client.Command(i % 2 == 0 ? "\u0001junk" : "DATA"), StringComparison.Ordinal);
            }

            Assert.StartsWith("500 ", client.Command("JUNK"), StringComparison.Ordinal);
            Assert.StartsWith("421 4.7.0 ", client.Reply(), StringComparison.Ordinal);
            Assert.Throws<IOException>(() => client.Reply());
        }
    }

    // Review 36: MAIL FROM with SMTPUTF8 was refused (555), so Postfix bounced what needs it:
    // posts from internationalized addresses, bounces of copies to UTF-8 members.
    [Fact]
    public void SMTPUTF8_is_offered_and_UTF8_addresses_are_taken()
    {
        using var daemon = Serve();
        using var client = new LmtpClient(_port);
        Assert.Contains("250-SMTPUTF8", client.Command("LHLO postfix.example.org"), StringComparison.Ordinal);
        client.Raw("MAIL FROM:<jörg@bücher.example> SMTPUTF8 BODY=8BITMIME\r\n");
        Assert.StartsWith("250 ", client.Reply(), StringComparison.Ordinal);
        client.Raw($"RCPT TO:<{Owner}>\r\n");
        Assert.StartsWith("250 ", client.Reply(), StringComparison.Ordinal);
        var replies = new List<string>();
        client.Data("From: Jörg <jörg@bücher.example>\nTo: dev-owner@lists.example.org\nSubject: grüße\nMessage-Id: <utf8@bücher.example>\n\nhallo\n", 1, replies);
        Assert.StartsWith("250 2.0.0 ", Assert.Single(replies), StringComparison.Ordinal);
        Assert.Contains("jörg@bücher.example", OwnerEntryText(), StringComparison.Ordinal);
    }

    // Review 36: the timeout was per read, so clients that sent a byte every second (of a command
    // line, or of DATA) held their session slots for ever and Lmtp:MaxSessions of them stopped intake.
    [Fact]
    public void A_command_line_or_DATA_that_trickles_in_is_cut_at_the_deadline()
    {
        using var daemon = Serve(timeout: "00:00:02");
        using (var client = new LmtpClient(_port))
        {
            var cut = Trickle(client, "NOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOP");
            Assert.StartsWith("421 4.4.2 ", cut, StringComparison.Ordinal);
        }

        using (var client = new LmtpClient(_port))
        {
            client.Command("LHLO postfix.example.org");
            client.Command("MAIL FROM:<poster@example.com>");
            Assert.StartsWith("250 ", client.Command($"RCPT TO:<{List}>"), StringComparison.Ordinal);
            Assert.StartsWith("354", client.Command("DATA"), StringComparison.Ordinal);
            client.Raw($"From: poster@example.com\r\nTo: {List}\r\nSubject: slow\r\n\r\n");
            var cut = Trickle(client, new string('x', 200));
            Assert.StartsWith("421 4.4.2 ", cut, StringComparison.Ordinal);
        }

        // A client at a normal pace is unaffected.
        using (var client = new LmtpClient(_port))
        {
            client.Command("LHLO postfix.example.org");
            client.Command("MAIL FROM:<poster@example.com>");
            client.Command($"RCPT TO:<{List}>");
            var replies = new List<string>();
            client.Data(Post("paced"), 1, replies);
            Assert.StartsWith("250 2.0.0 ", Assert.Single(replies), StringComparison.Ordinal);
        }
    }

    // Review 95: a client trickling a message held every stop to the host's stop timeout (the
    // full 90 s, then "sessions still in a transaction"): a session waiting on its client
    // mid-message is closed at the stop, and nothing of its message is kept (the MTA sends it again).
    [Fact]
    public void A_stop_closes_a_session_waiting_mid_message_and_keeps_nothing_of_it()
    {
        using var daemon = Serve();
        using var client = new LmtpClient(_port);
        client.Command("LHLO postfix.example.org");
        client.Command("MAIL FROM:<poster@example.com>");
        Assert.StartsWith("250 ", client.Command($"RCPT TO:<{List}>"), StringComparison.Ordinal);
        Assert.StartsWith("354", client.Command("DATA"), StringComparison.Ordinal);
        client.Raw($"From: poster@example.com\r\nTo: {List}\r\nSubject: half\r\n\r\nhalf a body\r\n");

        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromMinutes(3)), "the daemon did not stop");
        Assert.Equal(0, daemon.ExitCode);
        Assert.DoesNotContain("at the stop timeout", daemon.Output, StringComparison.Ordinal);
        Assert.Contains("LMTP listener stopped after accepting 0 entries", daemon.Output, StringComparison.Ordinal);
        Assert.Throws<IOException>(() => client.Reply());
        Assert.Empty(PostQueues.SelectMany(q => Directory.GetFiles(_instance.QueueDir(q), "*.msg")));
    }

    // Sends one byte every 100 ms (a client's pace, not a wait) until the server answers or
    // closes; the server must do so well within the text's 10 s at that pace.
    private static string Trickle(LmtpClient client, string text)
    {
        var answer = Task.Run(() =>
        {
            try
            {
                return client.Reply();
            }
            catch (IOException e)
            {
                return "closed: " + e.Message;
            }
        });
        foreach (var c in text)
        {
            if (answer.IsCompleted)
            {
                break;
            }

            try
            {
                client.Raw(c.ToString());
            }
            catch (IOException)
            {
                break;
            }

            Thread.Sleep(100);
        }

        Assert.True(answer.Wait(TimeSpan.FromSeconds(30)), "no answer");
        return answer.Result;
    }

    // The day-one review: with the LMTP port taken, the runners had started (and taken a post)
    // before the bind failed; the teardown then shunted it.
    // Review 28: taken by a listener with SO_REUSEPORT (what .NET's ReuseAddress sets on Linux,
    // so another daemon's), the port was shared and Postfix's deliveries split between them.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_taken_LMTP_port_stops_the_start_before_any_runner_takes_work(bool reusePort)
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, _port);
        if (reusePort)
        {
            taken.Server.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Socket, System.Net.Sockets.SocketOptionName.ReuseAddress, true);
        }

        taken.Start();
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", List], System.Text.Encoding.ASCII.GetBytes(Post("early"))).ExitCode);
        var serve = MailmanProcess.Run(_instance.Home, ["serve"], env: new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = _sink.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mailman__Lmtp__Url"] = $"lmtp://127.0.0.1:{_port}",
        });
        Assert.Equal(ExitCodes.Config, serve.ExitCode);
        Assert.Equal(1, _instance.Count("in"));
        Assert.Equal(0, _instance.Count("shunt"));
        var log = string.Concat(Directory.GetFiles(_instance.Paths.LogsDirectory, "mailman-*.log").Select(File.ReadAllText));
        Assert.DoesNotContain("started on queue", log, StringComparison.Ordinal);
        Assert.DoesNotContain(" starting: ", log, StringComparison.Ordinal);
    }

    // Review 86: the LMTP listener started, then the metrics endpoint could not bind (the same
    // port): the exit was 78, but the accept loop spun on the disposed socket, hundreds of lines.
    [Fact]
    public void A_start_that_fails_after_the_LMTP_listener_opened_logs_no_accept_failures()
    {
        var serve = MailmanProcess.Run(_instance.Home, ["serve"], env: new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = _sink.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mailman__Lmtp__Url"] = $"lmtp://127.0.0.1:{_port}",
            ["Mailman__Metrics__PrometheusUrl"] = $"http://127.0.0.1:{_port}/",
        });
        Assert.Equal(ExitCodes.Config, serve.ExitCode);
        var log = string.Concat(Directory.GetFiles(_instance.Paths.LogsDirectory, "mailman-*.log").Select(File.ReadAllText)) + serve.Stdout + serve.Stderr;
        Assert.DoesNotContain("LMTP accept failed", log, StringComparison.Ordinal);
    }

    [Fact]
    public void The_size_limit_is_announced_and_enforced_and_a_queue_that_cannot_be_written_is_a_451()
    {
        using var daemon = Serve(maxMessageSizeKb: 1);
        using var client = new LmtpClient(_port);
        Assert.Contains("250 SIZE 1024", client.Command("LHLO postfix.example.org"), StringComparison.Ordinal);
        Assert.StartsWith("552 5.3.4 ", client.Command("MAIL FROM:<poster@example.com> SIZE=5000"), StringComparison.Ordinal);
        Assert.StartsWith("552 5.3.4 ", client.Command("MAIL FROM:<poster@example.com> SIZE=99999999999999999999999"), StringComparison.Ordinal); // review 95: was 501
        Assert.StartsWith("501 5.5.4 ", client.Command("MAIL FROM:<poster@example.com> SIZE=12a"), StringComparison.Ordinal);
        Assert.StartsWith("250 ", client.Command("MAIL FROM:<poster@example.com> SIZE=0000000000000000001"), StringComparison.Ordinal); // leading zeros: 1 (review 96)
        client.Command("RSET");
        Assert.StartsWith("501 5.1.7 ", client.Command("MAIL FROM:<post\u0001er@example.com>"), StringComparison.Ordinal);

        // A client that does not declare the size is refused after DATA, per recipient, and nothing is kept.
        Assert.StartsWith("250 ", client.Command("MAIL FROM:<poster@example.com>"), StringComparison.Ordinal);
        Assert.StartsWith("250 ", client.Command($"RCPT TO:<{Owner}>"), StringComparison.Ordinal);
        var replies = new List<string>();
        client.Data(Post("big") + new string('x', 4000) + "\n", 1, replies);
        Assert.StartsWith("552 5.3.4 ", Assert.Single(replies), StringComparison.Ordinal);
        Assert.Empty(OwnerEntries());

        // The owner queue is not a directory now: 451 for that recipient, the session goes on.
        var owner = _instance.QueueDir("owner");
        Directory.Delete(owner, recursive: true);
        File.WriteAllText(owner, "not a directory");
        Assert.StartsWith("250 ", client.Command("MAIL FROM:<poster@example.com>"), StringComparison.Ordinal);
        Assert.StartsWith("250 ", client.Command($"RCPT TO:<{Owner}>"), StringComparison.Ordinal);
        replies.Clear();
        client.Data(Post("small"), 1, replies);
        Assert.StartsWith("451 4.3.0 ", Assert.Single(replies), StringComparison.Ordinal);
        Assert.StartsWith("250 ", client.Command("NOOP"), StringComparison.Ordinal);
    }

    [Fact]
    public void A_header_block_over_the_limits_is_a_552_and_nothing_is_kept()
    {
        using var daemon = Serve();
        using var client = new LmtpClient(_port);
        client.Command("LHLO postfix.example.org");
        Assert.StartsWith("250 ", client.Command("MAIL FROM:<poster@example.com>"), StringComparison.Ordinal);
        Assert.StartsWith("250 ", client.Command($"RCPT TO:<{Owner}>"), StringComparison.Ordinal);
        var replies = new List<string>();
        var fields = string.Concat(Enumerable.Range(0, Mailman.Queues.Intake.MaxHeaderFields).Select(i => $"X-F{i}: x\n"));
        client.Data(fields + Post("many"), 1, replies);
        Assert.Equal("552 5.3.4 Error: more than 20,000 header fields: not taken", Assert.Single(replies));
        Assert.Empty(OwnerEntries());
        Assert.StartsWith("250 ", client.Command("NOOP"), StringComparison.Ordinal);

        // The parts' header blocks too (an attached message of 100,000 fields).
        Assert.StartsWith("250 ", client.Command("MAIL FROM:<poster@example.com>"), StringComparison.Ordinal);
        Assert.StartsWith("250 ", client.Command($"RCPT TO:<{Owner}>"), StringComparison.Ordinal);
        replies.Clear();
        var nested = string.Concat(Enumerable.Range(0, Mailman.Queues.MimeShape.MaxFields).Select(i => $"X-F{i}: x\n"));
        client.Data($"From: a@example.com\nSubject: nested\nContent-Type: message/rfc822\n\n{nested}\nbody\n", 1, replies);
        Assert.Equal("552 5.3.4 Error: more than 100,000 header fields in the message and its parts: not taken", Assert.Single(replies));
        Assert.Empty(OwnerEntries());
    }

    // Review 78: a post larger than the memory spool on a full var/ dropped the connection with
    // no reply and no line above Debug, and held the spool file open until a collection.
    [Fact]
    public void A_spool_that_cannot_be_written_is_a_452_with_a_warning_and_the_session_goes_on()
    {
        var spools = Path.Combine(_instance.Paths.VarDirectory, "lmtp");
        Directory.CreateDirectory(spools);
        using var disk = Tmpfs.Mount(spools, "2m");
        using var daemon = Serve();
        using var client = new LmtpClient(_port);
        client.Command("LHLO postfix.example.org");
        client.Command("MAIL FROM:<poster@example.com>");
        Assert.StartsWith("250 ", client.Command($"RCPT TO:<{Owner}>"), StringComparison.Ordinal);
        var replies = new List<string>();
        var big = Post("big") + string.Concat(Enumerable.Repeat(new string('x', 76) + "\n", 40_000)); // 3 MB
        client.Data(big, 1, replies);
        Assert.StartsWith("452 4.3.1 ", Assert.Single(replies), StringComparison.Ordinal);
        Assert.Empty(OwnerEntries());
        string Log() => string.Concat(Directory.GetFiles(_instance.Paths.LogsDirectory, "mailman-*.log").Select(f =>
        {
            using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new StreamReader(stream).ReadToEnd();
        }));
        Wait.Until(() => Log().Contains("cannot be written", StringComparison.Ordinal), TimeSpan.FromSeconds(10), "the warning");
        Assert.Contains("var/ is full", Log(), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(spools)); // let go at once, not held open

        // The session goes on: a post that fits in memory is taken.
        client.Command("MAIL FROM:<poster@example.com>");
        client.Command($"RCPT TO:<{Owner}>");
        replies.Clear();
        client.Data(Post("small"), 1, replies);
        Assert.StartsWith("250 ", Assert.Single(replies), StringComparison.Ordinal);
    }

    [Fact]
    public void A_full_disk_is_a_452_for_that_recipient_and_the_post_is_taken_once_there_is_room()
    {
        using var disk = Tmpfs.Mount(_instance.QueueDir("owner"), "12m"); // intake keeps 8 MiB and twice the post free
        using var daemon = Serve();
        using var client = new LmtpClient(_port);
        client.Command("LHLO postfix.example.org");
        disk.Fill();
        client.Command("MAIL FROM:<poster@example.com>");
        Assert.StartsWith("250 ", client.Command($"RCPT TO:<{Owner}>"), StringComparison.Ordinal);
        var replies = new List<string>();
        client.Data(Post("full"), 1, replies);
        Assert.StartsWith("452 4.3.1 ", Assert.Single(replies), StringComparison.Ordinal);
        Assert.Empty(OwnerEntries());

        disk.Free();
        client.Command("MAIL FROM:<poster@example.com>");
        client.Command($"RCPT TO:<{Owner}>");
        replies.Clear();
        client.Data(Post("full"), 1, replies);
        Assert.StartsWith("250 ", Assert.Single(replies), StringComparison.Ordinal);
        Assert.Single(OwnerEntries());
    }

    [Fact]
    public void Postfix_delivers_over_its_lmtp_transport_with_what_aliases_lmtp_writes()
    {
        using var daemon = Serve();
        var aliases = AliasFiles.Write(_instance.Home, ["--lmtp"], new Dictionary<string, string> { ["Mailman__Lmtp__Url"] = $"lmtp://127.0.0.1:{_port}" });
        Assert.DoesNotContain("Mailman:Lmtp:Url is not set", aliases.Stdout, StringComparison.Ordinal);
        Assert.Contains($"{Owner}\tlmtp:inet:127.0.0.1:{_port}\n", File.ReadAllText(aliases.Transport), StringComparison.Ordinal);
        Assert.Contains("relay_domains", aliases.Stdout, StringComparison.Ordinal);
        Assert.Contains("mydestination", aliases.Stdout, StringComparison.Ordinal);
        using var postfix = aliases.StartPostfix(_sink.Port);

        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("poster@example.com"));
        message.To.Add(MailboxAddress.Parse(Owner));
        message.Subject = "via lmtp";
        message.MessageId = "lmtp-postfix@example.com";
        message.Body = new TextPart("plain") { Text = "Hello over LMTP\n" };
        postfix.Submit(message);

        Wait.Until(() => postfix.Log().Contains("status=sent", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "Postfix to deliver over LMTP; log: " + postfix.Log());
        Assert.Contains($"relay=127.0.0.1[127.0.0.1]:{_port}", postfix.Log(), StringComparison.Ordinal);
        var entry = OwnerEntryText();
        Assert.Contains("\"Sender\":\"poster@example.com\"", entry, StringComparison.Ordinal);
        Assert.Contains("Message-Id: <lmtp-postfix@example.com>", entry, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Smtp_source_in_LMTP_mode_with_8_sessions_gets_every_post_durably_queued()
    {
        const int posts = 2000;
        using var daemon = Serve();
        var psi = new ProcessStartInfo("/usr/sbin/smtp-source") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-L", "-s", "8", "-m", posts.ToString(System.Globalization.CultureInfo.InvariantCulture), "-l", "2000", "-f", "poster@example.com", "-t", Owner, $"127.0.0.1:{_port}" })
        {
            psi.ArgumentList.Add(a);
        }

        using var source = Process.Start(psi)!;
        var stderr = source.StandardError.ReadToEndAsync();
        await source.StandardOutput.ReadToEndAsync();
        await source.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        Assert.True(source.ExitCode == 0, "smtp-source: " + await stderr);
        Wait.Until(() => OwnerEntries().Length >= posts, TimeSpan.FromSeconds(120), "every post on disk");

        // Counted once the daemon has stopped: meanwhile an entry the owner runner holds is in
        // neither listing (ci, 2026-12-06: 1999 read just after 2000).
        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromMinutes(2)), "the daemon did not stop");
        Assert.Equal(posts, OwnerEntries().Length);
    }

    [Fact]
    public async Task A_daemon_killed_mid_stream_answered_250_only_for_posts_on_disk()
    {
        var daemon = Serve();
        var accepted = new System.Collections.Concurrent.ConcurrentBag<string>();
        var sessions = Enumerable.Range(0, 8).Select(s => Task.Run(() =>
        {
            try
            {
                using var client = new LmtpClient(_port);
                client.Command("LHLO load.example.org");
                for (var i = 0; ; i++)
                {
                    client.Command("MAIL FROM:<poster@example.com>");
                    client.Command($"RCPT TO:<{Owner}>");
                    var replies = new List<string>();
                    client.Data(Post($"kill-{s}-{i}"), 1, replies);
                    foreach (var reply in replies.Where(r => r.StartsWith("250 ", StringComparison.Ordinal)))
                    {
                        accepted.Add(reply[(reply.LastIndexOf(' ') + 1)..]);
                    }
                }
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
            {
                // The daemon is gone: this session ends with what it was told.
            }
        })).ToArray();

        Wait.Until(() => accepted.Count >= 300, TimeSpan.FromSeconds(120), "300 posts accepted");
        daemon.Kill();
        await Task.WhenAll(sessions).WaitAsync(TimeSpan.FromSeconds(60));
        daemon.Dispose();

        var onDisk = OwnerEntries().Select(f => Path.GetFileNameWithoutExtension(f)).ToHashSet(StringComparer.Ordinal);
        var missing = accepted.Where(name => !onDisk.Contains(name) && !onDisk.Contains(Path.GetFileNameWithoutExtension(name))).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} of {accepted.Count} posts answered 250 are not on disk: {string.Join(", ", missing.Take(5))}");
        Assert.True(onDisk.Count >= accepted.Count);
    }
}
