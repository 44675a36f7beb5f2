// The seam between the request runner, which finds the pending request a confirmation names
// (a reply to LIST-confirm+TOKEN@, or `mailman pending confirm`), and the code that knows what
// confirming means for that kind of request: subscriptions here, held posts in moderation.
using Mailman.Lists;
using MimeKit;

namespace Mailman.Requests;

/// <summary>What confirming a pending request did, in one line for the log and the person who confirmed.</summary>
/// <param name="Answered">A welcome or goodbye went to the address the request was for, which answers it when it confirmed itself.</param>
public sealed record ConfirmationResult(bool Done, string Summary, bool Answered = false);

/// <summary>Acts on confirmed pending requests of the kinds it names (see <see cref="PendingKind"/>).</summary>
public interface IConfirmationHandler
{
    /// <summary>The <see cref="PendingKind"/> values this handler acts on.</summary>
    IReadOnlyCollection<string> Kinds { get; }

    /// <summary>
    /// Acts on <paramref name="request"/> (already checked live; the handler deletes it when done).
    /// <paramref name="command"/> is what the confirmer said besides the token ("approve",
    /// "reject too long", ... or null for a plain confirmation); <paramref name="reply"/> is the
    /// message that confirmed it (null from the command line); <paramref name="triggerEntry"/>
    /// names the queue entry being processed, for crash-safe notices.
    /// </summary>
    ConfirmationResult Confirm(PendingRequest request, string? command, MimeMessage? reply, string actor, string triggerEntry);

    /// <summary>
    /// The answer to a token whose request someone else used (<paramref name="used"/>, with what
    /// that use did); null for the plain "unknown, used or expired".
    /// </summary>
    ConfirmationResult? UsedAlready(PendingRequest used) => null;
}
