// Subscriptions that go before the list's moderators (policies moderate and
// confirm_then_moderate): the pending request, one per address, and the notice to each owner and
// moderator. Apart from SubscriptionRequests so that Membership can tell the moderators of a
// request whose run stopped before it told them (an owed notice, like a welcome).
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Notices;
using Microsoft.Extensions.Logging;

namespace Mailman.Requests;

public sealed class SubscriptionModeration(ListStoreFactory lists, ModeratorNotices moderatorNotices, ConfirmationTokens tokens, TimeProvider time, ILogger<SubscriptionModeration> logger)
{
    /// <summary>
    /// Puts a subscription before the list's moderators: a pending request (its token derived
    /// from <paramref name="triggerEntry"/>, which its data keeps for the daily summary) and a
    /// notice to each owner and moderator (ModeratorNotices: within the list's daily limit), from
    /// LIST-confirm+TOKEN@ so a reply "approve" or "reject REASON" decides it.
    /// </summary>
    public void AskModerators(MailingList list, string address, string displayName, string triggerEntry)
    {
        using var store = lists.Open();
        if (PutBeforeModerators(store, list, address, displayName, triggerEntry) is { } waiting)
        {
            logger.LogInformation("Pending: {Recipient} asks again to join {ListId}; the request of {Created:u} already awaits a moderator",
                address, list.Name.Fqdn, waiting.Created);
            return;
        }

        Tell(store, list, address, displayName, triggerEntry, time.GetUtcNow() + list.PendingRequestLife);
    }

    /// <summary>
    /// Tells the moderators of the request <see cref="PutBeforeModerators"/> made for
    /// <paramref name="triggerEntry"/> in the transaction that used the address's confirmation
    /// (Membership's owed notices: at once, or later by whoever pays what a stopped run left):
    /// only while it still waits (a moderator may have decided it meanwhile, from the daily
    /// summary or `pending list`). Whether they were told (false: it was decided or expired, or
    /// the address's earlier request awaited them and none was made).
    /// </summary>
    /// <exception cref="IOException">The out queue cannot be written (it stays owed).</exception>
    public bool TellOwed(MailingList list, string address, string displayName, string triggerEntry)
    {
        using var store = lists.Open();
        if (store.FindPending(tokens.For(triggerEntry, PendingKind.ModerateSubscription), time.GetUtcNow()) is not { } waiting)
        {
            logger.LogInformation("Pending: the confirmed request of {Recipient} to join {ListId} does not await the moderators (decided or expired meanwhile, or the address's earlier request awaits them): nobody is told of it now",
                address, list.Name.Fqdn);
            return false;
        }

        Tell(store, list, address, displayName, triggerEntry, waiting.Expires);
        return true;
    }

    // The notices, within the list's daily limit; past it the request lives until the summary.
    private void Tell(ListStore store, MailingList list, string address, string displayName, string triggerEntry, DateTimeOffset expires)
    {
        var token = tokens.For(triggerEntry, PendingKind.ModerateSubscription);
        var now = time.GetUtcNow();
        var from = SubscriptionRequests.ConfirmAddress(list.Name, token);
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
    /// request, with the notice to them owed beside it: a kill before they are told leaves them
    /// owed, never the request lost). Returns the other request of the address that awaits them
    /// already, and makes none: one per address, told once (a flood of joins must not become a
    /// flood of notices; a replay of the same request, after a crash, still sends what it had
    /// not sent: its notices are named by it). Null: this one awaits them.
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
}
