// A moderator's reply to a held-post notice (mail to LIST-confirm+TOKEN@, found by the request
// runner): "approve", "reject REASON" or "discard" in the first line decides the post. Anything
// else changes nothing: the post stays held, the token stays good, and the answer says why. A
// confirmation without a reply (`mailman pending confirm N`) approves. The request is used
// before the action, remembering the reply's entry, and what the action did after: the entry
// run again after a kill anywhere in between finishes the decision, or answers as its first run
// (review 128: killed between the approval and the use, it was told "not held").
using Mailman.Lists;
using Mailman.Requests;
using MimeKit;

namespace Mailman.Moderation;

public sealed class HeldPostConfirmation(HeldPosts held) : IConfirmationHandler
{
    public IReadOnlyCollection<string> Kinds { get; } = [PendingKind.HeldPost];

    public ConfirmationResult Confirm(PendingRequest request, string? command, MimeMessage? reply, string actor, string triggerEntry)
    {
        if (request.Replayed is { } used && HeldPosts.Replayed(used) is { } first)
        {
            return Answer(request, first);
        }

        var (verb, act, said) = Decision(request, command, reply, actor);
        if (act is null)
        {
            return new ConfirmationResult(false,
                $"held post {request.Key} to {request.List}: the reply said {CommandParser.Said(said)}; expected \"approve\", \"reject REASON\" or \"discard\" in its first line. Nothing was done; the post is still held.");
        }

        if (request.Replayed is null && !held.TakeRequest(request, triggerEntry))
        {
            return new ConfirmationResult(false, $"held post {request.Key} to {request.List}: decided already (by another moderator?)");
        }

        // Run again after a kill past the move: the first run decided it.
        ModerationOutcome outcome;
        if (request.Replayed is not null && !held.IsHeld(request.Key))
        {
            outcome = new ModerationOutcome(true, $"{request.Key}: {(verb == "approved" ? "approved: it goes to the list" : verb)}");
        }
        else
        {
            try
            {
                outcome = act();
            }
            catch
            {
                held.SettleRequest(request, triggerEntry, null);
                throw;
            }
        }

        held.SettleRequest(request, triggerEntry, outcome);
        return Answer(request, outcome);
    }

    private static ConfirmationResult Answer(PendingRequest request, ModerationOutcome outcome) => new(outcome.Done, $"held post to {request.List}: {outcome.Summary}");

    // The decision: from `mailman pending confirm N` (no command, no reply) an approval; else
    // what the request runner passed, or the first line of the reply's text. Null act: neither
    // says approve, reject or discard.
    private (string Verb, Func<ModerationOutcome>? Act, string Said) Decision(PendingRequest request, string? command, MimeMessage? reply, string actor)
    {
        if (command is null && reply is null)
        {
            return ("approved", () => held.Approve(request.Key, actor), "");
        }

        var said = "";
        foreach (var candidate in new[] { command, reply is null ? null : CommandParser.FirstLine(reply) })
        {
            var line = (candidate ?? "").Trim();
            said = said.Length > 0 ? said : line;
            var space = line.IndexOfAny([' ', '\t']);
            var verb = (space < 0 ? line : line[..space]).ToLowerInvariant().TrimEnd('.', '!', ':');
            var rest = space < 0 ? "" : line[(space + 1)..].Trim();
            switch (verb)
            {
                case "approve" or "approved" or "accept":
                    return ("approved", () => held.Approve(request.Key, actor), said);
                case "reject" or "rejected":
                    return ("rejected", () => held.Reject(request.Key, rest.Length > 0 ? rest : null, actor), said);
                case "discard" or "discarded":
                    return ("discarded", () => held.Discard(request.Key, actor), said);
            }
        }

        return ("", null, said);
    }
}
