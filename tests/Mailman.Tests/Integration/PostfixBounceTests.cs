// Bounce processing end to end through a real Postfix: a member whose domain Postfix cannot
// deliver to (its transport is a server that refuses every RCPT with 550 5.1.1, user unknown)
// gets copies;
// Postfix's own DSNs come back through the mailman pipe to the VERP address; at the threshold
// the member gets a probe from a one-time address (verp_probes, the default), Postfix bounces it
// too, and that bounce disables; the notices go out, the next post skips the member. A member whose
// server cannot be reached (a closed port) gets Postfix's delay DSN (delay_warning_time 1s),
// which changes nothing. (An error: or retry: transport would not do: Postfix's smtpd refuses
// such recipients at RCPT time, which is the outgoing runner's refusal path, not a DSN.)
using System.Globalization;
using Mailman.Lists;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Integration;

public sealed class PostfixBounceTests : IDisposable
{
    private const string List = "dev@lists.example.org";
    private const string Dead = "dead@dead.example.com";
    private const string Slow = "slow@slow.example.com";
    private const string Owner = "owner@example.com";
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void Postfixs_DSNs_disable_a_dead_member_through_the_pipe_and_a_delay_DSN_changes_nothing()
    {
        Assert.True(PostfixInstance.IsInstalled, "Postfix is missing (see README)");
        _instance.CreateList(List, l =>
        {
            l.NonMemberAction = NonMemberAction.Accept;
            l.BounceScoreThreshold = 2;
        });
        _instance.AddMembers(List, [new Member("anne@example.com", "Anne"), new Member("bob@example.com", "Bob"), new Member(Dead, "Dead"), new Member(Slow, "Slow")]);
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.AddRole(ListName.Parse(List), ListRole.Owner, [new Member(Owner, "Owner")]);
        }

        using var sink = SmtpSink.Start();
        using var refusing = ScriptedSmtpServer.Start(rcpt: a => ScriptedSmtpServer.Reply(550, $"5.1.1 <{a}>: Recipient address rejected: User unknown"));
        var closedPort = Net.FreePort();
        var aliases = AliasFiles.Write(_instance.Home);
        File.AppendAllText(aliases.Transport, $"dead.example.com\tsmtp:[127.0.0.1]:{refusing.Port}\nslow.example.com\tsmtp:[127.0.0.1]:{closedPort}\n");
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        AliasFiles.HandToNobody(_instance.Home);
        using var postfix = aliases.StartPostfix(sink.Port, mainCf: aliases.MainCf + "delay_warning_time = 1s\n");

        // Post 1: the dead member's copy bounces; Postfix's DSN comes back to its VERP address.
        Post(postfix, 1);
        Serve(postfix);
        WaitPiped(postfix, Dead, 1);
        Serve(postfix);
        Assert.Equal(("enabled", "1"), Show(Dead));
        Assert.Single(BounceLog(), l => l.Contains($"Bounce: {Dead} of {List}, permanent (DSN), score 1: scored", StringComparison.Ordinal));

        // Post 2, the same day: its bounce does not count again.
        Post(postfix, 2);
        Serve(postfix);
        WaitPiped(postfix, Dead, 2);
        Serve(postfix);
        Assert.Equal(("enabled", "1"), Show(Dead));
        Assert.Contains(BounceLog(), l => l.Contains($"{Dead} of {List}, permanent (DSN), score 1: scored today already", StringComparison.Ordinal));

        // A day passes (the last bounce is moved back a day); post 3's bounce reaches the
        // threshold: a mailed report (anyone can write one) sends a probe and does not disable.
        Backdate(Dead);
        Post(postfix, 3);
        Serve(postfix);
        WaitPiped(postfix, Dead, 3);
        Serve(postfix);
        Assert.Contains(BounceLog(), l => l.Contains($"{Dead} of {List}, permanent (DSN), score 2: threshold reached: probing", StringComparison.Ordinal));

        // The probe went to Postfix from its one-time address, bounced, and Postfix's DSN came
        // back to that address through the pipe (the serve that queued the probe may have taken
        // it already): that bounce, not the report, disables.
        Wait.Until(() => Count(postfix, "to=<dev-bounces+probe-", "relay=mailman", "status=sent") == 1, TimeSpan.FromSeconds(90),
            $"the probe's DSN piped into inject; log: {postfix.Log()}");
        Serve(postfix);
        Assert.Equal(("disabled", "2"), Show(Dead));
        Assert.Contains(BounceLog(), l => l.Contains($"{Dead} of {List}, permanent (DSN), score 2: its probe bounced: delivery disabled", StringComparison.Ordinal));
        Assert.Single(BounceLog(), l => l.Contains($"{Dead} of {List}", StringComparison.Ordinal) && l.Contains(": delivery disabled", StringComparison.Ordinal));

        // The owner's notice arrives; the member's warning went to Postfix too, bounced, and its
        // DSN is a residual bounce: no notice about a notice.
        var ownerNotice = Wait.For(() => sink.Messages().FirstOrDefault(m => m.Recipients.Contains(Owner)), TimeSpan.FromSeconds(60), "the owner's notice");
        Assert.Equal("list:admin:notice:disable", ownerNotice.Header("X-Mailman-Notice"));
        Assert.Equal("auto-generated", ownerNotice.Header("Auto-Submitted"));
        Assert.Matches("^dev-bounces\\+owner=example.com@lists.example.org$", ownerNotice.MailFrom);
        Wait.Until(() => Count(postfix, $"to=<{Dead}>", "status=bounced") == 5, TimeSpan.FromSeconds(60), "the warning to bounce in Postfix");
        WaitPiped(postfix, Dead, 4);
        Serve(postfix);
        Assert.Contains(BounceLog(), l => l.Contains($"{Dead} of {List}", StringComparison.Ordinal) && l.Contains("delivery already disabled (residual bounce)", StringComparison.Ordinal));
        Assert.Equal(1, sink.Messages().Count(m => m.Recipients.Contains(Owner)));

        // Post 4 is not sent to the disabled member.
        Post(postfix, 4);
        var serve = Serve(postfix);
        Assert.Contains("delivered: 3 recipients", serve.Stderr + serve.Stdout, StringComparison.Ordinal);
        Wait.Until(() => sink.Messages().Count(m => m.Header("Message-Id") == "<post-4@example.com>") == 2, TimeSpan.FromSeconds(60), "post 4 at the sink for anne and bob");
        Assert.Equal(5, Count(postfix, $"to=<{Dead}>", "status=bounced"));

        // The slow member: deferred at every attempt, and Postfix's delay warning (Action:
        // delayed, Status 4.4.1) came back through the pipe to its VERP address. Not scored.
        WaitPiped(postfix, Slow, 1);
        Serve(postfix);
        Assert.Contains(BounceLog(), l => l.Contains($"Bounce: {Slow} of {List}, temporary (DSN), score 0: temporary: not scored", StringComparison.Ordinal));
        Assert.Equal(("enabled", "0"), Show(Slow));
        Assert.Equal(("enabled", "0"), Show("anne@example.com"));
        Assert.Contains($"to=<{Slow}>", postfix.Log(), StringComparison.Ordinal);
        Assert.Contains("dsn=4.4.1, status=deferred", postfix.Log(), StringComparison.Ordinal);
    }

    // RFC 6531: a member whose local part is UTF-8 gets a UTF-8 VERP sender (the copy needs
    // SMTPUTF8 anyway, and Postfix offers it); the member's server refuses it, and Postfix's DSN
    // to that sender comes back through the pipe naming the member.
    [Fact]
    public void A_member_with_a_UTF_8_local_part_is_named_by_the_DSN_to_its_VERP_sender()
    {
        const string Jorg = "jörg@dead.example.com";
        Assert.True(PostfixInstance.IsInstalled, "Postfix is missing (see README)");
        _instance.CreateList(List, l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers(List, [new Member("anne@example.com", "Anne"), new Member(Jorg, "Jörg")]);
        using var sink = SmtpSink.Start();
        using var refusing = ScriptedSmtpServer.Start(rcpt: a => ScriptedSmtpServer.Reply(550, $"5.1.1 <{a}>: Recipient address rejected: User unknown"));
        var aliases = AliasFiles.Write(_instance.Home);
        File.AppendAllText(aliases.Transport, $"dead.example.com\tsmtp:[127.0.0.1]:{refusing.Port}\n");
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        AliasFiles.HandToNobody(_instance.Home);
        using var postfix = aliases.StartPostfix(sink.Port);

        Post(postfix, 1);
        Serve(postfix);
        Assert.Contains($"from=<dev-bounces+jörg=dead.example.com@lists.example.org>", postfix.Log(), StringComparison.Ordinal);
        WaitPiped(postfix, Jorg, 1);
        Serve(postfix);
        Assert.Contains(BounceLog(), l => l.Contains($"Bounce: {Jorg} of {List}, permanent (DSN)", StringComparison.Ordinal));
    }

    private ProcessResult Serve(PostfixInstance postfix) => MailmanProcess.ServeUntilIdle(_instance.Home, postfix.Port, runAs: "nobody");

    // Postfix's pipe delivered a DSN to the member's VERP address (`inject` exited 0) this many times.
    private static void WaitPiped(PostfixInstance postfix, string member, int count)
    {
        var verp = "dev-bounces+" + member.Replace("@", "=", StringComparison.Ordinal) + "@lists.example.org";
        Wait.Until(() => Count(postfix, $"to=<{verp}>", "relay=mailman", "status=sent") >= count, TimeSpan.FromSeconds(90),
            $"{count} DSNs for {member} piped into inject; log: {postfix.Log()}");
    }

    private static int Count(PostfixInstance postfix, params string[] parts)
        => postfix.Log().Split('\n').Count(l => parts.All(p => l.Contains(p, StringComparison.Ordinal)));

    private (string Delivery, string Score) Show(string member)
    {
        var show = MailmanProcess.Run(_instance.Home, ["members", "show", List, member], runAs: "nobody");
        Assert.True(show.ExitCode == 0, show.Stderr);
        var fields = show.Stdout.Trim().Split('\n').Select(l => l.Split(": ", 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");
        return (fields["delivery"], fields["bounce_score"]);
    }

    private List<string> BounceLog()
        => Directory.GetFiles(_instance.Paths.LogsDirectory, "bounce-*.log").SelectMany(File.ReadAllLines).ToList();

    // Moves the member's last bounce back a day, as if the next post came tomorrow. As root on
    // nobody's database: the pool is cleared and ownership restored so the pipe can still open it.
    private void Backdate(string member)
    {
        using (var db = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + _instance.Paths.Database))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "UPDATE members SET last_bounce = $t WHERE address_key = $a";
            cmd.Parameters.AddWithValue("$t", DateTimeOffset.UtcNow.AddDays(-1).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            cmd.Parameters.AddWithValue("$a", member);
            Assert.Equal(1, cmd.ExecuteNonQuery());
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Assert.Equal(0, PostfixInstance.Run("chown", "-R", "nobody:nogroup", _instance.Home));
    }

    private void Post(PostfixInstance postfix, int n)
    {
        var before = Count(postfix, $"to=<{List}>", "relay=mailman", "status=sent");
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("poster@example.net"));
        message.To.Add(MailboxAddress.Parse(List));
        message.Subject = "post " + n.ToString(CultureInfo.InvariantCulture);
        message.MessageId = $"post-{n}@example.com";
        message.Body = new TextPart("plain") { Text = "Hello through Postfix\n" };
        postfix.Submit(message);

        Wait.Until(() => Count(postfix, $"to=<{List}>", "relay=mailman", "status=sent") > before, TimeSpan.FromSeconds(60), "Postfix to pipe the post into inject; log: " + postfix.Log());
    }
}
