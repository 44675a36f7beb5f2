// member-moderation: a post whose authors are all members gets their moderation_action (a
// member's defer means the list's default_member_action); with several authors the strictest
// applies. defer: the remaining rules decide; accept: accepted at once; hold, reject, discard.
using Mailman.Lists;

namespace Mailman.Moderation.Rules;

public sealed class MemberModeration : IRule
{
    public string Name => "member-moderation";

    public string Description => "apply the members' moderation_action (default_member_action for defer)";

    public bool SkippedWhenApproved => true;

    public RuleResult Check(ModerationContext context)
    {
        if (context.SenderMembers is not { } members)
        {
            return RuleResult.Miss;
        }

        var action = ModerationAction.Defer;
        var who = "";
        foreach (var member in members)
        {
            var own = Enum.TryParse<ModerationAction>(member.ModerationAction, ignoreCase: true, out var a) ? a : ModerationAction.Defer;
            var effective = own == ModerationAction.Defer ? context.List.DefaultMemberAction : own;
            if (Strictness(effective) > Strictness(action))
            {
                action = effective;
                who = member.Address;
            }
        }

        return action switch
        {
            ModerationAction.Accept => RuleResult.Accept($"member {who}: moderation_action accept"),
            ModerationAction.Hold => RuleResult.Hold($"post from moderated member {who}"),
            ModerationAction.Reject => RuleResult.Reject($"posts from {who} are rejected by the list's moderators"),
            ModerationAction.Discard => RuleResult.Discard($"member {who}: moderation_action discard"),
            _ => RuleResult.Miss,
        };
    }

    // accept < defer < hold < reject < discard: one author cannot lift another's moderation.
    private static int Strictness(ModerationAction action) => action switch
    {
        ModerationAction.Accept => 0,
        ModerationAction.Defer => 1,
        ModerationAction.Hold => 2,
        ModerationAction.Reject => 3,
        _ => 4,
    };
}
