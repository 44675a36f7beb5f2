// A moderator's reply to a held-post notice (mail to LIST-confirm+TOKEN@, found by the request
// runner): "approve", "reject REASON" or "discard" in the first line decides the post. Anything
// else changes nothing: the post stays held, the token stays good, and the answer says why. A
// confirmation without a reply (`mailman pending confirm N`) approves.
using Mailman.Lists;
using Mailman.Requests;
using MimeKit;

namespace Mailman.Moderation;

public sealed class HeldPostConfirmation(HeldPosts held) : IConfirmationHandler
{
    public IReadOnlyCollection<string> Kinds { get; } = [PendingKind.HeldPost];

    public ConfirmationResult Confirm(PendingRequest request, string? command, MimeMessage? reply, string actor, string triggerEntry)
    {
        // The reply's entry run again after a kill past its decision: the first run's answer
        // (stop 55's Left: "the token is unknown").
        if (request.Replayed is { Length: > 0 } used)
        {
            var first = HeldPosts.Replayed(used);
            return new ConfirmationResult(first.Done, $"held post to {request.List}: {first.Summary}");
        }

        // `mailman pending confirm N` on a held post: a plain confirmation, from an operator.
        if (command is null && reply is null)
        {
            var approved = held.Approve(request.Key, actor, triggerEntry);
            return new ConfirmationResult(approved.Done, $"held post to {request.List}: {approved.Summary}");
        }

        // What the request runner passed, else the first line of the reply's text.
        var said = "";
        foreach (var candidate in new[] { command, reply is null ? null : CommandParser.FirstLine(reply) })
        {
            var line = (candidate ?? "").Trim();
            said = said.Length > 0 ? said : line;
            var space = line.IndexOfAny([' ', '\t']);
            var verb = (space < 0 ? line : line[..space]).ToLowerInvariant().TrimEnd('.', '!', ':');
            var rest = space < 0 ? "" : line[(space + 1)..].Trim();
            var outcome = verb switch
            {
                "approve" or "approved" or "accept" => held.Approve(request.Key, actor, triggerEntry),
                "reject" or "rejected" => held.Reject(request.Key, rest.Length > 0 ? rest : null, actor, triggerEntry),
                "discard" or "discarded" => held.Discard(request.Key, actor, triggerEntry),
                _ => null,
            };
            if (outcome is not null)
            {
                return new ConfirmationResult(outcome.Done, $"held post to {request.List}: {outcome.Summary}");
            }
        }

        return new ConfirmationResult(false,
            $"held post {request.Key} to {request.List}: the reply said {CommandParser.Said(said)}; expected \"approve\", \"reject REASON\" or \"discard\" in its first line. Nothing was done; the post is still held.");
    }
}
