// VERP probes (verp_probes, on by default): a mailed report that reaches the threshold sends the
// member a probe from a one-time bounce address instead of disabling; the probe's bounce, or a
// refusal at SMTP time while it waits, disables; a probe that waited its time went through.
using System.Text.RegularExpressions;
using Mailman.Bounces;
using Mailman.Delivery;
using Mailman.Lists;
using Mailman.Notices;
using Mailman.Queues;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Runners;

public sealed partial class BounceRunnerTests
{
    private const string Probed = "m00001@example.com";

    // Reaches the threshold (3) with one report a day to the member's VERP address: anyone could have mailed them.
    private (EntryMetadata Metadata, MimeMessage Message, List<string> To) ReachThreshold(RunnerHarness h)
    {
        for (var day = 0; day < 3; day++)
        {
            Bounce(h, Probed);
            h.Time.Advance(TimeSpan.FromDays(1));
        }

        return Assert.Single(Notices(h));
    }

    private void UndoProbeMark()
    {
        using var db = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + _instance.Paths.Database);
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "UPDATE members SET probe_sent = NULL WHERE address_key = $a";
        cmd.Parameters.AddWithValue("$a", Probed);
        Assert.Equal(1, cmd.ExecuteNonQuery());
    }

    private static string TokenOf(EntryMetadata probe)
        => Regex.Match(probe.EnvelopeSender!, "^dev-bounces\\+probe-([0-9a-f]{32})@example\\.org$").Groups[1].Value;

    [Fact]
    public void Forged_reports_reaching_the_threshold_send_a_probe_and_do_not_disable_and_an_unanswered_probe_starts_the_score_again()
    {
        CreateList(l => l.BounceScoreThreshold = 3, probes: true);
        using var h = new RunnerHarness(_instance);

        var probe = ReachThreshold(h);
        var m = Member(Probed)!;
        Assert.True(m.DeliveryEnabled);
        Assert.Equal(3, m.BounceScore);
        Assert.Equal(h.Time.GetUtcNow() - TimeSpan.FromDays(1), m.ProbeSent);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains($"{Probed} of {List}, permanent (DSN), score 3: threshold reached: probing, delivery stays on unless the probe bounces", StringComparison.Ordinal));
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith($"Bounce probe to {Probed} of {List}, score 3: queued as ", StringComparison.Ordinal));
        Assert.DoesNotContain(h.BounceLog.Lines, l => l.Contains(TokenOf(probe.Metadata), StringComparison.Ordinal));

        // The probe: to the member alone, from a one-time address that is not the member's VERP.
        Assert.Equal([Probed], probe.To);
        Assert.Equal(32, TokenOf(probe.Metadata).Length);
        Assert.NotEqual(VerpOf(Probed), probe.Metadata.EnvelopeSender);
        Assert.Equal(NoticeTemplates.Probe, probe.Message.Headers["X-Mailman-Notice"]);
        Assert.Equal("auto-generated", probe.Message.Headers[HeaderId.AutoSubmitted]);
        Assert.Equal("dev-bounces@example.org", probe.Message.From.Mailboxes.Single().Address);
        Assert.Equal("dev-owner@example.org", probe.Message.ReplyTo.Mailboxes.Single().Address);
        Assert.Contains($"If it bounces within\n7 days, delivery from the list to {Probed} is disabled.", probe.Message.TextBody!.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.DoesNotContain(TokenOf(probe.Metadata), probe.Message.TextBody, StringComparison.Ordinal);

        // More reports while the probe waits score, and send no second probe.
        Bounce(h, Probed);
        Assert.True(Member(Probed)!.DeliveryEnabled);
        Assert.Equal(4, Member(Probed)!.BounceScore);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("score 4: scored, the probe sent before awaits its bounce", StringComparison.Ordinal));
        Assert.Single(Notices(h));

        // Seven days after the probe nothing bounced it: the address works, and the score starts again.
        h.Time.Advance(TimeSpan.FromDays(6));
        Bounce(h, Probed);
        m = Member(Probed)!;
        Assert.True(m.DeliveryEnabled);
        Assert.Equal(1, m.BounceScore);
        Assert.Null(m.ProbeSent);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("score 1: the last probe went through: score reset, scored", StringComparison.Ordinal));
        Assert.Single(Notices(h));
        Assert.DoesNotContain(Notices(h), n => n.To.Contains(Owner));

        // The old probe's address names nobody now: a late or forged report to it is kept, not scored.
        h.InjectBounce(List, probe.Metadata.EnvelopeSender!, Dsn(Probed));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Equal(1, Member(Probed)!.BounceScore);
        Assert.True(Member(Probed)!.DeliveryEnabled);
        Assert.Single(h.Queues[QueueSet.Unrecognized].Pending());
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("a probe address that names no outstanding probe", StringComparison.Ordinal));
    }

    [Fact]
    public void A_bounce_of_the_probe_after_its_wait_scores_nobody()
    {
        CreateList(l => l.BounceScoreThreshold = 3, probes: true);
        using var h = new RunnerHarness(_instance);
        var probe = ReachThreshold(h);

        // Sent a day ago; seven days is the wait: a week after the probe its address names nobody
        // (it is good for the wait, not for ever).
        h.Time.Advance(TimeSpan.FromDays(6));
        h.InjectBounce(List, probe.Metadata.EnvelopeSender!, Dsn(Probed));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.True(Member(Probed)!.DeliveryEnabled);
        Assert.Single(h.Queues[QueueSet.Unrecognized].Pending());
        Assert.Equal(3, Member(Probed)!.BounceScore);
    }

    [Fact]
    public void A_member_with_a_robot_like_name_is_probed_and_a_member_that_is_a_list_here_is_scored_by_our_own_refusals_alone()
    {
        CreateList(l => l.BounceScoreThreshold = 1, probes: true);
        _instance.CreateList("other@example.org");
        _instance.AddMembers(List, [new Member("sys-admin@example.net", ""), new Member("other@example.org", "")]);
        using var h = new RunnerHarness(_instance);

        // It gets every post; a probe is no more a loop than a post.
        Bounce(h, "sys-admin@example.net");
        Assert.True(Member("sys-admin@example.net")!.DeliveryEnabled);
        Assert.Single(Notices(h), n => n.To.SequenceEqual(["sys-admin@example.net"]) && n.Message.Headers["X-Mailman-Notice"] == NoticeTemplates.Probe);

        // A list of this server is delivered here: a mailed report about it is forged (review 61:
        // disabled at the threshold without a probe, which Notices never send to a list, it cut
        // an umbrella list's members off).
        Bounce(h, "other@example.org");
        var m = Member("other@example.org")!;
        Assert.True(m.DeliveryEnabled);
        Assert.Equal(0, m.BounceScore);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("other@example.org", StringComparison.Ordinal)
            && l.Contains("a list of this server, delivered here: a mailed report about it is not scored (our own SMTP refusals are)", StringComparison.Ordinal));
        Assert.DoesNotContain(h.BounceLog.Lines, l => l.StartsWith("Bounce probe to other@example.org", StringComparison.Ordinal));

        // Our own SMTP session's refusal is seen, not told: it disables at the threshold, without a probe.
        var outcome = Assert.Single(h.Processor.ProcessRefusals(ListName.Parse(List), "<p@example.com>",
            [new SmtpRefusal("other@example.org", 550, "5.1.1 <other@example.org>: Recipient address rejected: User unknown in local recipient table", true)], 1));
        Assert.Equal(BounceAction.Disabled, outcome.Action);
        m = Member("other@example.org")!;
        Assert.False(m.DeliveryEnabled);
        Assert.Equal(DisabledReason.Bounces, m.DisabledReason);
        Assert.Null(m.ProbeSent);
    }

    [Fact]
    public void A_probe_bounce_for_a_reason_not_about_the_address_does_not_disable()
    {
        CreateList(l => l.BounceScoreThreshold = 3, probes: true);
        using var h = new RunnerHarness(_instance);
        var sender = ReachThreshold(h).Metadata.EnvelopeSender!;

        // The member's provider refuses our server (a blocklist): nothing about the address.
        h.InjectBounce(List, sender, BounceMessages.Dsn([BounceMessages.Recipient(Probed, status: "5.7.1", diagnostic: "smtp; 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org")]));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.True(Member(Probed)!.DeliveryEnabled);
        Assert.NotNull(Member(Probed)!.ProbeSent);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("its probe bounced with 5.7.1, which is not about the address: not scored, the probe still waits", StringComparison.Ordinal));

        h.InjectBounce(List, sender, Dsn(Probed, status: "5.2.1"));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.False(Member(Probed)!.DeliveryEnabled);
    }

    // Gmail's old plain-text report, in SimpleMatch's table: no status, what the other server
    // said in its text.
    private static byte[] GoogleReport(string to, string address, string said) => System.Text.Encoding.UTF8.GetBytes($"""
        From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
        To: {to}
        Subject: Delivery Status Notification (Failure)
        Content-Type: text/plain; charset=UTF-8

        Delivery to the following recipient failed permanently:

             {address}

        Technical details of permanent failure:
        Google tried to deliver your message, but it was rejected by the server for the recipient domain example.com by mx.example.com. [192.0.2.7].

        The error that the other server returned was:
        {said}

        ----- Original message -----

        Subject: spam policy discussion

        """.Replace("\r", "", StringComparison.Ordinal));

    // Review 140: a report without a status (SimpleMatch's formats) scored whatever the remote
    // server said, so a blocklisting of our server in Gmail's old text disabled the member whose
    // probe it answered. The block's text is what the server said: a listing does not score, a
    // dead mailbox still does.
    [Fact]
    public void A_probe_bounce_in_a_format_without_a_status_does_not_disable_for_a_blocklisting_and_does_for_a_dead_mailbox()
    {
        CreateList(l => l.BounceScoreThreshold = 3, probes: true);
        using var h = new RunnerHarness(_instance);
        var sender = ReachThreshold(h).Metadata.EnvelopeSender!;

        h.InjectBounce(List, sender, GoogleReport(sender, Probed, "554 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.True(Member(Probed)!.DeliveryEnabled);
        Assert.NotNull(Member(Probed)!.ProbeSent);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("which is not about the address: not scored, the probe still waits", StringComparison.Ordinal));

        h.InjectBounce(List, sender, GoogleReport(sender, Probed, "550-5.1.1 The email account that you tried to reach does not exist."));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.False(Member(Probed)!.DeliveryEnabled);
    }

    // Review 49: only 5.1.x and 5.2.x disabled, so a member at a domain that no longer exists
    // (Postfix: 5.4.4) or whose server answers a plain 550 (Postfix: 5.0.0) was probed every
    // week and never disabled.
    [Theory]
    [InlineData("5.4.4")]
    [InlineData("5.0.0")]
    [InlineData("5.3.0")]
    public void A_probe_bounce_from_a_dead_domain_or_a_plain_550_disables(string status)
    {
        CreateList(l => l.BounceScoreThreshold = 3, probes: true);
        using var h = new RunnerHarness(_instance);
        var sender = ReachThreshold(h).Metadata.EnvelopeSender!;

        h.InjectBounce(List, sender, Dsn(Probed, status: status));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.False(Member(Probed)!.DeliveryEnabled);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains("its probe bounced: delivery disabled", StringComparison.Ordinal));
    }

    [Fact]
    public void A_member_who_turns_delivery_off_or_rejoins_leaves_no_probe_behind()
    {
        CreateList(l => l.BounceScoreThreshold = 3, probes: true);
        using var h = new RunnerHarness(_instance);
        var sender = ReachThreshold(h).Metadata.EnvelopeSender!;
        Assert.NotNull(Member(Probed)!.LastBounceSaid);
        using (var store = new ListStore(_instance.Paths.Database))
        {
            Assert.True(store.SetDelivery(Name, Probed, DisabledReason.User, h.Time.GetUtcNow()));
            Assert.Equal(JoinResult.Reenabled, store.Join(Name, Probed, "", h.Time.GetUtcNow()));
        }

        var m = Member(Probed)!;
        Assert.True(m.DeliveryEnabled);
        Assert.Equal((0.0, (DateTimeOffset?)null, (string?)null), (m.BounceScore, m.ProbeSent, m.ProbeToken));
        Assert.Null(m.LastBounceSaid); // review 76: a rejoin kept the old bounce's words
        h.InjectBounce(List, sender, Dsn(Probed));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.True(Member(Probed)!.DeliveryEnabled);
    }

    [Fact]
    public void The_token_stays_out_of_the_logs_of_inject_whatever_arrives_at_the_probe_address()
    {
        CreateList(l => l.BounceScoreThreshold = 3, probes: true);
        string sender;
        using (var h = new RunnerHarness(_instance))
        {
            sender = ReachThreshold(h).Metadata.EnvelopeSender!;
        }

        var token = Regex.Match(sender, "probe-([0-9a-f]{32})@").Groups[1].Value;
        var outOfOffice = "From: anne@example.com\nTo: " + sender + "\nSubject: Out of office\n\nBack on Monday.\n";
        var inject = MailmanProcess.Run(_instance.Home, ["inject", sender, "--sender", "anne@example.com"], System.Text.Encoding.ASCII.GetBytes(outOfOffice));
        Assert.True(inject.ExitCode == 0, inject.Stderr);
        var logs = Directory.GetFiles(_instance.Paths.LogsDirectory).Select(File.ReadAllText).ToList();
        Assert.Contains(logs, l => l.Contains("to dev-bounces+probe-" + token[..4] + "...@example.org", StringComparison.Ordinal));
        Assert.DoesNotContain(logs, l => l.Contains(token, StringComparison.Ordinal));
        Assert.DoesNotContain(token, inject.Stderr + inject.Stdout, StringComparison.Ordinal);
        Assert.Equal("x-bounces+probe-1234...@h", Verp.Redact("x-bounces+probe-" + token.Replace(token[..4], "1234", StringComparison.Ordinal) + "@h"));
        Assert.Equal("anne@example.com", Verp.Redact("anne@example.com"));

        // Review 69: a confirmation address's token, logged whole by the intake, approved a held
        // post for whoever read the log.
        Assert.Equal("dev-confirm+0123...@example.org", Verp.Redact("dev-confirm+0123456789abcdef0123456789abcdef@example.org"));
        Assert.Equal("dev-confirm@example.org", Verp.Redact("dev-confirm@example.org"));
        const string confirm = "0123456789abcdef0123456789abcdef";
        var reply = MailmanProcess.Run(_instance.Home, ["inject", $"dev-confirm+{confirm}@example.org", "--sender", "anne@example.com"],
            System.Text.Encoding.ASCII.GetBytes("From: anne@example.com\nSubject: Re\n\nhmm\n"));
        Assert.True(reply.ExitCode == 0, reply.Stderr);
        logs = Directory.GetFiles(_instance.Paths.LogsDirectory).Select(File.ReadAllText).ToList();
        Assert.Contains(logs, l => l.Contains("to dev-confirm+0123...@example.org", StringComparison.Ordinal));
        Assert.DoesNotContain(logs, l => l.Contains(confirm, StringComparison.Ordinal));
    }

    [Fact]
    public void A_probe_that_cannot_be_queued_is_forgotten_and_the_next_report_probes_again()
    {
        CreateList(l => l.BounceScoreThreshold = 1, probes: true);
        using var h = new RunnerHarness(_instance);
        var outDir = _instance.QueueDir(QueueSet.Out);
        Directory.Move(outDir, outDir + ".away");
        File.WriteAllText(outDir, "not a directory");
        try
        {
            Bounce(h, Probed);
        }
        finally
        {
            File.Delete(outDir);
            Directory.Move(outDir + ".away", outDir);
        }

        Assert.True(Member(Probed)!.DeliveryEnabled);
        Assert.Null(Member(Probed)!.ProbeSent);
        Assert.Contains(h.BounceLog.Lines, l => l.StartsWith($"Bounce probe to {Probed} of {List} could not be queued", StringComparison.Ordinal));

        h.Time.Advance(TimeSpan.FromDays(1));
        Bounce(h, Probed);
        Assert.NotNull(Member(Probed)!.ProbeSent);
        Assert.Single(Notices(h), n => n.Message.Headers["X-Mailman-Notice"] == NoticeTemplates.Probe);
    }

    [Fact]
    public void A_batch_replayed_after_a_crash_before_its_probe_was_marked_sent_queues_it_then_and_only_once()
    {
        CreateList(l => l.BounceScoreThreshold = 1, probes: true);
        using var h = new RunnerHarness(_instance);
        var batch = new List<ReturnedMessage>
        {
            new("17643312000000000-00000000", Name, VerpOf(Probed), BounceClassifier.Classify(new MemoryStream(Dsn(Probed))), h.Time.GetUtcNow()),
        };
        h.Processor.Process(batch);
        var probe = Assert.Single(Notices(h));
        var token = TokenOf(probe.Metadata);

        // Replayed after it was marked sent: nothing more.
        h.Time.Advance(TimeSpan.FromHours(1));
        h.Processor.Process(batch);
        Assert.Single(Notices(h));
        Assert.NotNull(Member(Probed)!.ProbeSent);

        // A crash after the commit and before the mark (here: the mark undone), the probe still in out: found there, not queued twice.
        UndoProbeMark();
        h.Processor.Process(batch);
        Assert.Equal(token, TokenOf(Assert.Single(Notices(h)).Metadata));
        Assert.NotNull(Member(Probed)!.ProbeSent);

        // A crash before the probe reached out (its entry taken out, the mark undone): the replay queues it, same token.
        foreach (var file in Directory.GetFiles(_instance.QueueDir(QueueSet.Out)))
        {
            File.Delete(file);
        }

        UndoProbeMark();
        h.Processor.Process(batch);
        Assert.Equal(token, TokenOf(Assert.Single(Notices(h)).Metadata));

        // Another report the same day is no replay: no probe.
        foreach (var file in Directory.GetFiles(_instance.QueueDir(QueueSet.Out)))
        {
            File.Delete(file);
        }

        Bounce(h, Probed);
        Assert.Empty(Notices(h));
    }

    [Fact]
    public void The_probes_bounce_disables_the_member_and_the_usual_notices_follow()
    {
        CreateList(l => l.BounceScoreThreshold = 3, probes: true);
        using var h = new RunnerHarness(_instance);
        var probe = ReachThreshold(h);
        var sender = probe.Metadata.EnvelopeSender!;

        // A delay notice of the probe changes nothing; the same day's report to the plain VERP address neither.
        h.InjectBounce(List, sender, Dsn(Probed, "delayed", "4.4.1"));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.True(Member(Probed)!.DeliveryEnabled);
        Assert.NotNull(Member(Probed)!.ProbeSent);

        // The probe bounces (the report may name any address: the one-time address decides), upper-cased by some MTA on the way.
        h.InjectBounce(List, sender.ToUpperInvariant().Replace("EXAMPLE.ORG", "example.org", StringComparison.Ordinal), Dsn("forwarded@elsewhere.example.net"));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        var m = Member(Probed)!;
        Assert.False(m.DeliveryEnabled);
        Assert.Equal(DisabledReason.Bounces, m.DisabledReason);
        Assert.Null(m.ProbeSent);
        Assert.Equal(1, m.WarningsSent);
        Assert.StartsWith("the probe bounced: 5.1.1 ", m.LastBounceSaid, StringComparison.Ordinal);
        Assert.Contains(h.BounceLog.Lines, l => l.Contains($"Bounce: {Probed} of {List}, permanent (DSN), score 3: its probe bounced: delivery disabled", StringComparison.Ordinal));
        var notices = Notices(h);
        Assert.Contains(notices, n => n.To.SequenceEqual([Probed]) && n.Message.Headers["X-Mailman-Notice"] == NoticeTemplates.DisabledWarning);
        Assert.Contains(notices, n => n.To.SequenceEqual([Owner]) && n.Message.Headers["X-Mailman-Notice"] == NoticeTemplates.OwnerDisabled);
        Assert.Empty(h.Queues[QueueSet.Unrecognized].Pending());
    }

    [Fact]
    public void A_report_to_a_probe_address_that_was_never_sent_scores_nobody_and_is_kept()
    {
        CreateList(l => l.BounceScoreThreshold = 1, probes: true);
        using var h = new RunnerHarness(_instance);
        var guessed = Verp.ProbeAddress(Name, new string('a', 32));
        h.InjectBounce(List, guessed, Dsn(Probed));
        Assert.Equal(1, RunnerHarness.Drain(h.Bounces));
        Assert.Equal(0, Member(Probed)!.BounceScore);
        Assert.Single(h.Queues[QueueSet.Unrecognized].Pending());

        // Not a probe address at all (wrong length): nobody either, as any VERP local part without '='.
        Assert.Null(Verp.DecodeProbe(Name, "dev-bounces+probe-abc@example.org"));
        Assert.Null(Verp.DecodeProbe(Name, Verp.ProbeAddress(Name, new string('a', 32)).Replace("example.org", "example.net", StringComparison.Ordinal)));
        Assert.Null(Verp.Decode(Name, guessed));
    }

    [Fact]
    public void A_refusal_at_SMTP_time_while_the_probe_waits_disables_and_one_without_a_probe_scores_as_before()
    {
        CreateList(l => l.BounceScoreThreshold = 3, probes: true);
        using var h = new RunnerHarness(_instance);
        ReachThreshold(h);

        // A refusal of another member, with no probe outstanding, only scores.
        var other = h.Processor.ProcessRefusals(Name, "<post@example.com>", [new SmtpRefusal("m00002@example.com", 550, "5.1.1 no such user", true)], 5);
        Assert.Equal(BounceAction.Scored, Assert.Single(other).Action);

        // The member's copy (the probe, a post) refused at RCPT while the probe waits: seen, not told.
        var outcome = Assert.Single(h.Processor.ProcessRefusals(Name, "<probe@example.org>", [new SmtpRefusal(Probed, 550, "5.1.1 no such user", true)], 1));
        Assert.Equal(BounceAction.Disabled, outcome.Action);
        Assert.False(Member(Probed)!.DeliveryEnabled);
        Assert.Null(Member(Probed)!.ProbeSent);
    }

    [Fact]
    public void Refusals_at_SMTP_time_reaching_the_threshold_disable_without_a_probe()
    {
        CreateList(l => l.BounceScoreThreshold = 1, probes: true);
        using var h = new RunnerHarness(_instance);
        var outcome = Assert.Single(h.Processor.ProcessRefusals(Name, "<post@example.com>", [new SmtpRefusal(Probed, 550, "5.1.1 no such user", true)], 5));
        Assert.Equal(BounceAction.Disabled, outcome.Action);
        Assert.DoesNotContain(Notices(h), n => n.Message.Headers["X-Mailman-Notice"] == NoticeTemplates.Probe);
        Assert.Equal("refused at SMTP time: 550 5.1.1 no such user", Member(Probed)!.LastBounceSaid);
    }
}
