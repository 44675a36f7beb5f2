// A bounce batch killed between its database transaction and the finishes of its entries: the
// real daemon, a real disk, a real SIGKILL (strace) at the first delete of a claimed bounce entry.
// The restart replays the batch: no score counts twice, no notice (or probe) is queued twice.
using System.Globalization;
using Mailman.Lists;
using Mailman.Delivery;
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class BounceCrashTests : IDisposable
{
    private const string List = "dev@example.org";
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SIGKILL_after_the_scores_are_committed_and_before_the_entries_are_finished_replays_harmlessly(bool probes)
    {
        Assert.True(Strace.IsInstalled, "strace is missing: apt-get install strace (see .ci/run)");
        _instance.CreateList(List, l =>
        {
            l.BounceScoreThreshold = 1;
            l.VerpProbes = probes;
        });
        _instance.AddMembers(List, TempInstance.NumberedMembers(3));
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.AddRole(ListName.Parse(List), ListRole.Owner, [new Member("owner@example.net", "")]);
        }

        var entries = TempInstance.NumberedMembers(3).Select(m =>
        {
            var verp = Verp.Encode(ListName.Parse(List), m.Address);
            var result = MailmanProcess.Run(_instance.Home, ["inject", verp, "--sender", "MAILER-DAEMON"], BounceMessages.Dsn([BounceMessages.Recipient(m.Address)]));
            Assert.True(result.ExitCode == 0, result.Stderr);
            return result.Stderr.Split(' ')[2];
        }).ToList();
        Assert.Equal(3, _instance.Count("bounces"));

        using var sink = SmtpSink.Start();
        var env = new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Queues__PollInterval"] = "00:00:00.050",
        };

        // The first finish of the batch: its scores are committed and its notices (or probes) queued.
        var claimed = Path.Combine(_instance.QueueDir("bounces"), entries[0] + ".bak");
        var killed = Strace.Run(_instance.Home, ["serve", "--exit-when-idle"], "unlink,unlinkat", "signal=KILL", 1, env, claimed);
        Assert.True(killed.ExitCode == 137, $"exit {killed.ExitCode}: {killed.Stderr}");
        Assert.True(File.Exists(claimed), "the batch's first entry is still claimed");
        var afterKill = Scores();
        Assert.Equal([1.0, 1.0, 1.0], afterKill.Select(m => m.BounceScore));
        Assert.All(afterKill, m => Assert.Equal(probes, m.DeliveryEnabled));
        Assert.All(afterKill, m => Assert.Equal(probes, m.ProbeSent is not null));

        var again = MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: env);
        Assert.True(again.ExitCode == 0, again.Stderr + again.Stdout);
        Assert.Equal(0, _instance.Count("bounces") + _instance.Count("bounces", ".bak") + _instance.Count("unrecognized") + _instance.Count("shunt") + _instance.Count("bad"));
        var final = Scores();
        Assert.Equal(afterKill.Select(m => (m.BounceScore, m.DeliveryEnabled, m.WarningsSent, m.LastBounce, m.ProbeSent)),
            final.Select(m => (m.BounceScore, m.DeliveryEnabled, m.WarningsSent, m.LastBounce, m.ProbeSent)));
        var log = File.ReadAllText(Directory.GetFiles(_instance.Paths.LogsDirectory, "bounce-*.log").Single());
        Assert.Contains(probes ? "scored today already" : "delivery already disabled (residual bounce)", log, StringComparison.Ordinal);

        // Each notice was queued once: one Message-Id each (a copy resent after the kill would
        // repeat its Message-Id; a notice queued twice would not). With probes: one probe each,
        // from its own one-time address, and no disable notices.
        var messages = sink.WaitFor(probes ? 3 : 6, TimeSpan.FromSeconds(60));
        var notices = messages.GroupBy(m => m.Header("X-Mailman-Notice") ?? "none").ToDictionary(g => g.Key, g => g.Select(m => m.Header("Message-Id")).Distinct().Count());
        if (probes)
        {
            Assert.Equal(3, Assert.Single(notices, n => n.Key == "list:user:notice:probe").Value);
            Assert.Equal(3, messages.Select(m => m.MailFrom).Distinct().Count(f => f.StartsWith("dev-bounces+probe-", StringComparison.Ordinal)));
            return;
        }

        Assert.Equal(2, notices.Count);
        Assert.Equal(3, notices["list:user:notice:warning"]);
        Assert.Equal(3, notices["list:admin:notice:disable"]);
    }

    private List<MemberRecord> Scores()
    {
        using var store = new ListStore(_instance.Paths.Database);
        var result = store.MemberRecords(ListName.Parse(List)).ToList();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        return result;
    }
}
