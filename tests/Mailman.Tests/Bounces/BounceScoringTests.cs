// The scoring policy on its own: once a day, stale reset, threshold, and the sweep's schedule of
// warnings and removal, with times chosen by hand.
using Mailman.Bounces;
using Mailman.Lists;

namespace Mailman.Tests.Bounces;

public sealed class BounceScoringTests
{
    private static readonly DateTimeOffset Noon = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);
    private static readonly BounceSettings Defaults = BounceSettings.Of(new MailingList());

    private static MemberRecord Member(double score = 0, DateTimeOffset? lastBounce = null, bool enabled = true, string reason = "",
        int warnings = 0, DateTimeOffset? lastWarning = null)
        => new("anne@example.com", "Anne", enabled, reason, enabled ? null : Noon, score, lastBounce, lastWarning, warnings, "defer", Noon, "serial");

    [Fact]
    public void Mailmans_defaults()
    {
        Assert.Equal(new BounceSettings(true, 5.0, 7, 3, TimeSpan.FromDays(7), true, true, Probes: true, ProbeWait: TimeSpan.FromDays(7)), Defaults);
    }

    [Fact]
    public void A_first_bounce_scores_one_and_a_second_the_same_day_nothing()
    {
        Assert.Equal(new ScoreDecision(BounceAction.Scored, 1), BounceScoring.Score(Member(), Noon, Defaults));
        Assert.Equal(new ScoreDecision(BounceAction.AlreadyScoredToday, 1), BounceScoring.Score(Member(1, Noon.AddHours(-11)), Noon.AddHours(11.9), Defaults));
    }

    [Fact]
    public void The_day_is_the_UTC_date_not_24_hours()
    {
        // 23:59 and 00:01 the next day are two days.
        var lateEvening = new DateTimeOffset(2026, 11, 28, 23, 59, 0, TimeSpan.Zero);
        Assert.Equal(new ScoreDecision(BounceAction.Scored, 2), BounceScoring.Score(Member(1, lateEvening), lateEvening.AddMinutes(2), Defaults));
    }

    [Fact]
    public void A_last_bounce_in_the_future_counts_as_today()
    {
        Assert.Equal(BounceAction.AlreadyScoredToday, BounceScoring.Score(Member(2, Noon.AddDays(1)), Noon, Defaults).Action);
    }

    // Review 61: stamped by a clock that was ahead (fixed by NTP since), a last bounce, a probe
    // or a warning months ahead kept the member from scoring, from a new probe and from the next
    // warning until that date: more than a day ahead, they are not waited for.
    [Fact]
    public void Times_stamped_more_than_a_day_ahead_by_a_clock_that_was_ahead_are_not_waited_for()
    {
        var ahead = Noon.AddDays(200);
        Assert.Equal(new ScoreDecision(BounceAction.Scored, 3), BounceScoring.Score(Member(2, ahead), Noon, Defaults));
        Assert.Equal(new ScoreDecision(BounceAction.ProbeSent, 5), BounceScoring.Score(Member(4, ahead), Noon, Defaults));

        var probed = Member(5, ahead) with { ProbeSent = ahead };
        Assert.False(BounceScoring.Probing(probed, Noon, Defaults));
        Assert.Equal(new ScoreDecision(BounceAction.ProbeWentThrough, 1), BounceScoring.Score(probed, Noon, Defaults));
        Assert.True(BounceScoring.Probing(probed with { ProbeSent = Noon.AddHours(23) }, Noon, Defaults)); // within a day: a clock a little ahead

        var warned = Member(5, Noon.AddDays(-3), enabled: false, reason: DisabledReason.Bounces, warnings: 1, lastWarning: ahead);
        Assert.Equal(new SweepStep(false, 2, false), BounceScoring.Next(warned, Noon, Defaults));
        Assert.Equal(SweepStep.None, BounceScoring.Next(warned with { LastWarning = Noon.AddHours(-1) }, Noon, Defaults));
    }

    [Theory]
    [InlineData(7, BounceAction.Scored, 3)]        // 7 days old: not stale (Mailman: older than bounce_info_stale_after)
    [InlineData(8, BounceAction.ScoreReset, 1)]
    [InlineData(400, BounceAction.ScoreReset, 1)]
    public void A_stale_score_is_reset_before_the_bounce_counts(int daysAgo, BounceAction action, double score)
    {
        Assert.Equal(new ScoreDecision(action, score), BounceScoring.Score(Member(2, Noon.AddDays(-daysAgo)), Noon, Defaults));
    }

    [Fact]
    public void Reaching_the_threshold_disables()
    {
        var noProbes = Defaults with { Probes = false };
        Assert.Equal(new ScoreDecision(BounceAction.Scored, 4), BounceScoring.Score(Member(3, Noon.AddDays(-1)), Noon, noProbes));
        Assert.Equal(new ScoreDecision(BounceAction.Disabled, 5), BounceScoring.Score(Member(4, Noon.AddDays(-1)), Noon, noProbes));
        Assert.Equal(new ScoreDecision(BounceAction.Disabled, 1), BounceScoring.Score(Member(), Noon, noProbes with { Threshold = 1 }));
        Assert.Equal(BounceAction.Disabled, BounceScoring.Score(Member(), Noon, noProbes with { Threshold = 0.5 }).Action);
    }

    [Fact]
    public void With_probes_a_mailed_report_at_the_threshold_sends_a_probe_and_only_what_we_saw_disables()
    {
        var yesterday = Noon.AddDays(-1);
        Assert.Equal(new ScoreDecision(BounceAction.ProbeSent, 5), BounceScoring.Score(Member(4, yesterday), Noon, Defaults));

        // A refusal in our own SMTP session is seen, not told: it disables at the threshold as before.
        Assert.Equal(new ScoreDecision(BounceAction.Disabled, 5), BounceScoring.Score(Member(4, yesterday), Noon, Defaults, BounceEvidence.Refusal));

        // While the probe waits: reports score; a refusal, or the probe's own bounce (any day), disables.
        var probing = Member(5, yesterday) with { ProbeSent = yesterday };
        Assert.Equal(new ScoreDecision(BounceAction.ProbePending, 6), BounceScoring.Score(probing, Noon, Defaults));
        Assert.Equal(new ScoreDecision(BounceAction.Disabled, 5), BounceScoring.Score(probing, Noon, Defaults, BounceEvidence.Refusal));
        Assert.Equal(new ScoreDecision(BounceAction.Disabled, 5), BounceScoring.Score(probing, yesterday.AddHours(1), Defaults, BounceEvidence.Probe));

        // Once its wait is over the probe went through: the score starts again (a refusal too only scores).
        var after = yesterday + Defaults.ProbeWait;
        Assert.Equal(new ScoreDecision(BounceAction.ProbeWentThrough, 1), BounceScoring.Score(probing, after, Defaults));
        Assert.Equal(new ScoreDecision(BounceAction.ProbeWentThrough, 1), BounceScoring.Score(probing, after, Defaults, BounceEvidence.Refusal));
        Assert.Equal(new ScoreDecision(BounceAction.ProbePending, 6), BounceScoring.Score(probing, after.AddTicks(-1), Defaults));
        Assert.Equal(new ScoreDecision(BounceAction.ProbeWentThrough, 1), BounceScoring.Score(probing, after, Defaults, BounceEvidence.Probe));

        // "The probe bounced" for a member with no probe (re-enabled meanwhile) is an ordinary report.
        Assert.Equal(new ScoreDecision(BounceAction.Scored, 1), BounceScoring.Score(Member(), Noon, Defaults, BounceEvidence.Probe));
    }

    [Theory]
    [InlineData(DisabledReason.Bounces)]
    [InlineData(DisabledReason.User)]
    [InlineData(DisabledReason.Moderator)]
    public void A_disabled_member_is_never_scored(string reason)
    {
        var decision = BounceScoring.Score(Member(5, Noon.AddDays(-3), enabled: false, reason: reason), Noon, Defaults);
        Assert.Equal(new ScoreDecision(BounceAction.AlreadyDisabled, 5), decision);
        Assert.False(decision.Writes);
    }

    [Fact]
    public void The_sweep_warns_three_times_a_week_apart_then_removes_a_week_after_the_last()
    {
        var disabled = Member(5, Noon, enabled: false, reason: DisabledReason.Bounces);
        Assert.Equal(new SweepStep(true, 1, false), BounceScoring.Next(disabled, Noon, Defaults));

        var w1 = disabled with { WarningsSent = 1, LastWarning = Noon };
        Assert.True(BounceScoring.Next(w1, Noon.AddDays(7).AddSeconds(-1), Defaults).IsNone);
        Assert.Equal(new SweepStep(false, 2, false), BounceScoring.Next(w1, Noon.AddDays(7), Defaults));

        var w3 = disabled with { WarningsSent = 3, LastWarning = Noon.AddDays(14) };
        Assert.True(BounceScoring.Next(w3, Noon.AddDays(21).AddSeconds(-1), Defaults).IsNone);
        Assert.Equal(new SweepStep(false, 0, true), BounceScoring.Next(w3, Noon.AddDays(21), Defaults));
    }

    [Fact]
    public void Without_warnings_the_member_is_removed_at_once()
    {
        var disabled = Member(5, Noon, enabled: false, reason: DisabledReason.Bounces);
        Assert.Equal(new SweepStep(true, 0, true), BounceScoring.Next(disabled, Noon, Defaults with { Warnings = 0 }));
    }

    [Theory]
    [InlineData(true, "")]
    [InlineData(false, DisabledReason.User)]
    [InlineData(false, DisabledReason.Moderator)]
    public void The_sweep_leaves_members_not_disabled_by_bounces_alone(bool enabled, string reason)
    {
        Assert.True(BounceScoring.Next(Member(9, Noon, enabled, reason), Noon.AddDays(100), Defaults).IsNone);
    }
}
