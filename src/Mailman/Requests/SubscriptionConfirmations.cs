// What confirming means for subscriptions: a confirmed join subscribes (or, for
// confirm_then_moderate, goes before the moderators), a confirmed leave unsubscribes, a
// moderator's approval subscribes. "reject REASON" and "discard" drop the request; a rejected
// subscription tells the address why. The pending request is used in the same transaction as the
// change, so a token works once.
using Mailman.Lists;
using MimeKit;

namespace Mailman.Requests;

public sealed class SubscriptionConfirmations(ListStoreFactory lists, Membership membership, SubscriptionModeration moderation, TimeProvider time) : IConfirmationHandler
{
    public IReadOnlyCollection<string> Kinds { get; } = [PendingKind.Subscribe, PendingKind.Unsubscribe, PendingKind.ModerateSubscription];

    public ConfirmationResult Confirm(PendingRequest request, string? command, MimeMessage? reply, string actor, string triggerEntry)
    {
        var list = lists.FindList(request.List);
        if (list is null)
        {
            Drop(request, triggerEntry);
            return new ConfirmationResult(false, $"the list {request.List.Fqdn} no longer exists");
        }

        // A moderator decides in words: a reply to the request's notice that says neither
        // "approve", "reject REASON" nor "discard" ("who is this? do not let them in") changes
        // nothing (review 36: any reply subscribed the address). The address's own plain reply
        // confirms, and so does `mailman pending confirm` (no reply).
        if (request.Kind == PendingKind.ModerateSubscription && reply is not null && string.IsNullOrWhiteSpace(command))
        {
            return new ConfirmationResult(false,
                $"the {Describe(request.Kind)} of {request.Address}: the reply said {CommandParser.Said(CommandParser.FirstLine(reply))}; expected \"approve\", \"reject REASON\" or \"discard\" in its first line. Nothing was done; the request still awaits a moderator.");
        }

        var (verb, reason) = Decision(command);
        if (verb != "approve")
        {
            // A moderator's refusal is owed in the use of the request, and sent after (review
            // 127: `pending discard N --reason R` killed between the two lost it; the daemon
            // sends what a dead command line owes).
            var refuses = verb == "reject" && request.Kind == PendingKind.ModerateSubscription;
            var why = reason.Length > 0 ? reason : "no reason given";
            if (!Drop(request, triggerEntry, refuses ? store => membership.OweRefusal(store, list.Name, request.Address, request.DisplayName, why, triggerEntry) : null))
            {
                return Used(request);
            }

            if (refuses)
            {
                membership.PayRefusal(list, request.Address, request.DisplayName, why, triggerEntry);
            }

            // A request the address has not confirmed may be forged: a refusal to it would be
            // backscatter (review 133: "rejected" was said, and nothing sent).
            return new ConfirmationResult(true, refuses ? $"the {Describe(request.Kind)} of {request.Address} was rejected"
                : verb == "reject" ? $"the {Describe(request.Kind)} of {request.Address} was discarded; {request.Address} is not told (a reason is sent only for a request awaiting a moderator: this one awaited the address's own confirmation, and its asking may be forged)"
                : $"the {Describe(request.Kind)} of {request.Address} was discarded");
        }

        // The welcome or goodbye answers the reply only when it came from the address itself.
        var answering = reply is not null && reply.From.Mailboxes.Any(m => ListStore.SameAddress(m.Address, request.Address)) ? reply : null;
        switch (request.Kind)
        {
            case PendingKind.Subscribe when request.Data == SubscriptionRequests.ThenModerate:
                // The moderators' request is made in the use's transaction (`pending confirm N`
                // killed between the two lost the subscription), and their notice owed in it;
                // they are told after (killed before, whoever pays owed notices tells them).
                if (!Drop(request, triggerEntry, store =>
                {
                    if (moderation.PutBeforeModerators(store, list, request.Address, request.DisplayName, triggerEntry) is null)
                    {
                        membership.OweModerators(store, list.Name, request.Address, request.DisplayName, triggerEntry);
                    }
                }))
                {
                    return Used(request);
                }

                membership.PayModerators(list, request.Address, request.DisplayName, triggerEntry);
                return new ConfirmationResult(true, $"{request.Address} confirmed; the request awaits the approval of a moderator");
            case PendingKind.Subscribe or PendingKind.ModerateSubscription:
                var how = request.Kind == PendingKind.Subscribe ? "confirmed by " + actor : "approved by " + actor;
                var joined = membership.Join(list, request.Address, request.DisplayName, how, triggerEntry, answering, null, request.Id, replayed: request.Replayed);
                return joined.Result switch
                {
                    null => Used(request),
                    JoinResult.AlreadyMember => new ConfirmationResult(true, $"{request.Address} is already a member of {list.Name.Fqdn}"),
                    _ => new ConfirmationResult(true, $"{request.Address} is now subscribed to {list.Name.Fqdn}", joined.WelcomeSent),
                };
            default:
                var left = membership.Leave(list, request.Address, "confirmed by " + actor, triggerEntry, answering: answering, pendingId: request.Id, replayed: request.Replayed);
                return left.PendingUsed ? Used(request)
                    : left.Changed ? new ConfirmationResult(true, $"{request.Address} is no longer subscribed to {list.Name.Fqdn}", left.GoodbyeSent)
                    : new ConfirmationResult(true, $"{request.Address} was not a member of {list.Name.Fqdn}");
        }
    }

    /// <summary>approve (also a plain confirmation: null, "confirm", "accept"), reject REASON, discard.</summary>
    private static (string Verb, string Reason) Decision(string? command)
    {
        var c = (command ?? "").Trim();
        var space = c.IndexOfAny([' ', '\t']);
        var word = (space < 0 ? c : c[..space]).ToLowerInvariant();
        var rest = space < 0 ? "" : Member.Sanitize(c[(space + 1)..]);
        return word switch
        {
            "reject" or "deny" => ("reject", rest),
            "discard" or "cancel" => ("discard", rest),
            _ => ("approve", ""),
        };
    }

    // Uses the request without a membership change (a rejection, a discard, a join that goes on
    // to the moderators); true also when this entry used it already (it is run again: the
    // refusal or the moderators' request, named by the entry, goes as the first run's would have).
    private bool Drop(PendingRequest request, string triggerEntry, Action<ListStore>? owe = null)
    {
        if (request.Replayed is not null)
        {
            return true;
        }

        using var store = lists.Open();
        return store.InTransaction(() =>
        {
            if (store.TakePending(request.Id, triggerEntry, time.GetUtcNow()) is null)
            {
                return false;
            }

            owe?.Invoke(store);
            return true;
        });
    }

    private static ConfirmationResult Used(PendingRequest request)
        => new(false, $"the {Describe(request.Kind)} of {request.Address} was confirmed, rejected or discarded already");

    private static string Describe(string kind) => kind switch
    {
        PendingKind.Subscribe => "subscription request",
        PendingKind.Unsubscribe => "unsubscription request",
        _ => "subscription awaiting a moderator",
    };
}
