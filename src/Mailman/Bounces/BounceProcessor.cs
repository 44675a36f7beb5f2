// The one code path from "list L, address A bounced, permanently or not, at T" to what follows:
// the score (BounceScoring's policy), the probe a mailed report at the threshold earns, delivery
// disabled, the member's warnings and the owners' notices (through NoticeSender), removal. Mail
// returned to a -bounces address (the bounce runner) and refusals at SMTP time (the outgoing
// runner) both come through here. It also decides who a returned message names (a probe's
// one-time address, VERP, else the report) and where a message that names nobody goes. It
// never touches the entry that carried a bounce: runners move entries.
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Mailman.Delivery;
using Mailman.Lists;
using Mailman.Notices;
using Mailman.Queues;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Bounces;

/// <summary>One address of one list that bounced at <paramref name="When"/>, and what says so.</summary>
/// <param name="Said">What the bounce said (how it came, its status, the remote server's words), kept for the owners' notice.</param>
public sealed record BounceEvent(ListName List, string Address, bool Permanent, DateTimeOffset When, BounceEvidence Evidence = BounceEvidence.Mailed, string? Said = null);

/// <summary>What became of one bounced address: the action taken and the score after it.</summary>
public sealed record BounceOutcome(string Address, BounceAction Action, double Score)
{
    /// <summary>For <see cref="BounceAction.ProbeSent"/>: the token of the probe to send, recorded with the score.</summary>
    public string? ProbeToken { get; init; }
}

/// <summary>A message returned to a -bounces address, classified.</summary>
/// <param name="Entry">The queue entry that carries it (names the notices it causes).</param>
/// <param name="Destination">The envelope recipient Postfix gave (the VERP address), if known.</param>
/// <param name="Received">When it arrived: the day it scores on (a replay after a crash scores the same day).</param>
public sealed record ReturnedMessage(string Entry, ListName List, string? Destination, BounceAnalysis Analysis, DateTimeOffset Received)
{
    /// <summary>Whether the message returns one of our own notices (it shows X-Mailman-Notice): never forwarded, never set aside.</summary>
    public Func<bool> IsNoticeBounce { get; init; } = static () => false;

    /// <summary>What the owners get attached when it is forwarded: the message, or for a large one its headers and start (null when it cannot be read).</summary>
    public Func<MimeEntity?> Load { get; init; } = static () => null;

    /// <summary>Its entry was left claimed by a crash and is taken up again: its log line says so (review 106: counting lines over-counted; the crash may have come before or after the entry was logged, review 107).</summary>
    public bool Replayed { get; init; }
}

/// <summary>Where the entry of a returned message goes: finished, or set aside with a reason.</summary>
public enum BounceDisposition
{
    /// <summary>Processed (scored, logged, forwarded): the entry is finished.</summary>
    Done,

    /// <summary>Names nobody who is a member, or nobody at all and the list has no owner to read it: kept in <c>unrecognized</c>.</summary>
    Unrecognized,

    /// <summary>The list does not exist (any more): kept in <c>bad</c>.</summary>
    NoSuchList,
}

/// <summary>The processor's answer for one returned message.</summary>
public sealed record ReturnedResult(BounceDisposition Disposition, string Reason);

public sealed class BounceProcessor(ListStoreFactory lists, NoticeSender notices, TimeProvider time, ILogger<BounceProcessor> logger)
{
    private readonly object _sweep = new();

    /// <summary>
    /// Processes a batch of returned messages: every score change in one transaction, then per
    /// message its log line and, for one that names nobody, the forward to the owners; then the
    /// first notices of members disabled just now. Replaying a batch (a crash before its entries
    /// were finished) changes nothing more: a member scores at most once on the day its bounce
    /// arrived, and each notice's name derives from the entry that caused it.
    /// </summary>
    /// <returns>One result per message, in order.</returns>
    /// <exception cref="IOException">A forward could not be queued (the batch is replayed later).</exception>
    /// <exception cref="Microsoft.Data.Sqlite.SqliteException">The database is busy or broken.</exception>
    public IReadOnlyList<ReturnedResult> Process(IReadOnlyList<ReturnedMessage> messages)
    {
        using var store = lists.Open();
        var known = new Dictionary<ListName, MailingList?>();
        var plans = new Plan[messages.Count];
        var events = new List<BounceEvent>();
        for (var i = 0; i < messages.Count; i++)
        {
            plans[i] = PlanFor(store, known, messages[i], events);
        }

        List<BounceOutcome> outcomes = events.Count == 0 ? [] : store.InTransaction(() => Score(store, known, events));
        var results = new ReturnedResult[messages.Count];
        for (var i = 0; i < messages.Count; i++)
        {
            var plan = plans[i];
            results[i] = Conclude(store, messages[i], plan, outcomes.GetRange(plan.First, plan.Count));
        }

        FirstNotices(events, outcomes);
        Probes(events, outcomes);
        return results;
    }

    /// <summary>
    /// Scores the recipients the SMTP server refused with a 5xx for one post (one call per
    /// delivery chunk), through the same policy as mailed bounces, and logs one line each. Only
    /// refusals about the address score (<see cref="SmtpRefusals.IsAboutTheAddress(SmtpRefusal, out string)"/>); when a
    /// transaction's every recipient (or the whole chunk's, <paramref name="attempted"/> of them)
    /// was refused with the same reply, that is the relay refusing us: nothing of it scores,
    /// and one error line says so.
    /// </summary>
    /// <param name="attempted">How many recipients the chunk's transactions tried in this run and the server answered for good (not those deferred without being accepted).</param>
    /// <exception cref="Microsoft.Data.Sqlite.SqliteException">The database is busy or broken.</exception>
    public List<BounceOutcome> ProcessRefusals(ListName list, string? messageId, IReadOnlyList<SmtpRefusal> refusals, long attempted)
    {
        var now = time.GetUtcNow();
        var alike = SmtpRefusals.RefusedAlike(refusals, attempted);
        if (alike.Count > 0)
        {
            var relay = refusals.Where(r => !r.Ours && alike.Contains(r.Transaction)).ToList();
            logger.LogError("SMTP server refused all {Count} recipients of {Transactions} {TransactionWord} of Message-Id {MessageId} to {ListId} with the same reply, {SmtpStatus} {SmtpResponse}: the relay refuses, not the members; nothing scored (check the relay's configuration)",
                relay.Count, alike.Count, alike.Count == 1 ? "transaction" : "transactions", messageId, list.Fqdn, relay[0].Status, relay[0].Response);
        }

        var scored = new List<SmtpRefusal>();
        foreach (var r in refusals)
        {
            if (!r.Ours && alike.Contains(r.Transaction))
            {
                continue;
            }

            if (SmtpRefusals.IsAboutTheAddress(r, out var why))
            {
                scored.Add(r);
            }
            else
            {
                logger.LogWarning("Bounce: {Recipient} of {ListId} refused Message-Id {MessageId}: {SmtpStatus} {SmtpResponse}; score {Score}: not scored ({Reason})",
                    r.Address, list.Fqdn, messageId, r.Status, r.Response, "-", why);
            }
        }

        if (scored.Count == 0)
        {
            return [];
        }

        using var store = lists.Open();
        var known = new Dictionary<ListName, MailingList?> { [list] = store.FindList(list) };
        var events = scored.Select(r => new BounceEvent(list, r.Address, true, now, BounceEvidence.Refusal, Kept($"refused at SMTP time: {r.Status} {r.Response}"))).ToList();
        var outcomes = store.InTransaction(() => Score(store, known, events));
        for (var i = 0; i < scored.Count; i++)
        {
            var r = scored[i];
            logger.LogWarning("Bounce: {Recipient} of {ListId} refused Message-Id {MessageId}: {SmtpStatus} {SmtpResponse}; score {Score}: {Action}",
                r.Address, list.Fqdn, messageId, r.Status, r.Response, outcomes[i].Score, Describe(outcomes[i].Action));
        }

        FirstNotices(events, outcomes);
        return outcomes;
    }

    /// <summary>
    /// The warning sweep: for every member bounces disabled (on lists that process bounces) whose
    /// next step is due at <paramref name="now"/>, tells the owners of the disable, sends the next
    /// warning, or removes the member. Each notice is queued before the step is recorded, under a
    /// name derived from (member, disable, step): a crash in between sends nothing twice while the
    /// notice still waits in out. Serialized: one sweep at a time in this process.
    /// </summary>
    /// <param name="only">Just these members (the ones disabled a moment ago); null: every list.</param>
    /// <returns>The steps taken.</returns>
    /// <exception cref="IOException">A notice could not be queued; the next sweep tries again.</exception>
    public int Sweep(DateTimeOffset now, IReadOnlyCollection<(ListName List, string Address)>? only = null)
    {
        lock (_sweep)
        {
            using var store = lists.Open();
            var steps = 0;
            foreach (var (list, member) in Candidates(store, only))
            {
                var settings = BounceSettings.Of(list);
                var step = BounceScoring.Next(member, now, settings);
                if (!step.IsNone)
                {
                    Take(store, list, settings, member, step, now);
                    steps++;
                }
            }

            return steps;
        }
    }

    private static IEnumerable<(MailingList List, MemberRecord Member)> Candidates(ListStore store, IReadOnlyCollection<(ListName List, string Address)>? only)
    {
        if (only is null)
        {
            foreach (var list in store.AllLists().Where(l => l.ProcessBounces))
            {
                foreach (var member in store.BounceDisabledMembers(list.Name))
                {
                    yield return (list, member);
                }
            }

            yield break;
        }

        foreach (var (name, address) in only)
        {
            if (store.FindList(name) is { ProcessBounces: true } list && store.FindMember(name, address) is { } member)
            {
                yield return (list, member);
            }
        }
    }

    private void Take(ListStore store, MailingList list, BounceSettings settings, MemberRecord member, SweepStep step, DateTimeOffset now)
    {
        var trigger = TriggerName(list.Name, member);
        var values = new Dictionary<string, string>
        {
            ["member"] = member.Address,
            ["score"] = member.BounceScore.ToString("0.##", CultureInfo.InvariantCulture),
            ["warnings_left"] = Math.Max(0, settings.Warnings - step.Warning).ToString(CultureInfo.InvariantCulture),
            // Review 70: the owners were sent to the server's log, which few owners can read.
            ["bounce_day"] = member.LastBounce?.ToUniversalTime().ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? "-",
            ["bounce_said"] = member.LastBounceSaid ?? "(not recorded: scored by an older version)",
        };

        if (step.Remove)
        {
            var told = settings.NotifyOwnerOnRemoval ? TellOwners(store, list, NoticeTemplates.OwnerRemoved, values, trigger, "bounce-removal-owner", now) : 0;
            var removed = store.RemoveBounceDisabled(list.Name, member.Address);
            logger.LogWarning("Bounce removal: {Member} {Result} {ListId} after {Warnings} warnings; {Owners} owners told",
                member.Address, removed ? "removed from" : "no longer disabled by bounces on", list.Name.Fqdn, member.WarningsSent, told);
            return;
        }

        if (step.NotifyOwnersOfDisable && settings.NotifyOwnerOnDisable)
        {
            TellOwners(store, list, NoticeTemplates.OwnerDisabled, values, trigger, "bounce-disable-owner", now);
        }

        // From the bounces address (a bounce of the warning is residual: it names a disabled
        // member); replies go to the owners.
        var result = notices.Send(new Notice(list, NoticeTemplates.DisabledWarning, member.Address)
        {
            ToName = member.DisplayName,
            From = list.Name.BouncesAddress,
            ReplyTo = list.Name.OwnerAddress,
            Values = values,
        }, trigger, "bounce-warning " + step.Warning.ToString(CultureInfo.InvariantCulture));
        var recorded = store.RecordBounceWarning(list.Name, member.Address, step.Warning, now);
        logger.LogInformation("Bounce warning {Warning} of {Warnings} to {Member} of {ListId}: {Result}",
            step.Warning, settings.Warnings, member.Address, list.Name.Fqdn,
            !recorded ? "the member's state changed meanwhile" : result.Queued ? "queued as " + result.Entry : "not sent: " + result.NotSentBecause);
    }

    // The owners hear of a member disabled or removed one by one up to the list's
    // max_owner_bounce_notices_per_day members a day (UTC); the first past it brings each owner
    // one note, the rest are in the bounce log. A relay or a provider refusing everyone for an
    // hour disabled 493 members in a minute, each a notice to each owner (review 99). A member's
    // step takes its number once: repeated after a crash it is decided as it was.
    private int TellOwners(ListStore store, MailingList list, string template, Dictionary<string, string> values, string trigger, string purpose, DateTimeOffset now)
    {
        var owners = store.Roles(list.Name, ListRole.Owner);
        var limit = owners.Count > 0 ? list.MaxOwnerBounceNoticesPerDay : 0;
        var day = BounceScoring.Day(now);
        var item = trigger + " " + purpose;
        try
        {
            var turn = store.TakeDailyTurn(list.Name, OwnerNoticeCounter, item, day, limit);
            if (turn == DailyTurn.OnItsOwn)
            {
                var told = 0;
                foreach (var owner in owners)
                {
                    var result = notices.Send(new Notice(list, template, owner.Address) { ToName = owner.DisplayName, Values = values },
                        trigger, purpose + " " + owner.Address.ToLowerInvariant());
                    told += result.Queued ? 1 : 0;
                }

                return told;
            }

            if (turn == DailyTurn.FirstPast)
            {
                foreach (var owner in owners)
                {
                    notices.Send(new Notice(list, NoticeTemplates.OwnerBounceLimit, owner.Address)
                    {
                        ToName = owner.DisplayName,
                        Values = new Dictionary<string, string> { ["count"] = limit.ToString(CultureInfo.InvariantCulture) },
                    }, trigger, "bounce-limit-owner " + owner.Address.ToLowerInvariant());
                }
            }

            logger.LogWarning("Bounce: the owners of {ListId} are not told of {Member} on its own: past the day's {Limit} members disabled or removed by bounces told one by one (max_owner_bounce_notices_per_day){Note}",
                list.Name.Fqdn, values["member"], limit, turn == DailyTurn.FirstPast ? "; each owner gets one note saying so" : "");
            return 0;
        }
        catch (Exception) when (limit > 0)
        {
            store.ReturnDailyTurn(list.Name, OwnerNoticeCounter, item, day);
            throw;
        }
    }

    /// <summary>The list's daily counter of the members whose disable or removal the owners were told of one by one.</summary>
    private const string OwnerNoticeCounter = "owner-bounce-notices";

    /// <summary>
    /// A stable entry name for a member's disable episode: the disable time and a hash of (list,
    /// address). The notices of the episode derive their names from it; a later disable (after a
    /// re-enable) is another episode with other names.
    /// </summary>
    internal static string TriggerName(ListName list, MemberRecord member) => TriggerName(list, member.Address, member.DisabledAt ?? DateTimeOffset.UnixEpoch);

    /// <summary>The entry name of a member's event at <paramref name="at"/> (a disable, a probe): its time and a hash of (list, address).</summary>
    internal static string TriggerName(ListName list, string address, DateTimeOffset at)
    {
        var micros = Math.Clamp((at - DateTimeOffset.UnixEpoch).Ticks / 10, 0, 99_999_999_999_999_999);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(list.Fqdn + "\n" + address.Trim().ToLowerInvariant()));
        return micros.ToString("D17", CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(hash.AsSpan(0, 4));
    }

    // Members disabled by this batch get their first notices now; a failure here only delays
    // them to the next sweep (at start-up and every Bounces:SweepInterval), it loses nothing.
    private void FirstNotices(List<BounceEvent> events, List<BounceOutcome> outcomes)
    {
        var disabled = new List<(ListName, string)>();
        for (var i = 0; i < outcomes.Count; i++)
        {
            if (outcomes[i].Action == BounceAction.Disabled)
            {
                disabled.Add((events[i].List, events[i].Address));
            }
        }

        NoticesForDisabled(disabled);
    }

    private void NoticesForDisabled(List<(ListName, string)> disabled)
    {
        if (disabled.Count == 0)
        {
            return;
        }

        try
        {
            Sweep(time.GetUtcNow(), disabled);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
        {
            logger.LogError(e, "Bounce notices for {Count} members disabled just now could not be queued: {Error}; the next sweep sends them", disabled.Count, e.Message);
        }
    }

    // Members whose score reached the threshold on a mailed report get their probe now, from a
    // one-time bounce address; only its bounce (or a refusal at SMTP time while it waits)
    // disables. Its wait starts when it is queued (probe_sent). It is named after the member and
    // the report that recorded it: a replay of that report before the probe was marked sent
    // queues it, and finds it if it waits in out already. A probe that cannot be queued is
    // forgotten (the next report at the threshold probes again); one Notices will not send (to
    // an address of a list of this server) cannot bounce: the member is disabled without it, as
    // with verp_probes false.
    private void Probes(List<BounceEvent> events, List<BounceOutcome> outcomes)
    {
        var disabled = new List<(ListName, string)>();
        for (var i = 0; i < outcomes.Count; i++)
        {
            if (outcomes[i].ProbeToken is not { } token)
            {
                continue;
            }

            var e = events[i];
            try
            {
                using var store = lists.Open();
                if (store.FindList(e.List) is not { } list || store.FindMember(e.List, e.Address) is not { DeliveryEnabled: true } member
                    || member.ProbeToken != token)
                {
                    continue; // disabled, re-enabled or probed anew meanwhile
                }

                NoticeResult result;
                try
                {
                    result = notices.Send(new Notice(list, NoticeTemplates.Probe, member.Address)
                    {
                        ToName = member.DisplayName,
                        From = list.Name.BouncesAddress,
                        ReplyTo = list.Name.OwnerAddress,
                        EnvelopeSender = Verp.ProbeAddress(list.Name, token),
                        ToMember = true,
                        Values = new Dictionary<string, string>
                        {
                            ["score"] = Number(member.BounceScore),
                            ["count"] = list.VerpProbeWaitDays.ToString(CultureInfo.InvariantCulture),
                        },
                    }, TriggerName(list.Name, member.Address, member.LastBounce ?? e.When), "bounce-probe");
                }
                catch (Exception x) when (x is IOException or UnauthorizedAccessException)
                {
                    store.ClearProbe(list.Name, member.Address, token);
                    logger.LogError(x, "Bounce probe to {Member} of {ListId} could not be queued: {Error}; forgotten, the next report at the threshold probes again",
                        member.Address, list.Name.Fqdn, x.Message);
                    continue;
                }

                if (result.Queued)
                {
                    // The entry, not the envelope sender: the token stays out of the logs.
                    if (store.MarkProbeSent(list.Name, member.Address, token, time.GetUtcNow()))
                    {
                        logger.LogWarning("Bounce probe to {Member} of {ListId}, score {Score}: queued as {QueueEntry}; delivery stays on unless it bounces within {Days} days",
                            member.Address, list.Name.Fqdn, Number(member.BounceScore), result.Entry, list.VerpProbeWaitDays);
                    }
                    else
                    {
                        logger.LogWarning("Bounce probe to {Member} of {ListId} queued as {QueueEntry}, but the member was enabled, disabled or removed meanwhile: its bounce will count for nothing",
                            member.Address, list.Name.Fqdn, result.Entry);
                    }
                }
                else if (store.RecordBounce(list.Name, member.Address, member.BounceScore, member.LastBounce ?? e.When, disable: true, whileProbe: token, said: e.Said))
                {
                    logger.LogWarning("Bounce probe to {Member} of {ListId} not sent: {Reason}; score {Score}: delivery disabled without it",
                        member.Address, list.Name.Fqdn, result.NotSentBecause, Number(member.BounceScore));
                    disabled.Add((list.Name, member.Address));
                }
            }
            catch (Microsoft.Data.Sqlite.SqliteException x)
            {
                logger.LogError(x, "Bounce probe to {Member} of {ListId} could not be queued: {Error}; a probe not marked sent is sent anew at the next report at the threshold",
                    e.Address, e.List.Fqdn, x.Message);
            }
        }

        NoticesForDisabled(disabled);
    }

    /// <summary>Scores every event, in order, on the open transaction of <paramref name="store"/>.</summary>
    private static List<BounceOutcome> Score(ListStore store, Dictionary<ListName, MailingList?> known, List<BounceEvent> events)
    {
        var outcomes = new List<BounceOutcome>(events.Count);
        foreach (var e in events)
        {
            if (!known.TryGetValue(e.List, out var list))
            {
                known[e.List] = list = store.FindList(e.List);
            }

            if (list is null)
            {
                outcomes.Add(new(e.Address, BounceAction.NoSuchList, 0));
                continue;
            }

            if (!list.ProcessBounces)
            {
                outcomes.Add(new(e.Address, BounceAction.ProcessingOff, 0));
                continue;
            }

            var member = store.FindMember(e.List, e.Address);
            if (member is null)
            {
                outcomes.Add(new(e.Address, BounceAction.NotAMember, 0));
                continue;
            }

            if (!e.Permanent)
            {
                outcomes.Add(new(e.Address, BounceAction.Temporary, member.BounceScore));
                continue;
            }

            var settings = BounceSettings.Of(list);
            var decision = BounceScoring.Score(member, e.When, settings, e.Evidence);
            var token = decision.Action == BounceAction.ProbeSent ? Verp.NewProbeToken()
                : decision.Action == BounceAction.AlreadyScoredToday && IsReplayOfProbe(member, e) ? member.ProbeToken
                : null;
            if (decision.Writes
                && !(token is not null
                    ? store.RecordProbe(e.List, e.Address, decision.Score, e.When, token, e.Said)
                    : store.RecordBounce(e.List, e.Address, decision.Score, e.When, decision.Action == BounceAction.Disabled,
                        clearProbe: decision.Action == BounceAction.ProbeWentThrough, said: e.Said)))
            {
                decision = new(BounceAction.AlreadyDisabled, member.BounceScore);
                token = null;
            }

            outcomes.Add(new(e.Address, decision.Action, decision.Score) { ProbeToken = token });
        }

        return outcomes;
    }

    // The report that recorded the member's probe, processed again before the probe was marked
    // sent (its batch replayed after a crash in between): the probe goes out now, under the name
    // it had then.
    private static bool IsReplayOfProbe(MemberRecord member, BounceEvent e)
        => e.Evidence == BounceEvidence.Mailed && member.ProbeToken is not null && member.ProbeSent is null && member.LastBounce is { } last
            && ListStore.Timestamp(last) == ListStore.Timestamp(e.When);

    /// <summary>What a returned message means before anything is written: who it names, or why it names nobody.</summary>
    /// <param name="Untrusted">Addresses of a report without VERP on a list that sends with VERP: not scored.</param>
    /// <param name="Probe">The message came back to a probe's one-time address (Verp is the member it was sent to).</param>
    /// <param name="NotAbout">Addresses of a report without VERP whose status is about the message or our server: not scored.</param>
    /// <param name="Local">Addresses of a report without VERP that are addresses of lists of this server: not scored.</param>
    private sealed record Plan(string Kind, MailingList? List, string? Verp, int First, int Count, int Untrusted = 0, bool Probe = false, int NotAbout = 0, int Local = 0)
    {
        /// <summary>For "probe-policy", "verp-policy" and NotAbout: the report's status, which is not about the address.</summary>
        public string? Status { get; init; }
    }

    // The status of a report whose every address has one and each puts the failure on the
    // message or our server (SmtpRefusals.IsAboutTheMessageOrUs: 5.7.x policy, 5.3.4 size, a bare 554, ...);
    // null when one does not, or when the report gives no status (a format without one: it
    // cannot say otherwise).
    private static string? PolicyOnly(BounceAnalysis analysis)
        => analysis.Addresses.Count == 0 || analysis.Addresses.Any(a => !SmtpRefusals.IsAboutTheMessageOrUs(a.Status, a.Diagnostic, a.Address))
            ? null
            : Said(analysis.Addresses[0]);

    // What a report says of an address, for the log: its status, or what the remote server
    // said when the format has no status (qmail, Exim, old Postfix: review 61), quoted and cut.
    private static string Said(BouncedAddress a)
        => a.Status ?? (a.Diagnostic is { } d ? $"\"{(d.Length > 100 ? d[..97] + "..." : d)}\"" : "its report");

    // What a report says of an address, for the owners: its status and the remote server's words,
    // or, from a format that gives neither (qmail's, Yahoo's, ...), which format it was.
    private static string Words(BouncedAddress? a, string? detector)
        => string.Join(' ', new[] { a?.Status, a?.Diagnostic }.Where(s => !string.IsNullOrWhiteSpace(s))) is { Length: > 0 } w ? w
            : $"a permanent failure ({detector ?? "unknown"} format), no status or diagnostic given";

    // One line, bounded: it comes from mail and goes into a notice and `members show`.
    private static string Kept(string said)
    {
        var line = Member.OneLine(said).Trim();
        return line.Length <= 400 ? line : line[..(char.IsHighSurrogate(line[396]) ? 396 : 397)] + "...";
    }

    // VERP first: the envelope recipient names the member whatever the report says, but only a
    // report recognised as a permanent failure scores; a delay notice, an auto-reply, a complaint
    // and mail we do not recognise (a human reply, an out-of-office without RFC 3834 headers, a
    // challenge) do not. Without VERP the report's own addresses are scored, if they are members,
    // unless the list sends with VERP: then its copies' bounces come to VERP addresses, and a
    // report at the plain address is trusted only for members VERP cannot encode (anyone can
    // mail LIST-bounces@ a report naming every member).
    private static Plan PlanFor(ListStore store, Dictionary<ListName, MailingList?> known, ReturnedMessage m, List<BounceEvent> events)
    {
        if (!known.TryGetValue(m.List, out var list))
        {
            known[m.List] = list = store.FindList(m.List);
        }

        if (list is null)
        {
            return new("no-list", null, null, events.Count, 0);
        }

        // A probe's one-time address names the member only while the probe waits for its bounce.
        string? verp = null;
        var probe = false;
        if (m.Destination is { } to && Verp.DecodeProbe(m.List, to) is { } token)
        {
            if (store.FindProbe(m.List, token) is not { } probed || !BounceScoring.Probing(probed, m.Received, BounceSettings.Of(list)))
            {
                return new("probe-unknown", list, null, events.Count, 0);
            }

            verp = probed.Address;
            probe = true;
        }
        else if (m.Destination is { } destination && Verp.Decode(m.List, destination) is { } decoded)
        {
            verp = MemberAddress(store, m.List, decoded);
        }

        if (!list.ProcessBounces)
        {
            return new("off", list, verp, events.Count, 0);
        }

        var kind = m.Analysis.Kind;
        if (kind is BounceKind.Temporary or BounceKind.NotABounce)
        {
            return new("info", list, verp, events.Count, 0);
        }

        var first = events.Count;
        if (verp is not null)
        {
            if (kind != BounceKind.Permanent)
            {
                return new(store.FindMember(m.List, verp) is null ? "verp-nobody" : "verp-unrecognized", list, verp, first, 0);
            }

            // A member that is a list of this server is delivered here: a report mailed about it
            // is forged (anyone can write one, and it cannot be probed: Notices never write to a
            // list), and disabled at the threshold without a probe it cut an umbrella list's
            // members off (review 61). Only our own SMTP session's refusals score it.
            if (!probe && Moderation.HeldPosts.IsListAddress(store, verp))
            {
                return new("verp-local", list, verp, first, 0);
            }

            // A report scores, and a probe's bounce disables, only when it may be about the
            // address: a provider refusing our server (5.7.x policy, a blocklist, DMARC) or the
            // post (its size) would otherwise score every member there (review 49).
            if (PolicyOnly(m.Analysis) is { } status)
            {
                return new(probe ? "probe-policy" : "verp-policy", list, verp, first, 0, Probe: probe) { Status = status };
            }

            events.Add(new(m.List, verp, true, m.Received, probe ? BounceEvidence.Probe : BounceEvidence.Mailed,
                Kept((probe ? "the probe bounced: " : "a mailed report: ") + Words(m.Analysis.Addresses.Count > 0 ? m.Analysis.Addresses[0] : null, m.Analysis.Detector))));
            return new("verp", list, verp, first, 1, Probe: probe);
        }

        if (kind == BounceKind.Permanent && m.Analysis.Addresses.Count > 0)
        {
            var untrusted = 0;
            var notAbout = 0;
            var local = 0;
            string? notAboutStatus = null;
            foreach (var a in m.Analysis.Addresses)
            {
                if (list.Personalize == Personalization.Full && Verp.TryEncode(m.List, a.Address) is not null)
                {
                    untrusted++;
                    continue;
                }

                if (Moderation.HeldPosts.IsListAddress(store, a.Address))
                {
                    local++;
                    continue;
                }

                if (SmtpRefusals.IsAboutTheMessageOrUs(a.Status, a.Diagnostic, a.Address))
                {
                    notAbout++;
                    notAboutStatus ??= Said(a);
                    continue;
                }

                events.Add(new(m.List, a.Address, true, m.Received, Said: Kept("a mailed report: " + Words(a, m.Analysis.Detector))));
            }

            return new("report", list, null, first, events.Count - first, untrusted, NotAbout: notAbout, Local: local) { Status = notAboutStatus };
        }

        return new("nobody", list, null, first, 0);
    }

    // The member as the list spells it: VERP carries an IDN domain as A-labels (MAIL FROM must
    // be ASCII) while the member may be stored with U-labels, and a relay may change the case of
    // the local part it returns to (review 61: the log named M2@MEMBER.EXAMPLE); one lookup by
    // the member's key.
    private static string MemberAddress(ListStore store, ListName list, string decoded)
        => store.FindMember(list, decoded)?.Address ?? decoded;

    private ReturnedResult Conclude(ListStore store, ReturnedMessage m, Plan plan, List<BounceOutcome> outcomes)
    {
        var a = m.Analysis;
        var detector = a.Detector ?? "-";
        switch (plan.Kind)
        {
            case "no-list":
                Log(m, "nobody", "-", "the list does not exist: entry kept in bad");
                return new(BounceDisposition.NoSuchList, $"bounce for {m.List.Fqdn}, which does not exist");

            case "off":
                Log(m, plan.Verp ?? Addresses(a), "-", "process_bounces is off: not scored");
                return new(BounceDisposition.Done, "");

            case "info" when a.Complaint is { } complaint:
                var who = plan.Verp ?? (complaint.OriginalRecipients.Count > 0 ? string.Join(' ', complaint.OriginalRecipients) : "unknown");
                logger.LogWarning("Bounce: {Who} of {ListId}, {Kind} ({Detector}), score {Score}: complaint ({FeedbackType}) logged, not scored (entry {QueueEntry})",
                    who, m.List.Fqdn, a.KindName, detector, "-", complaint.FeedbackType ?? "unknown", m.Entry);
                return new(BounceDisposition.Done, "");

            case "info":
                Log(m, plan.Verp ?? Addresses(a), ScoreText(store, m.List, plan.Verp), a.Kind == BounceKind.Temporary ? "temporary: not scored" : "not a bounce: not scored");
                return new(BounceDisposition.Done, "");

            case "verp":
                var outcome = outcomes[0];
                if (outcome.Action != BounceAction.NotAMember)
                {
                    var probeNote = !plan.Probe ? "" : outcome.Action == BounceAction.Disabled ? "its probe bounced: " : "a bounce of its probe, no longer waited for: ";
                    Log(m, plan.Verp!, Number(outcome.Score), probeNote + Describe(outcome.Action));
                    return new(BounceDisposition.Done, "");
                }

                // A notice to an owner or a poster that bounced, or a forged local part: never
                // forwarded (no loops), never scored. An owner's or moderator's is said as such:
                // the list's notices to them do not arrive, and nobody else would tell (review 100).
                if (a.Kind == BounceKind.Permanent && (store.HasRole(m.List, ListRole.Owner, plan.Verp!) ? "owners" : store.HasRole(m.List, ListRole.Moderator, plan.Verp!) ? "moderators" : null) is { } roles)
                {
                    logger.LogWarning("Bounce: {Who}, one of the {Roles} of {ListId}, bounced a notice permanently: the list's notices to that address do not arrive; check it with `mailman lists {Roles} {ListId} list` (entry {QueueEntry})",
                        plan.Verp, roles, m.List.Fqdn, roles, m.List.Fqdn, m.Entry);
                }

                return NamesNobody(m, plan.Verp!, $"VERP names {plan.Verp}, who is not a member");

            case "verp-unrecognized" when store.HasRole(m.List, ListRole.Owner, plan.Verp!) || store.HasRole(m.List, ListRole.Moderator, plan.Verp!):
                // The member is also an owner or moderator: this may answer one of our notices to
                // them (a challenge-response robot, an auto-responder without markers), and a
                // forward to the owners would be answered again (review 27: a loop through an
                // owner's own mailbox). Kept for the operator, as for an owner who is no member.
                Log(m, plan.Verp!, ScoreText(store, m.List, plan.Verp), "unrecognized mail at the VERP address of an owner or moderator: not scored, not forwarded (it may answer a notice), entry kept in unrecognized");
                return new(BounceDisposition.Unrecognized, $"VERP names {plan.Verp}, an owner or moderator of the list, and the message is not a recognised bounce");

            case "verp-unrecognized":
                // Not a report we know: kept or forwarded as any unrecognized mail, never scored.
                return Unrecognized(store, m, plan.List!, plan.Verp!);

            case "verp-local":
                Log(m, plan.Verp!, ScoreText(store, m.List, plan.Verp), "a list of this server, delivered here: a mailed report about it is not scored (our own SMTP refusals are)");
                return new(BounceDisposition.Done, "");

            case "verp-policy":
                Log(m, plan.Verp!, ScoreText(store, m.List, plan.Verp), $"{plan.Status} is about the message or our server, not the address: not scored");
                return new(BounceDisposition.Done, "");

            case "probe-policy":
                Log(m, plan.Verp!, ScoreText(store, m.List, plan.Verp), $"its probe bounced with {plan.Status}, which is not about the address: not scored, the probe still waits");
                return new(BounceDisposition.Done, "");

            case "probe-unknown":
                return NamesNobody(m, Verp.Redact(m.Destination!), "a probe address that names no outstanding probe (it bounced already, its wait is over, or it was never sent)");

            case "verp-nobody":
                return NamesNobody(m, plan.Verp!, $"VERP names {plan.Verp}, who is not a member, and the message is not a recognised bounce");

            case "report":
                var distrust = string.Join("; ", ((string[])[
                    plan.Untrusted == 0 ? "" : $"{plan.Untrusted} addresses not scored: the list sends with VERP and this report came without it (anyone can mail one)",
                    plan.NotAbout == 0 ? "" : $"{plan.NotAbout} addresses not scored: {plan.Status} is about the message or our server, not the address",
                    plan.Local == 0 ? "" : $"{plan.Local} addresses not scored: lists of this server, delivered here",
                ]).Where(n => n.Length > 0));
                if (outcomes.Any(o => o.Action != BounceAction.NotAMember))
                {
                    Log(m, Addresses(a), outcomes.Count == 1 ? Number(outcomes[0].Score) : "-", Summary(outcomes) + (distrust.Length > 0 ? "; " + distrust : ""));
                    return new(BounceDisposition.Done, "");
                }

                if ((plan.NotAbout > 0 || plan.Local > 0) && plan.Untrusted == 0)
                {
                    Log(m, Addresses(a), "-", distrust);
                    return new(BounceDisposition.Done, "");
                }

                return NamesNobody(m, Addresses(a), distrust.Length > 0 ? distrust : "the report names no member");

            default:
                return Unrecognized(store, m, plan.List!, "nobody");
        }
    }

    private ReturnedResult NamesNobody(ReturnedMessage m, string who, string reason)
    {
        if (m.IsNoticeBounce())
        {
            Log(m, who, "-", reason + "; a bounce of one of our notices: logged only");
            return new(BounceDisposition.Done, "");
        }

        Log(m, who, "-", reason + ": not scored, entry kept in unrecognized");
        return new(BounceDisposition.Unrecognized, reason);
    }

    // Names nobody, or VERP names a member but the message is no report we know: the owners read
    // it (Mailman's "unrecognized bounce"), unless it returns one of our own notices (a notice
    // about a notice would be a loop) or the list says not to. Never scored.
    private ReturnedResult Unrecognized(ListStore store, ReturnedMessage m, MailingList list, string who)
    {
        var score = who == "nobody" ? "-" : ScoreText(store, m.List, who);
        if (m.IsNoticeBounce())
        {
            Log(m, who, score, "unrecognized bounce of one of our notices: logged only, never forwarded");
            return new(BounceDisposition.Done, "");
        }

        // Review 73: a member's bounce address is known to whoever knows the member's; what is
        // sent there goes to the owners, up to the daily bound, unless they turn it off.
        if (!list.BounceUnrecognizedGoesToListOwner)
        {
            Log(m, who, score, "unrecognized: not scored, not forwarded (bounce_unrecognized_goes_to_list_owner is false), entry kept in unrecognized");
            return new(BounceDisposition.Unrecognized, "unrecognized bounce; bounce_unrecognized_goes_to_list_owner is false");
        }

        var owners = store.Roles(list.Name, ListRole.Owner);
        if (owners.Count == 0)
        {
            Log(m, who, score, "unrecognized and the list has no owner: not scored, entry kept in unrecognized");
            return new(BounceDisposition.Unrecognized, "unrecognized bounce; the list has no owner to forward it to");
        }

        var message = m.Load();
        if (message is null)
        {
            Log(m, who, score, "unrecognized and unreadable: not scored, entry kept in unrecognized");
            return new(BounceDisposition.Unrecognized, "unrecognized bounce that could not be read to forward");
        }

        // A day's forwards are bounded: an owner's mail system that returns each forward as
        // something we do not recognize, without our headers, would be sent it again for ever
        // (review 61). Past the bound they wait in unrecognized for the operator.
        // Counted once per entry: a batch replayed after a crash decides each again the same way
        // (review 62: the replay counted the killed run's forwards a second time).
        var today = BounceScoring.Day(time.GetUtcNow());
        if (store.CountDailyOnce(list.Name, ForwardCounter, m.Entry, today) > UnrecognizedForwardsPerDay)
        {
            Log(m, who, score, $"unrecognized: the day's {UnrecognizedForwardsPerDay} forwards to the owners are made: not forwarded, entry kept in unrecognized");
            return new(BounceDisposition.Unrecognized, $"unrecognized bounce past the day's {UnrecognizedForwardsPerDay} forwards to the owners");
        }

        var forwarded = 0;
        foreach (var owner in owners)
        {
            var result = notices.Send(new Notice(list, NoticeTemplates.OwnerUnrecognizedBounce, owner.Address)
            {
                ToName = owner.DisplayName,
                Attachment = message,
            }, m.Entry, "unrecognized-bounce " + owner.Address.ToLowerInvariant());
            forwarded += result.Queued ? 1 : 0;
        }

        if (forwarded == 0)
        {
            store.UncountDailyOnce(list.Name, ForwardCounter, m.Entry, today);
            Log(m, who, score, "unrecognized and no owner can be sent it: not scored, entry kept in unrecognized");
            return new(BounceDisposition.Unrecognized, "unrecognized bounce; no owner address can be sent it");
        }

        Log(m, who, score, who == "nobody" ? $"unrecognized: forwarded to {forwarded} owners" : $"unrecognized: not scored, forwarded to {forwarded} owners");
        return new(BounceDisposition.Done, "");
    }

    /// <summary>Unrecognized mail forwarded to a list's owners per day (UTC) at most.</summary>
    public const int UnrecognizedForwardsPerDay = 100;

    private const string ForwardCounter = "unrecognized-forwards";

    private void Log(ReturnedMessage m, string who, string score, string action)
        => logger.LogInformation("Bounce: {Who} of {ListId}, {Kind} ({Detector}), score {Score}: {Action} (entry {QueueEntry})",
            who, m.List.Fqdn, m.Analysis.KindName, m.Analysis.Detector ?? "-", score, action, m.Replayed ? m.Entry + ", taken up again after a crash" : m.Entry);

    private static string ScoreText(ListStore store, ListName list, string? address)
        => address is not null && store.FindMember(list, address) is { } member ? Number(member.BounceScore) : "-";

    private static string Number(double score) => score.ToString("0.##", CultureInfo.InvariantCulture);

    /// <summary>The report's addresses for a log line: at most ten, then how many more.</summary>
    private static string Addresses(BounceAnalysis a)
        => a.Addresses.Count == 0 ? "nobody"
            : a.Addresses.Count <= 10 ? string.Join(' ', a.Addresses.Select(x => x.Address))
            : string.Join(' ', a.Addresses.Take(10).Select(x => x.Address)) + $" and {a.Addresses.Count - 10} more";

    /// <summary>Per address for a few, counts by action for many (a DSN may name 10,000).</summary>
    private static string Summary(List<BounceOutcome> outcomes)
        => outcomes.Count <= 10
            ? string.Join("; ", outcomes.Select(o => $"{o.Address} {Describe(o.Action)}" + (o.Action == BounceAction.NotAMember ? "" : $" (score {Number(o.Score)})")))
            : string.Join(", ", outcomes.GroupBy(o => o.Action).OrderBy(g => g.Key).Select(g => $"{g.Count()} {Describe(g.Key)}"));

    /// <summary>The action as log lines write it.</summary>
    public static string Describe(BounceAction action) => action switch
    {
        BounceAction.Scored => "scored",
        BounceAction.ScoreReset => "stale score reset, scored",
        BounceAction.Disabled => "delivery disabled",
        BounceAction.ProbeSent => "threshold reached: probing, delivery stays on unless the probe bounces",
        BounceAction.ProbePending => "scored, the probe sent before awaits its bounce",
        BounceAction.ProbeWentThrough => "the last probe went through: score reset, scored",
        BounceAction.AlreadyScoredToday => "scored today already",
        BounceAction.AlreadyDisabled => "delivery already disabled (residual bounce)",
        BounceAction.Temporary => "temporary: not scored",
        BounceAction.NotAMember => "not a member",
        BounceAction.ProcessingOff => "process_bounces is off: not scored",
        _ => "the list does not exist",
    };
}
