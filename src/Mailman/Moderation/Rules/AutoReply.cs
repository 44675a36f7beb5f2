// auto-reply: a message a program sent (RFC 3834 Auto-Submitted, Precedence: bulk or junk) posted
// to the list, such as an out-of-office answer to a post, is discarded, held or accepted as the
// list's auto_reply_action says. What counts as automatic is Notices/AutomaticMail's one rule.
using Mailman.Lists;
using Mailman.Notices;

namespace Mailman.Moderation.Rules;

public sealed class AutoReply : IRule
{
    public string Name => "auto-reply";

    public string Description => "apply auto_reply_action to automatic replies (Auto-Submitted, Precedence: bulk/junk)";

    public bool SkippedWhenApproved => true;

    public RuleResult Check(ModerationContext context)
    {
        // Precedence: list is mail distributed by another list (an umbrella list): a post, not a reply.
        if (AutomaticMail.AutoSubmitted(context.Message.Headers, includeListPrecedence: false) is not { } why)
        {
            return RuleResult.Miss;
        }

        var reason = $"an automatic reply ({why})";
        return context.List.AutoReplyAction switch
        {
            AutoReplyAction.Accept => RuleResult.Miss,
            AutoReplyAction.Hold => RuleResult.Hold(reason),
            _ => RuleResult.Discard(reason),
        };
    }
}
