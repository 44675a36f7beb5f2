// Finds the pending request a token (or, from the command line, a number) names, checks it is
// live and belongs to the list, and hands it to the IConfirmationHandler registered for its kind:
// subscriptions here, held posts in moderation. One log line per confirmation; tokens are never
// logged.
using Mailman.Lists;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Requests;

public sealed class Confirmations(IEnumerable<IConfirmationHandler> handlers, ListStoreFactory lists, Moderation.ModeratorNotices moderators, TimeProvider time, ILogger<Confirmations> logger)
{
    private readonly Dictionary<string, IConfirmationHandler> _byKind = handlers
        .SelectMany(h => h.Kinds.Select(k => (Kind: k, Handler: h)))
        .ToDictionary(x => x.Kind, x => x.Handler, StringComparer.Ordinal);

    /// <summary>The kinds some handler acts on.</summary>
    public IEnumerable<string> Kinds => _byKind.Keys;

    /// <summary>Confirms the live request of <paramref name="list"/> that <paramref name="token"/> names (null Request: none).</summary>
    public (PendingRequest? Request, ConfirmationResult Result) ConfirmToken(ListName list, string token, string? command, MimeMessage? reply, string actor, string triggerEntry)
    {
        var t = token.Trim().ToLowerInvariant();
        if (!ListStore.IsTokenShaped(t))
        {
            logger.LogInformation("Confirmation for {ListId} by {Actor} refused: the token is malformed ({Length} characters)", list.Fqdn, actor, token.Length);
            return (null, new ConfirmationResult(false, "that is not a confirmation token (32 hexadecimal digits)"));
        }

        PendingRequest? request;
        using (var store = lists.Open())
        {
            request = store.FindPending(t, time.GetUtcNow());

            // This entry used the request already and was stopped (killed) before it was done:
            // run again, it finishes as the first run would have, and answers as it would have
            // (review 125: "token unknown" to a person just subscribed, the welcome a minute or a
            // restart later; review 126: a confirm_then_moderate request lost, a moderator's
            // rejection never sent).
            if (request is null && store.FindUsedRequest(t, triggerEntry, list) is { } used)
            {
                logger.LogInformation("Confirmation for {ListId} by {Actor}: entry {QueueEntry} run again; it used the {Kind} of {Recipient} already", list.Fqdn, actor, triggerEntry, used.Kind, used.Address);
                request = used;
            }

            // Used by someone else: a kind that can say what became of it says so (a second
            // moderator's reply to a held post decided already was told "unknown").
            if (request is null && store.FindUsedToken(t, list) is { } other && _byKind.TryGetValue(other.Kind, out var handler) && handler.UsedAlready(other) is { } said)
            {
                logger.LogInformation("Confirmation of {Kind} for {Recipient} to {ListId} by {Actor} refused: the token was used already; {Summary}", other.Kind, other.Address, list.Fqdn, actor, said.Summary);
                return (null, said);
            }
        }

        if (request is null || request.List != list)
        {
            logger.LogInformation("Confirmation for {ListId} by {Actor} refused: unknown or expired token", list.Fqdn, actor);
            return (null, new ConfirmationResult(false, "the confirmation token is unknown, used or expired; ask again if you still want it"));
        }

        return (request, Confirm(request, command, reply, actor, triggerEntry));
    }

    /// <summary>
    /// Whether <paramref name="sender"/> is whom the token of <paramref name="request"/> was
    /// mailed to: the address itself (a subscription or unsubscription to confirm), or one of
    /// the people told of a request the moderators decide. Review 132: tokens are free to make
    /// (a join from an address of one's own), so the results of a used token are spared the
    /// daily limit only when they go to the token's own recipient, not to a forged From:.
    /// </summary>
    public bool TokenWentTo(PendingRequest request, string sender)
    {
        if (request.Kind is PendingKind.Subscribe or PendingKind.Unsubscribe)
        {
            return ListStore.SameAddress(request.Address, sender);
        }

        using var store = lists.Open();
        return store.FindList(request.List) is { } list && moderators.Recipients(store, list).Any(m => ListStore.SameAddress(m.Address, sender));
    }

    /// <summary>Hands a live request to the handler for its kind.</summary>
    public ConfirmationResult Confirm(PendingRequest request, string? command, MimeMessage? reply, string actor, string triggerEntry)
    {
        if (!_byKind.TryGetValue(request.Kind, out var handler))
        {
            logger.LogWarning("Confirmation of {Kind} for {Recipient} to {ListId}: no handler for this kind", request.Kind, request.Address, request.List.Fqdn);
            return new ConfirmationResult(false, $"requests of kind {request.Kind} cannot be confirmed here");
        }

        var result = handler.Confirm(request, command, reply, actor, triggerEntry);
        logger.LogInformation("Confirmation of {Kind} for {Recipient} to {ListId} by {Actor}: {Summary}", request.Kind, request.Address, request.List.Fqdn, actor, result.Summary);
        return result;
    }
}
