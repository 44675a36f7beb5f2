// The sender checks through the real daemon: one database connection per post, bounded work and
// log for a From: of 100,000 addresses, a member's address beside your own does not get you in,
// and auto-replies are not distributed.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class SenderCheckTests : IDisposable
{
    private const string List = "dev@example.org";
    private static readonly string[] Queues = ["in", "out", "retry", "hold", "bad", "shunt"];
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    private void MembersOnlyList(Action<MailingList>? configure = null)
    {
        _instance.CreateList(List, l =>
        {
            l.NonMemberAction = NonMemberAction.Hold;
            configure?.Invoke(l);
        });
        _instance.AddMembers(List, [new Member("ann@example.com", "Ann"), new Member("bob@example.com", "Bob")]);
    }

    private void Inject(byte[] post, string? sender = null)
    {
        string[] args = sender is null ? ["inject", List] : ["inject", List, "--sender", sender];
        var result = MailmanProcess.Run(_instance.Home, args, post);
        Assert.True(result.ExitCode == 0, result.Stderr);
    }

    private static byte[] Post(string headers, string messageId, string body = "Hello\n")
        => Encoding.UTF8.GetBytes($"{headers}To: {List}\nSubject: test\nMessage-Id: <{messageId}>\n\n{body}");

    // Copies of the post itself (notices carry their own Message-Id).
    private static List<SinkMessage> CopiesOf(SmtpSink sink, string messageId)
        => sink.Messages().Where(m => m.Header("Message-Id") == $"<{messageId}>").ToList();

    [Fact]
    public void The_checks_open_one_database_connection_per_post_however_many_addresses_From_holds()
    {
        MembersOnlyList();
        using var sink = SmtpSink.Start();
        var port = Net.FreePort();
        using var daemon = DaemonProcess.Start(_instance.Home, new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Metrics__PrometheusUrl"] = $"http://127.0.0.1:{port}/",
            ["Mailman__Queues__PollInterval"] = "00:00:00.050",
        });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        long Opened()
        {
            var text = http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics")).GetAwaiter().GetResult();
            var match = Regex.Match(text, @"^mailman_db_connections_opened_total(?:\{[^}]*\})? (\d+)", RegexOptions.Multiline);
            return match.Success ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : -1;
        }

        long before = -1;
        Wait.Until(() =>
        {
            try
            {
                return (before = Opened()) >= 0 || daemon.HasExited;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return daemon.HasExited;
            }
        }, TimeSpan.FromSeconds(60), "the metrics endpoint");
        Assert.False(daemon.HasExited, daemon.Output);

        string State() => string.Join(", ", Queues.Select(q => $"{q}={_instance.Count(q)}"))
            + "; logs: " + new string(string.Join("\n", Directory.GetFiles(_instance.Paths.LogsDirectory).Select(File.ReadAllText)).TakeLast(4000).ToArray());

        // 300 authors, none of them members.
        var from = string.Join(", ", Enumerable.Range(0, 300).Select(i => $"a{i}@example.net"));
        Inject(Post($"From: {from}\n", "many@example.net"), sender: "a0@example.net");
        Wait.Until(() => _instance.Count("hold") == 1 || daemon.HasExited, TimeSpan.FromSeconds(60), "the post to be held", State);
        Assert.False(daemon.HasExited, daemon.Output);
        Wait.Until(() => (_instance.Count("out") == 0 && _instance.Count("in") == 0) || daemon.HasExited, TimeSpan.FromSeconds(60), "the notices to be sent", State);
        Assert.False(daemon.HasExited, daemon.Output);
        // The endpoint may answer from its scrape cache for a moment: wait for the count to move.
        long opened = 0;
        Wait.Until(() => (opened = Opened() - before) >= 1, TimeSpan.FromSeconds(30), "the post's connections in the metric", State);
        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(60)));

        // The chain's one store, and one per notice the notice sender checks limits for; on a
        // loaded machine a start-up sweep (bounces, held-post expiry) may land in the window too
        // (ci73: 5). A connection per address would be 300.
        Assert.InRange(opened, 1, 10);
    }

    [Fact]
    public void A_From_of_100000_addresses_is_held_quickly_with_a_short_log()
    {
        MembersOnlyList();
        using var sink = SmtpSink.Start();
        var from = string.Join(", ", Enumerable.Range(0, 100_000).Select(i => $"someone{i}@example.net"));
        Inject(Post($"From: {from}\n", "huge-from@example.net"), sender: "someone0@example.net");

        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        Assert.Equal(1, _instance.Count("hold"));
        Assert.Empty(CopiesOf(sink, "huge-from@example.net"));
        var logBytes = Directory.GetFiles(_instance.Paths.LogsDirectory).Sum(f => new FileInfo(f).Length);
        Assert.True(logBytes < 64 * 1024, $"the logs hold {logBytes} bytes");
    }

    [Theory]
    [InlineData("From: Mallory <mallory@evil.example>, Ann <ann@example.com>\nSender: mallory@evil.example\n")]
    [InlineData("From: Ann <ann@example.com>, Mallory <mallory@evil.example>\nSender: mallory@evil.example\n")]
    [InlineData("From: mallory@evil.example\nReply-To: ann@example.com\n")]
    [InlineData("From: mallory@evil.example\nSender: ann@example.com\n")]
    public void A_members_address_beside_your_own_does_not_get_a_post_in(string senders)
    {
        MembersOnlyList();
        using var sink = SmtpSink.Start();
        Inject(Post(senders, "mallory@evil.example"), sender: "ann@example.com");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        Assert.Empty(CopiesOf(sink, "mallory@evil.example"));
        Assert.Equal(1, _instance.Count("hold"));
    }

    [Theory]
    [InlineData("Auto-Submitted: auto-replied\n")]
    [InlineData("Precedence: bulk\n")]
    [InlineData("Precedence: junk\n")]
    public void An_auto_reply_from_a_member_is_not_distributed_by_default_and_is_held_when_the_list_says_so(string header)
    {
        MembersOnlyList();
        using var sink = SmtpSink.Start();
        Inject(Post("From: Ann <ann@example.com>\n" + header, "vacation@example.com", "I am out of the office.\n"), sender: "ann@example.com");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);
        Assert.Empty(CopiesOf(sink, "vacation@example.com"));
        Assert.Equal(0, _instance.Count("hold"));

        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["lists", "set", List, "auto_reply_action", "hold"]).ExitCode);
        Inject(Post("From: Ann <ann@example.com>\n" + header, "vacation2@example.com", "I am out of the office.\n"), sender: "ann@example.com");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);
        Assert.Empty(CopiesOf(sink, "vacation2@example.com"));
        Assert.Equal(1, _instance.Count("hold"));

        // A member's ordinary post still goes to everyone.
        Inject(Post("From: Ann <ann@example.com>\n", "ordinary@example.com"), sender: "ann@example.com");
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);
        Assert.Equal(2, CopiesOf(sink, "ordinary@example.com").Count);
    }
}
