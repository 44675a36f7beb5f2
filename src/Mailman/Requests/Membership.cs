// Joining and leaving, however they were asked for (a confirmed mail, an open policy, a
// moderator, one click, the command line): the store change, one log line, and the welcome or
// goodbye notice when the list sends them (and a moderator's refusal, and the moderators' notices
// of a confirmed confirm_then_moderate request, owed the same way). The
// notice is recorded as owed in the change's own transaction and the record marked paid once the
// notice is queued: a run killed in between (or an out queue that cannot be written) leaves it
// owed, and the replay of the same entry, or PayOwedNotices for a trigger no request entry holds
// any more, sends it under the same name; a confirmation's replay after the queuing finds it
// paid, and answers as the first run.
using Mailman.Lists;
using Mailman.Notices;
using Mailman.Queues;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Requests;

/// <summary>What a join did; null Result when the pending request it confirmed was used already.</summary>
public sealed record JoinOutcome(JoinResult? Result, bool WelcomeSent);

/// <summary>What a leave did: false Changed when the address was not (or no longer) a member.</summary>
public sealed record LeaveOutcome(bool Changed, bool GoodbyeSent, bool PendingUsed = false);

public sealed class Membership(ListStoreFactory lists, NoticeSender notices, SubscriptionModeration moderation, QueueSet queues, TimeProvider time, Instance.InstancePaths paths, ILogger<Membership> logger)
{
    private volatile bool _owing;

    /// <summary>
    /// Whether a notice may be owed that this process left unpaid (its change's run stopped
    /// before queuing it, or <see cref="PayOwedNotices"/> left one for later): the idle request
    /// runner looks only then, and the daemon's start always.
    /// </summary>
    public bool MayOwe => _owing;

    /// <summary>
    /// Subscribes <paramref name="address"/> (or re-enables it) and welcomes it when the list does
    /// so (<paramref name="welcome"/> overrides the list's send_welcome_message). With
    /// <paramref name="pendingId"/>, the pending request is used in the same transaction: single use.
    /// </summary>
    /// <param name="answering">The message the welcome answers (RFC 3834 reply rules, daily limit); null: a generated notice.</param>
    /// <param name="replayed">What this entry's use of the request did (it is run again): nothing changes, the answer is the first run's.</param>
    public JoinOutcome Join(MailingList list, string address, string displayName, string how, string triggerEntry,
        MimeMessage? answering = null, string? answeringSender = null, long? pendingId = null, bool? welcome = null, string? replayed = null)
    {
        var purpose = Purpose(NoticeTemplates.Welcome, address);
        var welcomes = welcome ?? list.SendWelcomeMessage;
        JoinResult? result;
        OwedNotice? owed;
        using (var store = lists.Open())
        {
            // The replay of this very join (its run stopped before the welcome was queued; for a
            // confirmation, or after). A paid one is another join of the same entry otherwise
            // (review 127: "join, leave, subscribe" in one message left the address out).
            owed = ThisChange(store.FindOwedNotice(triggerEntry, purpose), replayed);
            if (owed is null && replayed is not null)
            {
                return new JoinOutcome(Enum.TryParse<JoinResult>(replayed, out var first) ? first : JoinResult.AlreadyMember, false);
            }

            result = owed is not null ? JoinResult.Added : store.InTransaction(() =>
            {
                string? token = null;
                if (pendingId is { } id && (token = store.TakePending(id, triggerEntry, time.GetUtcNow())) is null)
                {
                    return (JoinResult?)null;
                }

                var joined = store.Join(list.Name, address, displayName, time.GetUtcNow());
                if (token is not null)
                {
                    store.UsedOutcome(token, joined.ToString());
                }

                if (welcomes && joined is JoinResult.Added or JoinResult.Reenabled)
                {
                    store.OweNotice(list.Name, NoticeTemplates.Welcome, address, displayName, triggerEntry, purpose, time.GetUtcNow());
                }

                return joined;
            });
        }

        if (result is not (JoinResult.Added or JoinResult.Reenabled))
        {
            return new JoinOutcome(result, false);
        }

        if (owed is null)
        {
            logger.LogInformation("Join: {Recipient} subscribed to {ListId} ({How})", address, list.Name.Fqdn, result == JoinResult.Added ? how : how + ", delivery re-enabled");
        }

        var sent = owed is { Paid: not null } ? owed.Sent : (owed is not null || welcomes) && Pay(list, NoticeTemplates.Welcome, address, displayName, triggerEntry, answering, answeringSender);
        return new JoinOutcome(result, sent);
    }

    /// <summary>Whether <paramref name="triggerEntry"/> subscribed or unsubscribed <paramref name="address"/> and its welcome or goodbye is still owed (the entry is run again).</summary>
    public bool Owes(string triggerEntry, string template, string address)
    {
        using var store = lists.Open();
        return store.FindOwedNotice(triggerEntry, Purpose(template, address)) is { Paid: null };
    }

    // The record of the change being made again: one still owed, or a paid one when a
    // confirmation's use is replayed (only the use of a token tells a run again from a second
    // command of the same entry).
    private static OwedNotice? ThisChange(OwedNotice? found, string? replayed)
        => found is { Paid: not null } && replayed is null ? null : found;

    /// <summary>
    /// Sends the welcomes, goodbyes and refusals still owed (and tells the moderators they are owed
    /// of, <see cref="PayModerators"/>) whose trigger no request entry holds (its run
    /// ended, went to shunt, or was a command line or one-click request): as generated notices,
    /// under the names they would have had. The entries still held pay their own when run again;
    /// one owed for less than <paramref name="minimumAge"/> may be on its way (a one-click
    /// unsubscription in this process, a command line), and is left to it.
    /// </summary>
    /// <param name="sweep">The periodic look for what other processes left: younger ones do not make this process owe.</param>
    /// <exception cref="IOException">The out queue cannot be written (they stay owed).</exception>
    public int PayOwedNotices(TimeSpan minimumAge, bool sweep = false)
    {
        _owing |= !sweep; // until the look below says otherwise
        var before = time.GetUtcNow() - minimumAge;
        List<OwedNotice> owed;
        int left;
        HashSet<string> owing;
        using (var store = lists.Open())
        {
            var all = store.OwedNotices();
            owing = all.Select(o => o.Trigger).ToHashSet(StringComparer.Ordinal);
            var owner = all.Select(o => o.Trigger).Distinct().ToDictionary(t => t, OwingProcess);
            owed = all.Where(o => owner[o.Trigger] switch
            {
                Owner.Alive => false,
                Owner.Dead => true,
                _ => o.Created <= before && !queues[QueueSet.Request].Holds(o.Trigger),
            }).ToList();
            left = all.Count - owed.Count;
        }

        if (!sweep)
        {
            _owing = left > 0;
        }

        var paid = 0;
        foreach (var o in owed)
        {
            if (lists.FindList(o.List) is not { } list)
            {
                continue;
            }

            if (o.Template == NoticeTemplates.ModeratorSubscribe)
            {
                var told = PayModerators(list, o.Address, o.DisplayName, o.Trigger);
                logger.LogWarning("The moderators of {ListId} owed notice of the subscription request of {Recipient} since {Created:u} by {QueueEntry} (its run stopped before telling them), {Outcome}",
                    o.List.Fqdn, o.Address, o.Created, o.Trigger, told ? "told now" : "not told: the request was decided or expired meanwhile");
                paid++;
                continue;
            }

            // Said once it is queued: a write that fails (review 88: a killed writer's temporary
            // file in the way) leaves it owed, and the error line says so.
            var sent = Pay(list, o.Template, o.Address, o.DisplayName, o.Trigger, null, null, o.Reason);
            logger.LogWarning("Notice {Template} to {Recipient} from {ListId}, owed since {Created:u} by {QueueEntry} (its run stopped before queuing it), {Outcome}",
                o.Template, o.Address, o.List.Fqdn, o.Created, o.Trigger, sent ? "sent now" : "settled without sending (the line \"No ... notice\" says why)");
            paid++;
        }

        foreach (var trigger in owed.Select(o => o.Trigger).Distinct().Where(Switchboard.IsValidEntryName))
        {
            Instance.FileOwner.TryDelete(paths.OwingLock(trigger)); // its process is gone, its notices paid
        }

        RemoveUnowedLocks(owing, before);
        return paid;
    }

    // The locks of command lines killed before they owed anything (review 91: `members add
    // --welcome` killed before its transaction left one per kill in var/owing/ for good): no
    // notice names them and no process holds them. One made in the last minutes is left, as a
    // command line opens its lock an instant before it holds it.
    private void RemoveUnowedLocks(HashSet<string> owing, DateTimeOffset before)
    {
        var directory = Path.GetDirectoryName(paths.OwingLock("x"))!;
        if (!Directory.Exists(directory))
        {
            return;
        }

        foreach (var file in Directory.EnumerateFiles(directory, "*.lock"))
        {
            var trigger = Path.GetFileNameWithoutExtension(file);
            if (!owing.Contains(trigger) && Switchboard.IsValidEntryName(trigger)
                && File.GetLastWriteTimeUtc(file) < before.UtcDateTime && OwingProcess(trigger) == Owner.Dead)
            {
                Instance.FileOwner.TryDelete(file);
            }
        }
    }

    /// <summary>
    /// Unsubscribes <paramref name="address"/>: removes it, or with <paramref name="disable"/>
    /// turns its delivery off "by user"; then says goodbye when the list does so.
    /// </summary>
    /// <param name="replayed">What this entry's use of the request did (it is run again): nothing changes, the answer is the first run's.</param>
    public LeaveOutcome Leave(MailingList list, string address, string how, string triggerEntry, bool disable = false,
        MimeMessage? answering = null, string? answeringSender = null, long? pendingId = null, string? replayed = null)
    {
        var purpose = Purpose(NoticeTemplates.Goodbye, address);
        bool? changed;
        OwedNotice? owed;
        using (var store = lists.Open())
        {
            // The replay of this very leave (as for a join, above).
            owed = ThisChange(store.FindOwedNotice(triggerEntry, purpose), replayed);
            if (owed is null && replayed is not null)
            {
                return new LeaveOutcome(replayed == Left, false);
            }

            changed = owed is not null ? true : store.InTransaction<bool?>(() =>
            {
                string? token = null;
                if (pendingId is { } id && (token = store.TakePending(id, triggerEntry, time.GetUtcNow())) is null)
                {
                    return null;
                }

                bool left;
                if (!disable)
                {
                    left = store.RemoveMembers(list.Name, [address]) > 0;
                }
                else
                {
                    var member = store.FindMember(list.Name, address);
                    left = member is not null && !(member is { DeliveryEnabled: false, DisabledReason: DisabledReason.User })
                        && store.SetDelivery(list.Name, address, DisabledReason.User, time.GetUtcNow());
                }

                if (token is not null)
                {
                    store.UsedOutcome(token, left ? Left : "not a member");
                }

                if (left && list.SendGoodbyeMessage)
                {
                    store.OweNotice(list.Name, NoticeTemplates.Goodbye, address, "", triggerEntry, purpose, time.GetUtcNow());
                }

                return left;
            });
        }

        if (changed != true)
        {
            return new LeaveOutcome(false, false, PendingUsed: changed is null);
        }

        if (owed is null)
        {
            logger.LogInformation("Leave: {Recipient} unsubscribed from {ListId} ({How})", address, list.Name.Fqdn, disable ? how + ", delivery disabled by user" : how);
        }

        var sent = owed is { Paid: not null } ? owed.Sent : (owed is not null || list.SendGoodbyeMessage) && Pay(list, NoticeTemplates.Goodbye, address, "", triggerEntry, answering, answeringSender);
        return new LeaveOutcome(true, sent);
    }

    private enum Owner
    {
        None,
        Alive,
        Dead,
    }

    // Whether a command line that owes under this trigger still runs (it holds its lock: the
    // daemon's start or sweep would race it for the same notices, review 82), or ran and died
    // (its lock left unheld: pay now, whatever their age).
    private Owner OwingProcess(string trigger)
    {
        if (!Switchboard.IsValidEntryName(trigger))
        {
            return Owner.None; // never a path
        }

        var path = paths.OwingLock(trigger);
        if (!File.Exists(path))
        {
            return Owner.None;
        }

        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return Owner.Dead;
        }
        catch (IOException) when (File.Exists(path))
        {
            return Owner.Alive;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Owner.None;
        }
    }

    /// <summary>
    /// Holds the lock that tells the daemon this process will queue the notices it owes under
    /// <paramref name="trigger"/> (<see cref="OweWelcome"/>); released (and removed) when disposed.
    /// </summary>
    public IDisposable Owing(string trigger)
    {
        var path = paths.OwingLock(trigger);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
    }

    /// <summary>
    /// Leaves what this process owes under <paramref name="trigger"/> to the daemon at once (its
    /// lock file, unheld, says its owner is gone), as a kill would: the out queue could not take it.
    /// </summary>
    public void LeaveOwed(string trigger)
    {
        try
        {
            File.WriteAllText(paths.OwingLock(trigger), "");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Without it the daemon pays them once they are an hour old.
        }
    }

    /// <summary>
    /// Records the welcome of a member the command line adds as owed, in the add's own
    /// transaction (<paramref name="store"/>'s): a verb killed, or an out queue full, before
    /// <see cref="PayWelcome"/> queued it leaves it to the daemon (review 80: 3,872 of 5,000
    /// welcomes were lost to a kill -9, and the run again said "already members").
    /// </summary>
    public void OweWelcome(ListStore store, ListName list, Member member, string triggerEntry)
        => store.OweNotice(list, NoticeTemplates.Welcome, member.Address, member.DisplayName, triggerEntry, Purpose(NoticeTemplates.Welcome, member.Address), time.GetUtcNow());

    /// <summary>Queues a welcome <see cref="OweWelcome"/> recorded, then it is no longer owed.</summary>
    /// <exception cref="IOException">The out queue cannot be written (it stays owed).</exception>
    public bool PayWelcome(ListStore store, MailingList list, Member member, string triggerEntry)
    {
        bool sent;
        try
        {
            sent = Notify(list, NoticeTemplates.Welcome, member.Address, member.DisplayName, triggerEntry, null, null);
        }
        catch
        {
            _owing = true;
            throw;
        }

        store.PaidNotice(triggerEntry, Purpose(NoticeTemplates.Welcome, member.Address));
        return sent;
    }

    /// <summary>
    /// Records the refusal of <paramref name="address"/>'s subscription, with the moderator's
    /// <paramref name="reason"/>, as owed (in the caller's transaction, beside the use of its request).
    /// </summary>
    public void OweRefusal(ListStore store, ListName list, string address, string displayName, string reason, string triggerEntry)
        => store.OweNotice(list, NoticeTemplates.Refused, address, displayName, triggerEntry, Purpose(NoticeTemplates.Refused, address), time.GetUtcNow(), reason);

    /// <summary>
    /// Queues the refusal <see cref="OweRefusal"/> recorded, once: run again after it was queued,
    /// nothing is sent. One never recorded (the request used by an older build) goes with
    /// <paramref name="reason"/>. Whether it was sent.
    /// </summary>
    /// <exception cref="IOException">The out queue cannot be written (it stays owed).</exception>
    public bool PayRefusal(MailingList list, string address, string displayName, string reason, string triggerEntry)
    {
        OwedNotice? owed;
        using (var store = lists.Open())
        {
            owed = store.FindOwedNotice(triggerEntry, Purpose(NoticeTemplates.Refused, address));
        }

        return owed switch
        {
            { Paid: not null } => owed.Sent,
            null => Notify(list, NoticeTemplates.Refused, address, displayName, triggerEntry, null, null, reason),
            _ => Pay(list, NoticeTemplates.Refused, address, owed.DisplayName, triggerEntry, null, null, owed.Reason),
        };
    }

    /// <summary>
    /// Records that the moderators are owed the notice of the subscription request of
    /// <paramref name="address"/> that <paramref name="triggerEntry"/> put before them (in the
    /// caller's transaction, beside the request: confirm_then_moderate's confirmation).
    /// </summary>
    public void OweModerators(ListStore store, ListName list, string address, string displayName, string triggerEntry)
        => store.OweNotice(list, NoticeTemplates.ModeratorSubscribe, address, displayName, triggerEntry, Purpose(NoticeTemplates.ModeratorSubscribe, address), time.GetUtcNow());

    /// <summary>
    /// Tells the moderators of the request <see cref="OweModerators"/> recorded (SubscriptionModeration:
    /// each notice once, within the list's daily limit), only while it still waits (a moderator
    /// may have decided it since its transaction: review 142, putting it before them again would
    /// undo the decision), then it is no longer owed. Whether they were told.
    /// </summary>
    /// <exception cref="IOException">The out queue cannot be written (it stays owed).</exception>
    public bool PayModerators(MailingList list, string address, string displayName, string triggerEntry)
    {
        using (var store = lists.Open())
        {
            // Run again after they were told (its entry killed before it finished): not twice.
            if (store.FindOwedNotice(triggerEntry, Purpose(NoticeTemplates.ModeratorSubscribe, address)) is { Paid: not null } paid)
            {
                return paid.Sent;
            }
        }

        bool told;
        try
        {
            told = moderation.TellOwed(list, address, displayName, triggerEntry);
        }
        catch
        {
            _owing = true;
            throw;
        }

        using (var store = lists.Open())
        {
            store.PaidNotice(triggerEntry, Purpose(NoticeTemplates.ModeratorSubscribe, address), told, time.GetUtcNow());
        }

        return told;
    }

    private bool Notify(MailingList list, string template, string address, string name, string triggerEntry, MimeMessage? answering, string? answeringSender, string? reason = null)
        => notices.Send(new Notice(list, template, address)
        {
            ToName = name,
            Kind = answering is null ? NoticeKind.Generated : NoticeKind.Reply,
            Answering = answering,
            AnsweringSender = answeringSender,
            Values = reason is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["reason"] = reason },
        }, triggerEntry, Purpose(template, address)).Queued;

    // Queues the owed notice (or a rule says not to send it), then it is no longer owed.
    private bool Pay(MailingList list, string template, string address, string name, string triggerEntry, MimeMessage? answering, string? answeringSender, string? reason = null)
    {
        bool sent;
        try
        {
            sent = Notify(list, template, address, name, triggerEntry, answering, answeringSender, reason);
        }
        catch
        {
            _owing = true;
            throw;
        }

        using var store = lists.Open();
        store.PaidNotice(triggerEntry, Purpose(template, address), sent, time.GetUtcNow());
        return sent;
    }

    // A used unsubscription's outcome when it removed the address.
    private const string Left = "left";

    private static string Purpose(string template, string address) => template + ":" + address.Trim().ToLowerInvariant();

    /// <summary>
    /// A fresh name in the queue entry alphabet, for notices caused by something that is not a
    /// queue entry (an HTTP request, a command line): their names derive from it.
    /// </summary>
    public static string NewTrigger(TimeProvider time)
    {
        var micros = (time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / 10;
        return micros.ToString("D17", System.Globalization.CultureInfo.InvariantCulture) + "-"
            + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
    }
}
