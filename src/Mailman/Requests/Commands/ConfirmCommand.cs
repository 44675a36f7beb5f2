// confirm TOKEN: confirms the pending request the token names (a subscription, an
// unsubscription, or for a moderator a subscription or a held post, with "approve",
// "reject REASON" or "discard" in the body). A reply to LIST-confirm+TOKEN@ runs it too.
using Mailman.Lists;

namespace Mailman.Requests.Commands;

public sealed class ConfirmCommand(Confirmations confirmations) : IRequestCommand
{
    public IReadOnlyList<string> Names { get; } = ["confirm"];

    public string Description => "confirm a request (reply to the confirmation, or send confirm TOKEN)";

    public CommandOutcome Execute(RequestContext request, IReadOnlyList<string> arguments)
    {
        if (arguments.Count != 1)
        {
            return new CommandOutcome("confirm needs exactly one token: confirm TOKEN", NeedsReply: true);
        }

        var (pending, result) = confirmations.ConfirmToken(request.List.Name, arguments[0], request.ModeratorCommand, request.Message, request.Sender, request.TriggerEntry);

        // The address's own confirmed join or leave is answered by its welcome or goodbye; a
        // moderator's decision, a join that now awaits a moderator, one without a welcome
        // (send_welcome_message false, a member already), and failures by the results.
        var answered = result.Answered && pending is { Kind: PendingKind.Subscribe or PendingKind.Unsubscribe } p
            && ListStore.SameAddress(p.Address, request.Sender);
        return new CommandOutcome(result.Summary, NeedsReply: !answered,
            UsedToken: pending is not null && result.Done && confirmations.TokenWentTo(pending, request.Sender));
    }
}
