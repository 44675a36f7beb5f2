// Ipswitch IMail ("X-Mailer: <SMTP32 v...>"): a prefix such as "unknown user:" then the address.
using System.Text.RegularExpressions;

namespace Mailman.Bounces.Detectors;

public sealed partial class Smtp32 : IBounceDetector
{
    public string Name => "SMTP32";

    public string Description => "IMail bounces (X-Mailer: <SMTP32 v...>)";

    public BounceAnalysis? Detect(BounceContext message)
    {
        if (message.Header("X-Mailer") is not { } mailer || !mailer.TrimStart().StartsWith("<SMTP32 v", StringComparison.Ordinal))
        {
            return null;
        }

        var found = new AddressCollector();
        foreach (var line in message.BodyLines)
        {
            if (line.Contains("original message follows", StringComparison.OrdinalIgnoreCase))
            {
                break;
            }

            if (Prefix().Match(line) is { Success: true } match)
            {
                found.Add(match.Groups["addr"].Value);
            }
        }

        return found.Result(BounceKind.Permanent, Name);
    }

    [GeneratedRegex(@"(user mailbox[^:]*:|delivery failed[^:]*:|unknown user[^:]*:|undeliverable +to|delivery userid[^:]*:)\s*(?<addr>[^\s]*)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex Prefix();
}
