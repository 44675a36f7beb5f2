// Joining and leaving, however they were asked for (a confirmed mail, an open policy, a
// moderator, one click, the command line): the store change, one log line, and the welcome or
// goodbye notice when the list sends them.
using Mailman.Lists;
using Mailman.Notices;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Requests;

/// <summary>What a join did; null Result when the pending request it confirmed was used already.</summary>
public sealed record JoinOutcome(JoinResult? Result, bool WelcomeSent);

/// <summary>What a leave did: false Changed when the address was not (or no longer) a member.</summary>
public sealed record LeaveOutcome(bool Changed, bool GoodbyeSent, bool PendingUsed = false);

public sealed class Membership(ListStoreFactory lists, NoticeSender notices, TimeProvider time, ILogger<Membership> logger)
{
    /// <summary>
    /// Subscribes <paramref name="address"/> (or re-enables it) and welcomes it when the list does
    /// so (<paramref name="welcome"/> overrides the list's send_welcome_message). With
    /// <paramref name="pendingId"/>, the pending request is used in the same transaction: single use.
    /// </summary>
    /// <param name="answering">The message the welcome answers (RFC 3834 reply rules, daily limit); null: a generated notice.</param>
    public JoinOutcome Join(MailingList list, string address, string displayName, string how, string triggerEntry,
        MimeMessage? answering = null, string? answeringSender = null, long? pendingId = null, bool? welcome = null)
    {
        JoinResult? result;
        using (var store = lists.Open())
        {
            result = store.InTransaction(() => pendingId is { } id && !store.DeletePending(id)
                ? (JoinResult?)null
                : store.Join(list.Name, address, displayName, time.GetUtcNow()));
        }

        if (result is not (JoinResult.Added or JoinResult.Reenabled))
        {
            return new JoinOutcome(result, false);
        }

        logger.LogInformation("Join: {Recipient} subscribed to {ListId} ({How})", address, list.Name.Fqdn, result == JoinResult.Added ? how : how + ", delivery re-enabled");
        var sent = (welcome ?? list.SendWelcomeMessage) && Notify(list, NoticeTemplates.Welcome, address, displayName, triggerEntry, answering, answeringSender);
        return new JoinOutcome(result, sent);
    }

    /// <summary>
    /// Unsubscribes <paramref name="address"/>: removes it, or with <paramref name="disable"/>
    /// turns its delivery off "by user"; then says goodbye when the list does so.
    /// </summary>
    public LeaveOutcome Leave(MailingList list, string address, string how, string triggerEntry, bool disable = false,
        MimeMessage? answering = null, string? answeringSender = null, long? pendingId = null)
    {
        bool? changed;
        using (var store = lists.Open())
        {
            changed = store.InTransaction<bool?>(() =>
            {
                if (pendingId is { } id && !store.DeletePending(id))
                {
                    return null;
                }

                if (!disable)
                {
                    return store.RemoveMembers(list.Name, [address]) > 0;
                }

                var member = store.FindMember(list.Name, address);
                return member is not null && !(member is { DeliveryEnabled: false, DisabledReason: DisabledReason.User })
                    && store.SetDelivery(list.Name, address, DisabledReason.User, time.GetUtcNow());
            });
        }

        if (changed != true)
        {
            return new LeaveOutcome(false, false, PendingUsed: changed is null);
        }

        logger.LogInformation("Leave: {Recipient} unsubscribed from {ListId} ({How})", address, list.Name.Fqdn, disable ? how + ", delivery disabled by user" : how);
        var sent = list.SendGoodbyeMessage && Notify(list, NoticeTemplates.Goodbye, address, "", triggerEntry, answering, answeringSender);
        return new LeaveOutcome(true, sent);
    }

    /// <summary>Sends the welcome notice alone (`members add --welcome`).</summary>
    public bool Welcome(MailingList list, Member member, string triggerEntry)
        => Notify(list, NoticeTemplates.Welcome, member.Address, member.DisplayName, triggerEntry, null, null);

    private bool Notify(MailingList list, string template, string address, string name, string triggerEntry, MimeMessage? answering, string? answeringSender)
        => notices.Send(new Notice(list, template, address)
        {
            ToName = name,
            Kind = answering is null ? NoticeKind.Generated : NoticeKind.Reply,
            Answering = answering,
            AnsweringSender = answeringSender,
        }, triggerEntry, template + ":" + address.Trim().ToLowerInvariant()).Queued;

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
