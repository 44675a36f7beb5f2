// emergency: while the list's emergency setting is on, every post is held.
namespace Mailman.Moderation.Rules;

public sealed class Emergency : IRule
{
    public string Name => "emergency";

    public string Description => "hold every post while the list is in emergency moderation";

    public bool SkippedWhenApproved => true;

    public RuleResult Check(ModerationContext context)
        => context.List.Emergency ? RuleResult.Hold("the list is in emergency moderation") : RuleResult.Miss;
}
