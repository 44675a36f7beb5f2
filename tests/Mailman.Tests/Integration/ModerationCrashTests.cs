// Crash safety of moderation, in the crash tests' style: a real disk, real processes, a real
// SIGKILL. Killing `held approve` in the middle of a batch, under a running daemon, loses no post
// and delivers none twice; killing the daemon while it forwards owner mail loses nothing, and
// sends nothing twice beyond the SMTP transactions in flight at the kill (the delivery bound).
using System.Diagnostics;
using System.Globalization;
using System.IO.Abstractions;
using System.Text;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class ModerationCrashTests : IDisposable
{
    private const string List = "dev@example.org";
    private const int Connections = 2;
    private static readonly string[] People = ["p1@example.com", "p2@example.com", "p3@example.com"];
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    private static Dictionary<string, string> Env(SmtpSink sink) => new()
    {
        ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
        ["Mailman__Smtp__Connections"] = Connections.ToString(CultureInfo.InvariantCulture),
        ["Mailman__Smtp__CheckpointRecipients"] = "1",
        ["Mailman__Queues__PollInterval"] = "00:00:00.050",
    };

    private Switchboard Queue(string name) => new(new FileSystem(), _instance.QueueDir(name), name, TimeProvider.System);

    private static string MessageId(int i) => $"m{i:D4}@example.net";

    // (Message-Id, recipient) of every complete copy at the sink.
    private static List<(string MessageId, string Recipient)> Delivered(SmtpSink sink)
        => sink.Messages().Where(m => m.Body.Contains("--END--", StringComparison.Ordinal))
            .Select(m => (m.Header("Message-Id")!.Trim('<', '>'), Assert.Single(m.Recipients))).ToList();

    private void AssertNothingLeft()
    {
        foreach (var queue in QueueSet.Names)
        {
            foreach (var ext in new[] { ".msg", ".bak", ".tmp", ".ckpt" })
            {
                Assert.True(_instance.Count(queue, ext) == 0, $"{queue} still has {ext} files");
            }
        }
    }

    [Fact]
    public async Task SIGKILL_of_held_approve_in_mid_batch_under_a_running_daemon_loses_nothing_and_delivers_nothing_twice()
    {
        const int posts = 300;
        _instance.CreateList(List, l =>
        {
            l.RespondToPostRequests = false;
            l.AdminImmedNotify = false;
        });
        _instance.AddMembers(List, People.Select(p => new Member(p, "")));
        using var sink = SmtpSink.Start();

        var input = Queue(QueueSet.In);
        for (var i = 0; i < posts; i++)
        {
            input.Enqueue(new EntryMetadata { List = List, Sender = $"s{i}@example.net", Received = DateTimeOffset.UtcNow },
                Encoding.ASCII.GetBytes($"From: s{i}@example.net\nTo: {List}\nSubject: post {i}\nMessage-Id: <{MessageId(i)}>\n\nbody {i}\n--END--\n"));
        }

        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, Env(sink));
        var held = Queue(QueueSet.Hold).Pending();
        Assert.Equal(posts, held.Count);
        Assert.Empty(sink.Messages());

        // The daemon is started as the verb runs: its start-up recovery must leave the verb's claims alone.
        using (var daemon = DaemonProcess.Start(_instance.Home, Env(sink)))
        {
            var psi = MailmanProcess.StartInfo(_instance.Home, ["held", "approve", .. held]);
            using (var approve = Process.Start(psi)!)
            {
                approve.StandardInput.Close();
                _ = approve.StandardOutput.ReadToEndAsync();
                var stderr = approve.StandardError.ReadToEndAsync();
                var hold = Queue(QueueSet.Hold);
                Wait.Until(() => hold.Pending().Count <= posts * 2 / 3 || approve.HasExited, TimeSpan.FromSeconds(120), "a third of the batch approved");
                if (approve.HasExited)
                {
                    Assert.Fail($"held approve finished before the kill point ({hold.Pending().Count} held): exit {approve.ExitCode} {await stderr}");
                }

                approve.Kill();
                approve.WaitForExit();
            }

            // The daemon delivers what was approved; then it is stopped as systemd would.
            Wait.Until(() => _instance.Count(QueueSet.In) + _instance.Count(QueueSet.Pipeline) + _instance.Count(QueueSet.Out) == 0 || daemon.HasExited,
                TimeSpan.FromSeconds(120), "the approved posts to be delivered");
            Assert.False(daemon.HasExited, daemon.Output);
            daemon.Terminate();
            Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(90)));
        }

        // A restart recovers what the killed verb left claimed; the moderator approves the rest.
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, Env(sink));
        var rest = Queue(QueueSet.Hold).Pending();
        Assert.InRange(rest.Count, 1, posts - 1);
        var again = MailmanProcess.Run(_instance.Home, ["held", "approve", .. rest]);
        Assert.True(again.ExitCode == 0, again.Stderr);
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, Env(sink));

        var copies = Delivered(sink);
        var expected = Enumerable.Range(0, posts).SelectMany(i => People.Select(p => (MessageId(i), p))).ToHashSet();
        var missing = expected.Except(copies).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} copies never delivered, e.g. {string.Join(", ", missing.Take(3))}");
        Assert.Equal(copies.Count, copies.Distinct().Count());
        AssertNothingLeft();
    }

    public static TheoryData<string> OwnerKillPoints() => ["forwarding", "delivering"];

    [Theory]
    [MemberData(nameof(OwnerKillPoints))]
    public void SIGKILL_while_owner_mail_is_forwarded_loses_nothing_and_repeats_at_most_the_transactions_in_flight(string point)
    {
        const int mails = 200;
        _instance.CreateList(List);
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.AddRole(ListName.Parse(List), ListRole.Owner, People.Select(p => new Member(p, "")));
        }

        using var sink = SmtpSink.Start();
        var owner = Queue(QueueSet.Owner);
        for (var i = 0; i < mails; i++)
        {
            owner.Enqueue(new EntryMetadata { List = List, Sender = $"a{i}@example.net", Received = DateTimeOffset.UtcNow, Destination = "dev-owner@example.org" },
                Encoding.ASCII.GetBytes($"From: a{i}@example.net\nTo: dev-owner@example.org\nSubject: question {i}\nMessage-Id: <{MessageId(i)}>\n\nquestion {i}\n--END--\n"));
        }

        using (var daemon = DaemonProcess.Start(_instance.Home, Env(sink)))
        {
            if (point == "forwarding")
            {
                Wait.Until(() => owner.Pending().Count <= mails / 2 || daemon.HasExited, TimeSpan.FromSeconds(120), "half the owner mail forwarded");
            }
            else
            {
                Wait.Until(() => sink.Messages().Count >= mails * People.Length / 2 || daemon.HasExited, TimeSpan.FromSeconds(120), "half the copies at the sink");
            }

            Assert.False(daemon.HasExited, "the daemon exited before the kill point: " + daemon.Output);
            daemon.Kill();
        }

        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, Env(sink));

        var copies = Delivered(sink);
        var expected = Enumerable.Range(0, mails).SelectMany(i => People.Select(p => (MessageId(i), p))).ToHashSet();
        var missing = expected.Except(copies).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} copies never delivered, e.g. {string.Join(", ", missing.Take(3))}");
        Assert.All(sink.Messages(), m => Assert.StartsWith("dev-bounces+", m.MailFrom, StringComparison.Ordinal));
        Assert.InRange(copies.Count - expected.Count, 0, Connections);
        AssertNothingLeft();
    }
}
