// A check written as a pipeline handler (loop detection, the size limit, DMARC's) taking its
// place in the moderation chain: continue is a miss, hold/reject/discard are the rule's verdict.
using Mailman.Pipeline;

namespace Mailman.Moderation;

public sealed class HandlerRule(IHandler handler, bool skippedWhenApproved) : IRule
{
    public string Name => handler.Name;

    public string Description => handler.Description;

    public bool SkippedWhenApproved => skippedWhenApproved;

    public RuleResult Check(ModerationContext context)
    {
        var result = handler.Process(context.Post);
        var reason = result.Reason ?? "";
        return result.Action switch
        {
            HandlerAction.Continue => RuleResult.Miss,
            HandlerAction.Hold => RuleResult.Hold(reason),
            HandlerAction.Reject => RuleResult.Reject(reason),
            _ => RuleResult.Discard(reason),
        };
    }
}
