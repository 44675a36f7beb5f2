// suspicious-header: a post with a header that matches one of the list's bounce_matching_headers
// ("Header: regex", matched in linear time) is held, each match recorded.
namespace Mailman.Moderation.Rules;

public sealed class SuspiciousHeader : IRule
{
    public string Name => "suspicious-header";

    public string Description => "hold posts with a header matching the list's bounce_matching_headers";

    public bool SkippedWhenApproved => true;

    public RuleResult Check(ModerationContext context)
    {
        var matches = new List<string>();
        foreach (var (name, pattern) in context.List.SuspiciousHeaders())
        {
            foreach (var header in context.Message.Headers)
            {
                if (header.Field.Equals(name, StringComparison.OrdinalIgnoreCase) && pattern.IsMatch(header.Value))
                {
                    matches.Add($"{name}: matches '{pattern}'");
                    break;
                }
            }
        }

        return matches.Count == 0 ? RuleResult.Miss : RuleResult.Hold("suspicious header " + string.Join(", ", matches));
    }
}
