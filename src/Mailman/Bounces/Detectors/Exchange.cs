// Microsoft Exchange's older non-delivery reports: recipients listed between "did not reach the
// following recipient(s)" and the MSEXCH: diagnostic.
using System.Text.RegularExpressions;

namespace Mailman.Bounces.Detectors;

public sealed partial class Exchange : IBounceDetector
{
    public string Name => "Exchange";

    public string Description => "Exchange NDRs: \"did not reach the following recipient\" ... MSEXCH:";

    public BounceAnalysis? Detect(BounceContext message)
    {
        if (!message.Mentions("did not reach the following recipient"))
        {
            return null;
        }

        var found = new AddressCollector();
        var started = false;
        foreach (var line in message.BodyLines)
        {
            if (!started)
            {
                started = line.Contains("did not reach the following recipient", StringComparison.Ordinal);
                continue;
            }

            if (line.Contains("MSEXCH:", StringComparison.Ordinal))
            {
                break;
            }

            var match = SmtpAddress().Match(line);
            if (!match.Success)
            {
                match = WordBeforeOn().Match(line);
            }

            if (match.Success)
            {
                found.Add(match.Groups["addr"].Value);
            }
        }

        return found.Result(BounceKind.Permanent, Name);
    }

    [GeneratedRegex(@"SMTP=(?<addr>[^;]+); on ", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex SmtpAddress();

    [GeneratedRegex(@"(?<addr>[^ ]+) on ", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex WordBeforeOn();
}
