// The scoring policy of bounce processing, Mailman's model: pure functions of one member's bounce
// record, the list's settings, the time and how far the evidence is trusted. It decides; it never
// reads or writes the database, and never sends mail (BounceProcessor does both).
using Mailman.Lists;

namespace Mailman.Bounces;

/// <summary>A list's bounce settings, by Mailman's names (Lists/MailingList.cs).</summary>
/// <param name="Probes">verp_probes: at the threshold a mailed bounce sends a probe instead of disabling.</param>
/// <param name="ProbeWait">verp_probe_wait: a probe that did not bounce within this went through.</param>
public sealed record BounceSettings(
    bool Process, double Threshold, int StaleAfterDays, int Warnings, TimeSpan WarningInterval, bool NotifyOwnerOnDisable, bool NotifyOwnerOnRemoval,
    bool Probes = false, TimeSpan ProbeWait = default)
{
    public static BounceSettings Of(MailingList list) => new(
        list.ProcessBounces,
        list.BounceScoreThreshold,
        list.BounceInfoStaleAfterDays,
        list.BounceYouAreDisabledWarnings,
        TimeSpan.FromDays(list.BounceYouAreDisabledWarningsIntervalDays),
        list.BounceNotifyOwnerOnDisable,
        list.BounceNotifyOwnerOnRemoval,
        list.VerpProbes,
        TimeSpan.FromDays(list.VerpProbeWaitDays));
}

/// <summary>What says the address failed, and so how far it is trusted.</summary>
public enum BounceEvidence
{
    /// <summary>A report mailed to a bounces address: anyone can write one (VERP names who, not that it is true).</summary>
    Mailed,

    /// <summary>A refusal at SMTP time in our own session: seen, not told.</summary>
    Refusal,

    /// <summary>A report mailed back to an outstanding probe's one-time address: only a copy that reached the member's server carried it.</summary>
    Probe,
}

/// <summary>What became of one bounced address (logged as written here).</summary>
public enum BounceAction
{
    /// <summary>The score went up by one.</summary>
    Scored,

    /// <summary>The old score was stale: reset, then this bounce counted (score 1).</summary>
    ScoreReset,

    /// <summary>The score reached the threshold: delivery disabled.</summary>
    Disabled,

    /// <summary>The score reached the threshold on a mailed report: a probe goes out, and only its bounce disables.</summary>
    ProbeSent,

    /// <summary>Scored while the member's probe waits for its bounce.</summary>
    ProbePending,

    /// <summary>The member's last probe waited its time without a bounce (the address works): the score started again at this bounce.</summary>
    ProbeWentThrough,

    /// <summary>The member scored a bounce today already (at most once a day).</summary>
    AlreadyScoredToday,

    /// <summary>Delivery is off already: a bounce of a copy or notice sent before (Mailman's "residual bounce").</summary>
    AlreadyDisabled,

    /// <summary>A delay or "will retry" notice: never scored.</summary>
    Temporary,

    /// <summary>The address is not a member of the list.</summary>
    NotAMember,

    /// <summary>The list's process_bounces is off.</summary>
    ProcessingOff,

    /// <summary>The list does not exist (any more).</summary>
    NoSuchList,
}

/// <summary>The score decision for one permanent bounce.</summary>
public readonly record struct ScoreDecision(BounceAction Action, double Score)
{
    /// <summary>True when the member's record changes.</summary>
    public bool Writes => Action is BounceAction.Scored or BounceAction.ScoreReset or BounceAction.Disabled or BounceAction.ProbeSent or BounceAction.ProbePending or BounceAction.ProbeWentThrough;
}

/// <summary>What the warning sweep does next for a member disabled by bounces.</summary>
/// <param name="NotifyOwnersOfDisable">The first step after the disable: the owners hear of it.</param>
/// <param name="Warning">The number of the warning to send now (1-based), 0 for none.</param>
/// <param name="Remove">The last warning's interval is over (or there are no warnings): remove the member.</param>
public readonly record struct SweepStep(bool NotifyOwnersOfDisable, int Warning, bool Remove)
{
    public static SweepStep None => default;

    public bool IsNone => !NotifyOwnersOfDisable && Warning == 0 && !Remove;
}

public static class BounceScoring
{
    /// <summary>What a permanent bounce does to a member's score: points per bounce, as Mailman 3.</summary>
    public const double PointsPerBounce = 1.0;

    /// <summary>
    /// Scores one permanent bounce of <paramref name="member"/> received at <paramref name="when"/>.
    /// As Mailman 3 does it: a disabled member's bounce is residual; a member scores at most once
    /// per day (UTC); a score whose last bounce is more than stale-after days old is reset before
    /// this bounce counts; at the threshold delivery is disabled. With probes (Mailman's
    /// verp_probes), a mailed report that reaches the threshold sends a probe instead, and what
    /// disables is the probe's bounce, or a refusal at SMTP time while it waits (a copy we tried);
    /// a probe that waited its time without either went through: the score starts again.
    /// </summary>
    public static ScoreDecision Score(MemberRecord member, DateTimeOffset when, BounceSettings settings, BounceEvidence evidence = BounceEvidence.Mailed)
    {
        if (!member.DeliveryEnabled)
        {
            return new(BounceAction.AlreadyDisabled, member.BounceScore);
        }

        var probing = Probing(member, when, settings);
        if (probing && evidence is BounceEvidence.Probe or BounceEvidence.Refusal)
        {
            return new(BounceAction.Disabled, Math.Max(member.BounceScore, settings.Threshold));
        }

        var today = Day(when);
        var reset = true;
        if (member.LastBounce is { } last)
        {
            var lastDay = Day(last);

            // A last bounce dated after this one (a replayed batch, a clock step back) counts as
            // today; one more than a day ahead was stamped by a clock that was ahead (a board
            // without a clock before NTP) and counts as yesterday's: it kept every later bounce
            // "scored today already" until that date came round (review 61).
            if (lastDay >= today && !IsAhead(last, when))
            {
                return new(BounceAction.AlreadyScoredToday, member.BounceScore);
            }

            reset = !IsAhead(last, when) && today.DayNumber - lastDay.DayNumber > settings.StaleAfterDays;
        }

        // A probe that waited its time without bouncing went through: the address works.
        var wentThrough = member.ProbeSent is not null && !probing;
        var score = reset || wentThrough ? PointsPerBounce : member.BounceScore + PointsPerBounce;
        if (score < settings.Threshold)
        {
            return new(wentThrough ? BounceAction.ProbeWentThrough : reset && member.BounceScore > 0 ? BounceAction.ScoreReset : BounceAction.Scored, score);
        }

        return !settings.Probes || evidence == BounceEvidence.Refusal ? new(BounceAction.Disabled, score)
            : probing ? new(BounceAction.ProbePending, score)
            : new(BounceAction.ProbeSent, score);
    }

    /// <summary>Whether <paramref name="member"/>'s probe was sent and still waits for its bounce at <paramref name="when"/>.</summary>
    /// <remarks>A probe stamped more than a day ahead (a clock that was ahead) waits no longer: it kept the member from being probed again, or disabled, until that date plus the wait (review 61).</remarks>
    public static bool Probing(MemberRecord member, DateTimeOffset when, BounceSettings settings)
        => member.ProbeSent is { } sent && when < sent + settings.ProbeWait && !IsAhead(sent, when);

    /// <summary>Whether a stored time is more than a day after <paramref name="now"/>: stamped by a clock that was ahead, not to be waited for.</summary>
    public static bool IsAhead(DateTimeOffset stamp, DateTimeOffset now) => stamp > now + TimeSpan.FromDays(1);

    /// <summary>
    /// The sweep's next step for a member: the first step after a disable tells the owners and
    /// sends warning 1; each next warning waits the interval after the one before; one interval
    /// after the last warning (at once when there are none) the member is removed, as Mailman 2.1's
    /// cron/disabled does. Nothing for members not disabled by bounces.
    /// </summary>
    public static SweepStep Next(MemberRecord member, DateTimeOffset now, BounceSettings settings)
    {
        if (member.DeliveryEnabled || member.DisabledReason != DisabledReason.Bounces)
        {
            return SweepStep.None;
        }

        var first = member.WarningsSent == 0 && member.LastWarning is null;
        if (!first && member.LastWarning is { } last && now < last + settings.WarningInterval && !IsAhead(last, now))
        {
            return SweepStep.None;
        }

        return member.WarningsSent < settings.Warnings
            ? new SweepStep(first, member.WarningsSent + 1, false)
            : new SweepStep(first, 0, true);
    }

    /// <summary>The UTC day of a time: "once a day" and staleness count days, as Mailman compares dates.</summary>
    public static DateOnly Day(DateTimeOffset t) => DateOnly.FromDateTime(t.UtcDateTime);
}
