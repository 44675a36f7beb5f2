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

        // The strictest of the authors' actions: one author cannot lift another's moderation.
        var (action, who) = members
            .Select(m => (Action: Effective(m, context.List), m.Address))
            .MaxBy(x => Strictness(x.Action));

        return action switch
        {
            ModerationAction.Accept => RuleResult.Accept($"member {who}: moderation_action accept"),
            ModerationAction.Hold => RuleResult.Hold($"post from moderated member {who}"),
            ModerationAction.Reject => RuleResult.Reject($"posts from {who} are rejected by the list's moderators"),
            ModerationAction.Discard => RuleResult.Discard($"member {who}: moderation_action discard"),
            _ => RuleResult.Miss,
        };
    }

    private static ModerationAction Effective(MemberRecord member, MailingList list)
    {
        var own = Enum.TryParse<ModerationAction>(member.ModerationAction, ignoreCase: true, out var a) && Enum.IsDefined(a) ? a : ModerationAction.Defer;
        return own == ModerationAction.Defer ? list.DefaultMemberAction : own;
    }

    // accept < defer < hold < reject < discard.
    private static int Strictness(ModerationAction action) => action switch
    {
        ModerationAction.Accept => 0,
        ModerationAction.Defer => 1,
        ModerationAction.Hold => 2,
        ModerationAction.Reject => 3,
        _ => 4,
    };
}
