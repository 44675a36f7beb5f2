// Yahoo!'s own bounce format, from mailer-daemon@yahoo...: "<addr>:" lines after the tag line.
using System.Text.RegularExpressions;

namespace Mailman.Bounces.Detectors;

public sealed partial class Yahoo : IBounceDetector
{
    public string Name => "Yahoo";

    public string Description => "Yahoo! bounces from mailer-daemon@yahoo.*";

    public BounceAnalysis? Detect(BounceContext message)
    {
        if (!message.From.StartsWith("mailer-daemon@yahoo", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var found = new AddressCollector();
        var tagSeen = false;
        foreach (var raw in message.BodyLines)
        {
            var line = raw.Trim();
            if (!tagSeen)
            {
                tagSeen = Tag().IsMatch(line);
            }
            else if (AngleColon.AtStart(line) is { } address)
            {
                found.Add(address);
            }
            else if (line.StartsWith("--- Original message follows", StringComparison.Ordinal)
                || line.StartsWith("--- Below this line is a copy of the message", StringComparison.Ordinal))
            {
                break;
            }
        }

        return found.Result(BounceKind.Permanent, Name);
    }

    [GeneratedRegex(@"^(message\s+from\s+yahoo\.\S+|Sorry, we were unable to deliver your message to the following address(\(es\))?\.)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Tag();
}
