// nonmember-moderation: a post that is not a member's (an author who is not a member, no author
// at all, or more authors than are looked up) gets the list's nonmember_action. accept lets it
// on to the remaining rules, as a member's post with defer.
using Mailman.Lists;

namespace Mailman.Moderation.Rules;

public sealed class NonmemberModeration : IRule
{
    public string Name => "nonmember-moderation";

    public string Description => "apply the list's nonmember_action to posts not from members";

    public bool SkippedWhenApproved => true;

    public RuleResult Check(ModerationContext context)
    {
        if (context.SenderMembers is not null || context.List.NonMemberAction == NonMemberAction.Accept)
        {
            return RuleResult.Miss;
        }

        var senders = context.Senders;
        var reason = senders.Total == 0 ? "the post names no sender"
            : senders.TooMany ? $"From: names {senders.Total} addresses ({senders.Summary}); at most {Senders.Limit} are looked up"
            : $"post from non-member {senders.Summary}";
        return context.List.NonMemberAction switch
        {
            NonMemberAction.Hold => RuleResult.Hold(reason),
            NonMemberAction.Reject => RuleResult.Reject(reason),
            _ => RuleResult.Discard(reason),
        };
    }
}
