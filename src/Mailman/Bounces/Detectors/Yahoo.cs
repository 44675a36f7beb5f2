// Yahoo!'s own bounce format, from mailer-daemon@yahoo...: qmail's "<addr>:" paragraphs after the tag line.
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
        using var lines = message.BodyLines.GetEnumerator();
        while (lines.MoveNext())
        {
            if (Tag().IsMatch(lines.Current.Trim()))
            {
                // qmail's paragraphs: each address with what the remote host said, so that a
                // refusal of our server or of the message is told from a dead mailbox.
                Qmail.RecipientParagraphs(lines, found);
                break;
            }
        }

        return found.Result(BounceKind.Permanent, Name);
    }

    [GeneratedRegex(@"^(message\s+from\s+yahoo\.\S+|Sorry, we were unable to deliver your message to the following address(\(es\))?\.)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Tag();
}
