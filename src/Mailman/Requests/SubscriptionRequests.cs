// The subscription policies (Mailman 3's names): what a request to join or leave does on a list.
// confirm: a confirmation mail with a token goes to the address, from LIST-confirm+TOKEN@ so a
// plain reply confirms; open: at once; moderate: the list's moderators approve; confirm_then_moderate:
// both. A second request renews the one pending request (a fresh token); a confirmation the daily
// limit or the never-answer rules stop is not sent, and then the pending request is left as it was.
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Notices;
using Mailman.Queues;
using Microsoft.Extensions.Logging;

namespace Mailman.Requests;

public sealed class SubscriptionRequests(
    ListStoreFactory lists, QueueSet queues, NoticeSender notices, ModeratorNotices moderatorNotices, Membership membership, ConfirmationTokens tokens, TimeProvider time, ILogger<SubscriptionRequests> logger)
{
    /// <summary>Pending data of a confirmed subscription that a moderator approves next.</summary>
    public const string ThenModerate = "then-moderate";

    /// <summary>LIST-confirm+TOKEN@HOST: where a reply to a confirmation goes.</summary>
    public static string ConfirmAddress(ListName list, string token) => $"{list.LocalPart}-confirm+{token}@{list.Domain}";

    /// <summary>
    /// The sender asks to join, or (Mailman 3's <c>join address=</c>) asks for
    /// <paramref name="other"/> to be joined: then the confirmation goes to that address, whatever
    /// the policy (open asks it to confirm, moderate to confirm first), and the sender learns
    /// nothing of whether it is a member.
    /// </summary>
    public CommandOutcome RequestJoin(RequestContext request, string? other = null)
    {
        var list = request.List;
        if (other is not null && !ListStore.SameAddress(other, request.Sender))
        {
            return Confirm(request, PendingKind.Subscribe, list.SubscriptionPolicy is SubscriptionPolicy.Moderate or SubscriptionPolicy.ConfirmThenModerate ? ThenModerate : "", other, "");
        }

        MemberRecord? member;
        using (var store = lists.Open())
        {
            member = store.FindMember(list.Name, request.Sender);
        }

        // A member whose delivery is off by their own choice or by bounces joins again (and is
        // re-enabled); one a moderator disabled, or disabled for a reason not known, is still a
        // member. This entry's own join, run again before its welcome was queued, finishes as the
        // first run would have.
        var replay = member is not null && membership.Owes(request.TriggerEntry, NoticeTemplates.Welcome, request.Sender);
        if (member is not null && (member.DeliveryEnabled || member.DisabledReason is not (DisabledReason.User or DisabledReason.Bounces)) && !replay)
        {
            return new CommandOutcome($"{request.Sender} is already a member of {list.Name.Fqdn}", NeedsReply: true);
        }

        switch (replay ? SubscriptionPolicy.Open : list.SubscriptionPolicy)
        {
            case SubscriptionPolicy.Open:
                var joined = membership.Join(list, request.Sender, request.SenderName, "open subscription policy", request.TriggerEntry, request.Message, request.EnvelopeSender);
                return new CommandOutcome($"{request.Sender} is now subscribed to {list.Name.Fqdn}", NeedsReply: !joined.WelcomeSent);
            case SubscriptionPolicy.Moderate:
                AskModerators(list, request.Sender, request.SenderName, request.TriggerEntry);
                return new CommandOutcome($"your request to join {list.Name.Fqdn} awaits the approval of a moderator", NeedsReply: true);
            default:
                return Confirm(request, PendingKind.Subscribe, list.SubscriptionPolicy == SubscriptionPolicy.ConfirmThenModerate ? ThenModerate : "", request.Sender, request.SenderName);
        }
    }

    /// <summary>The sender asks to leave.</summary>
    public CommandOutcome RequestLeave(RequestContext request)
    {
        var list = request.List;
        bool isMember;
        using (var store = lists.Open())
        {
            isMember = store.FindMember(list.Name, request.Sender) is not null;
        }

        // This entry's own leave, run again before its goodbye was queued, finishes as the first run would have.
        var replay = !isMember && membership.Owes(request.TriggerEntry, NoticeTemplates.Goodbye, request.Sender);
        if (!isMember && !replay)
        {
            return new CommandOutcome($"{request.Sender} is not a member of {list.Name.Fqdn}", NeedsReply: true);
        }

        if (replay || list.UnsubscriptionPolicy == UnsubscriptionPolicy.Open)
        {
            var left = membership.Leave(list, request.Sender, "open unsubscription policy", request.TriggerEntry, answering: request.Message, answeringSender: request.EnvelopeSender);
            return new CommandOutcome($"{request.Sender} is no longer subscribed to {list.Name.Fqdn}", NeedsReply: !left.GoodbyeSent);
        }

        return Confirm(request, PendingKind.Unsubscribe, "", request.Sender, request.SenderName);
    }

    /// <summary>
    /// Puts a subscription before the list's moderators: a pending request (its token derived
    /// from <paramref name="triggerEntry"/>, which its data keeps for the daily summary) and a
    /// notice to each owner and moderator (ModeratorNotices: within the list's daily limit), from
    /// LIST-confirm+TOKEN@ so a reply "approve" or "reject REASON" decides it.
    /// </summary>
    public void AskModerators(MailingList list, string address, string displayName, string triggerEntry)
    {
        var token = tokens.For(triggerEntry, PendingKind.ModerateSubscription);
        var now = time.GetUtcNow();
        using var store = lists.Open();
        if (PutBeforeModerators(store, list, address, displayName, triggerEntry) is { } waiting)
        {
            logger.LogInformation("Pending: {Recipient} asks again to join {ListId}; the request of {Created:u} already awaits a moderator",
                address, list.Name.Fqdn, waiting.Created);
            return;
        }

        var expires = now + list.PendingRequestLife;
        var from = ConfirmAddress(list.Name, token);
        var told = moderatorNotices.Tell(store, list, "the subscription request of " + address, triggerEntry, moderator =>
            (new Notice(list, NoticeTemplates.ModeratorSubscribe, moderator.Address)
            {
                ToName = moderator.DisplayName,
                From = from,
                Values = new Dictionary<string, string> { ["user_email"] = address, ["token"] = token, ["confirm_email"] = from },
            }, "moderate-subscribe:" + ListStore.AddressKey(moderator.Address)));
        if (told.PastLimit && moderatorNotices.NextSummaryAfter(now) is var summary && summary != DateTimeOffset.MaxValue)
        {
            // Past the day's limit nobody is told now: the request lives until the next summary
            // has named it, and its life after (review 54: with a pending_request_life of 12h it
            // expired before any moderator heard of it).
            expires = summary + list.PendingRequestLife;
            store.UpsertPending(list.Name, PendingKind.ModerateSubscription, ListStore.AddressKey(address), address, displayName, triggerEntry, now, expires, token);
        }

        logger.LogInformation("Pending: {Recipient} asks to join {ListId}, awaiting a moderator ({Moderators} notified), expires {Expires:u}",
            address, list.Name.Fqdn, told.PastLimit ? 0 : told.People, expires);
        if (told.People == 0)
        {
            logger.LogWarning("{ListId} has no owner or moderator to approve {Recipient}: `mailman pending list` shows the request", list.Name.Fqdn, address);
        }
    }

    /// <summary>
    /// The pending request <see cref="AskModerators"/> makes, alone (in the caller's transaction:
    /// a confirmation of confirm_then_moderate makes it in the one that uses the address's
    /// request, so that a kill before the moderators are told leaves it to the daily summary,
    /// never lost). Returns the other request of the address that awaits them already, and makes
    /// none: one per address, told once (a flood of joins must not become a flood of notices; a
    /// replay of the same request, after a crash, still sends what it had not sent: its notices
    /// are named by it). Null: this one awaits them.
    /// </summary>
    public PendingRequest? PutBeforeModerators(ListStore store, MailingList list, string address, string displayName, string triggerEntry)
    {
        var token = tokens.For(triggerEntry, PendingKind.ModerateSubscription);
        var now = time.GetUtcNow();
        if (store.FindPending(list.Name, PendingKind.ModerateSubscription, ListStore.AddressKey(address)) is { } waiting && waiting.Expires > now
            && store.FindPending(token, now)?.Id != waiting.Id)
        {
            return waiting;
        }

        store.UpsertPending(list.Name, PendingKind.ModerateSubscription, ListStore.AddressKey(address), address, displayName, triggerEntry, now, now + list.PendingRequestLife, token);
        return null;
    }

    // The confirmation goes first; only when it is queued does the pending request take its
    // token, so a flood stopped by the daily limit does not void the confirmation already sent.
    // It goes to the address the request is for: the sender's own, or the one join address=
    // names, which counts toward that address's daily limit (the sender then learns the outcome
    // from the results reply).
    private CommandOutcome Confirm(RequestContext request, string kind, string data, string address, string displayName)
    {
        var list = request.List;
        var forOther = !ListStore.SameAddress(address, request.Sender);
        // Each address a message asks for has its own token and notice (review 103: "Subject:
        // join" and "join address=X" in one message shared a token, and the second request
        // failed the database's unique token: shunted).
        var purpose = "confirm-" + kind + (forOther ? " " + ListStore.AddressKey(address) : "");
        var token = tokens.For(request.TriggerEntry, purpose);
        var from = ConfirmAddress(list.Name, token);
        var queued = queues[QueueSet.Out].Holds(Switchboard.DerivedName(request.TriggerEntry, purpose));
        if (!queued)
        {
            var result = notices.Send(new Notice(list, kind == PendingKind.Subscribe ? NoticeTemplates.ConfirmSubscribe : NoticeTemplates.ConfirmUnsubscribe, address)
            {
                ToName = displayName,
                Kind = NoticeKind.Reply,
                Answering = request.Message,
                AnsweringSender = request.EnvelopeSender,
                AskedBy = forOther ? request.Sender : null,
                From = from,
                Values = new Dictionary<string, string> { ["token"] = token, ["confirm_email"] = from },
            }, request.TriggerEntry, purpose);
            if (!result.Queued)
            {
                logger.LogInformation("No confirmation of {Kind} for {Recipient} to {ListId}: {Reason}", kind, address, list.Name.Fqdn, result.NotSentBecause);
                return new CommandOutcome($"no confirmation was sent: {result.NotSentBecause}", NeedsReply: forOther);
            }
        }

        var now = time.GetUtcNow();
        bool renewed;
        using (var store = lists.Open())
        {
            (_, renewed) = store.UpsertPending(list.Name, kind, ListStore.AddressKey(address), address, displayName, data, now, now + list.PendingRequestLife, token);
        }

        logger.LogInformation("Pending: {Kind} of {Recipient} to {ListId}, confirmation sent ({Renewed}){AskedBy}, expires {Expires:u}",
            kind, address, list.Name.Fqdn, renewed ? "renewed, the earlier token is void" : "new", forOther ? ", asked by " + request.Sender + " (address=)" : "", now + list.PendingRequestLife);
        return forOther
            ? new CommandOutcome($"a confirmation was sent to {address}: it joins {list.Name.Fqdn} only if it confirms", NeedsReply: true)
            : new CommandOutcome($"a confirmation was sent to {request.Sender}", NeedsReply: false);
    }
}
