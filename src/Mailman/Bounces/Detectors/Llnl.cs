// LLNL's custom Sendmail notice: "The address to which your message was addressed, ADDR, did not
// exactly match an LLNL email address."
using System.Text.RegularExpressions;

namespace Mailman.Bounces.Detectors;

public sealed partial class Llnl : IBounceDetector
{
    public string Name => "LLNL";

    public string Description => "LLNL's \"did not exactly match\" notice";

    public BounceAnalysis? Detect(BounceContext message)
    {
        // Mailman's pattern (", addr,") alone matches half the mail in the world: only with its phrase.
        if (!message.Mentions("did not exactly match"))
        {
            return null;
        }

        foreach (var line in message.BodyLines)
        {
            if (Address().Match(line) is { Success: true } match)
            {
                var found = new AddressCollector();
                found.Add(match.Groups["addr"].Value);
                return found.Result(BounceKind.Permanent, Name);
            }
        }

        return null;
    }

    [GeneratedRegex(@",\s*(?<addr>\S+@[^,]+),", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex Address();
}
