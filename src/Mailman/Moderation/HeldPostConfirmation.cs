// A moderator's reply to a held-post notice (mail to LIST-confirm+TOKEN@, found by the request
// runner): "approve", "reject REASON" or "discard" in the first line decides the post. Anything
// else changes nothing: the post stays held, the token stays good, and the answer says why. The
// request is used before the action, remembering the reply's entry; what the action decides is
// recorded just before the step that makes it so (provisional: anyone else who decides the post
// after overrides it), and again once done: the entry run again after a kill anywhere in between
// finishes the decision, or answers as its first run (review 128: killed between the approval
// and the use, it was told "not held"; reviews 129, 130: killed before its step, it claimed the
// decision of whoever acted meanwhile).
using Mailman.Lists;
using Mailman.Requests;
using MimeKit;

namespace Mailman.Moderation;

public sealed class HeldPostConfirmation(HeldPosts held) : IConfirmationHandler
{
    public IReadOnlyCollection<string> Kinds { get; } = [PendingKind.HeldPost];

    public ConfirmationResult Confirm(PendingRequest request, string? command, MimeMessage? reply, string actor, string triggerEntry)
    {
        // Run again, the post no longer held: the first run decided it (and recorded what), or
        // it stopped before deciding and someone else did (the command line, the expiry).
        if (request.Replayed is { } used && !held.IsHeld(request.Key))
        {
            if (HeldPosts.Replayed(used) is var (first, provisional))
            {
                if (provisional)
                {
                    held.SettleRequest(request, triggerEntry, first);
                }

                return Answer(request, first);
            }

            var gone = new ModerationOutcome(false, $"{request.Key}: {HeldPosts.NotHeldSummary}");
            held.SettleRequest(request, triggerEntry, gone);
            return Answer(request, gone);
        }

        var act = Decision(request.Key, command, reply, actor, triggerEntry, out var said);
        if (act is null)
        {
            return new ConfirmationResult(false,
                $"held post {request.Key} to {request.List}: the reply said {CommandParser.Said(said)}; expected \"approve\", \"reject REASON\" or \"discard\" in its first line. Nothing was done; the post is still held.");
        }

        if (request.Replayed is null && !held.TakeRequest(request, triggerEntry))
        {
            return new ConfirmationResult(false, $"held post {request.Key} to {request.List}: decided already (by another moderator?)");
        }

        ModerationOutcome outcome;
        try
        {
            outcome = act();
        }
        catch
        {
            held.SettleRequest(request, triggerEntry, null);
            throw;
        }

        held.SettleRequest(request, triggerEntry, outcome);
        return Answer(request, outcome);
    }

    // A reply to a post someone else decided (another moderator's reply, the command line, the
    // expiry): what they decided, once it is done.
    public ConfirmationResult UsedAlready(PendingRequest used)
        => HeldPosts.Replayed(used.Replayed ?? "") is (var first, false)
            ? new ConfirmationResult(false, $"held post to {used.List}: decided already; {first.Summary}")
            : new ConfirmationResult(false, $"held post {used.Key} to {used.List}: decided already (by another moderator?)");

    private static ConfirmationResult Answer(PendingRequest request, ModerationOutcome outcome) => new(outcome.Done, $"held post to {request.List}: {outcome.Summary}");

    // What the request runner passed, or the first line of the reply's text (a confirmation with
    // neither approves); null when neither says approve, reject or discard.
    private Func<ModerationOutcome>? Decision(string id, string? command, MimeMessage? reply, string actor, string trigger, out string said)
    {
        said = "";
        if (command is null && reply is null)
        {
            return () => held.Approve(id, actor, trigger);
        }

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
                    return () => held.Approve(id, actor, trigger);
                case "reject" or "rejected":
                    return () => held.Reject(id, rest.Length > 0 ? rest : null, actor, trigger);
                case "discard" or "discarded":
                    return () => held.Discard(id, actor, trigger);
            }
        }

        return null;
    }
}
