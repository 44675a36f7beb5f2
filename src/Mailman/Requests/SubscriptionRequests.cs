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
    ListStoreFactory lists, QueueSet queues, NoticeSender notices, SubscriptionModeration moderation, Membership membership, ConfirmationTokens tokens, TimeProvider time, ILogger<SubscriptionRequests> logger)
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
                moderation.AskModerators(list, request.Sender, request.SenderName, request.TriggerEntry);
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
