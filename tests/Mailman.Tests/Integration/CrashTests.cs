// Nothing lost, nothing sent twice beyond the documented bound: the real daemon, a real disk,
// a real SIGKILL at several points of a delivery, then a restart. MAILMAN_CRASH_LONG=1 runs
// more kill points on a larger list.
using System.Globalization;
using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class CrashTests : IDisposable
{
    private const string EndMarker = "--END-OF-COPY--";
    private const int Connections = 2;
    private const int CheckpointRecipients = 20;
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    public static TheoryData<string, double> KillPoints()
    {
        var data = new TheoryData<string, double> { { "pipeline", 0 }, { "early", 0.02 }, { "mid", 0.5 }, { "late", 0.95 } };
        if (Environment.GetEnvironmentVariable("MAILMAN_CRASH_LONG") == "1")
        {
            foreach (var f in new[] { 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.99 })
            {
                data.Add("long", f);
            }
        }

        return data;
    }

    private static int Members => Environment.GetEnvironmentVariable("MAILMAN_CRASH_LONG") == "1" ? 8000 : 2000;

    private Dictionary<string, string> Env(SmtpSink sink) => new()
    {
        ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
        ["Mailman__Smtp__Connections"] = Connections.ToString(CultureInfo.InvariantCulture),
        ["Mailman__Smtp__CheckpointRecipients"] = CheckpointRecipients.ToString(CultureInfo.InvariantCulture),
        ["Mailman__Queues__PollInterval"] = "00:00:00.050",
    };

    private void CreateList()
    {
        _instance.CreateList("dev@example.org", l =>
        {
            l.NonMemberAction = NonMemberAction.Accept;
            l.FooterTemplate = "to $user_address\n" + EndMarker;
        });
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(Members));
    }

    [Theory]
    [MemberData(nameof(KillPoints))]
    public void SIGKILL_during_delivery_then_restart_delivers_to_everyone_within_the_duplicate_bound(string point, double fraction)
    {
        CreateList();
        using var sink = SmtpSink.Start();
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain()).ExitCode);

        using (var daemon = DaemonProcess.Start(_instance.Home, Env(sink)))
        {
            if (point == "pipeline")
            {
                // As soon as the post has left `in`: the pipeline hop or the first copies.
                Wait.Until(() => _instance.Count("in") == 0 || daemon.HasExited, TimeSpan.FromSeconds(60), "the post to leave in");
            }
            else
            {
                var target = (int)(Members * fraction);
                Wait.Until(() => sink.Messages().Count >= target || daemon.HasExited, TimeSpan.FromSeconds(120), $"{target} copies at the sink");
            }

            Assert.False(daemon.HasExited, "the daemon exited before the kill point: " + daemon.Output);
            daemon.Kill();
        }

        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, Env(sink));

        var copies = Complete(sink);
        var perMember = copies.GroupBy(r => r).ToDictionary(g => g.Key, g => g.Count());
        var missing = TempInstance.NumberedMembers(Members).Select(m => m.Address).Where(a => !perMember.ContainsKey(a)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} members got no copy, e.g. {string.Join(", ", missing.Take(5))}");
        var duplicates = copies.Count - Members;
        Assert.InRange(duplicates, 0, Connections * CheckpointRecipients);
        AssertQueuesEmpty();
    }

    [Fact]
    public void SIGTERM_stops_in_time_keeps_the_rest_queued_and_a_restart_sends_no_duplicates()
    {
        const int members = 8000;
        _instance.CreateList("dev@example.org", l =>
        {
            l.NonMemberAction = NonMemberAction.Accept;
            l.FooterTemplate = "to $user_address\n" + EndMarker;
        });
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(members));
        using var sink = SmtpSink.Start();
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain()).ExitCode);

        using (var daemon = DaemonProcess.Start(_instance.Home, Env(sink)))
        {
            Wait.Until(() => sink.Messages().Count >= 1000 || daemon.HasExited, TimeSpan.FromSeconds(120), "1000 copies at the sink");
            daemon.Terminate();
            Assert.True(daemon.WaitForExit(Mailman.Hosting.DaemonHost.ShutdownTimeout), "serve did not stop within the shutdown timeout");
            Assert.Equal(0, daemon.ExitCode);
        }

        var sentBeforeStop = Complete(sink).Count;
        Assert.InRange(sentBeforeStop, 1000, members - 1);
        Assert.Equal(1, _instance.Count("out"));
        Assert.Equal(0, _instance.Count("out", ".bak"));

        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, Env(sink));
        var copies = Complete(sink);
        Assert.Equal(members, copies.Count);
        Assert.Equal(members, copies.Distinct().Count());
        AssertQueuesEmpty();
    }

    [Fact]
    public void SIGKILL_during_inject_leaves_either_nothing_or_a_whole_entry()
    {
        _instance.CreateList("dev@example.org");
        var psi = MailmanProcess.StartInfo(_instance.Home, ["inject", "dev@example.org"]);
        using var inject = System.Diagnostics.Process.Start(psi)!;
        var half = Posts.Plain(body: new string('x', 200_000));
        inject.StandardInput.BaseStream.Write(half.AsSpan(0, half.Length / 2));
        inject.StandardInput.BaseStream.Flush();
        inject.Kill();
        inject.WaitForExit();

        Assert.NotEqual(0, inject.ExitCode);
        Assert.Equal(0, _instance.Count("in"));
        Assert.Equal(0, _instance.Count("in", ".tmp"));
    }

    private static List<string> Complete(SmtpSink sink)
        => sink.Messages().Where(m => m.Body.Contains(EndMarker, StringComparison.Ordinal)).Select(m => Assert.Single(m.Recipients)).ToList();

    private void AssertQueuesEmpty()
    {
        foreach (var queue in new[] { "in", "pipeline", "out", "retry", "shunt", "bad", "hold" })
        {
            foreach (var ext in new[] { ".msg", ".bak", ".tmp", ".ckpt" })
            {
                Assert.True(_instance.Count(queue, ext) == 0, $"{queue} still has {ext} files");
            }
        }
    }
}
