// Postfix's pre-DSN bounces (and look-alikes: Keftamail, "BNS Postfix", SMTP_Gateway): a
// text/plain part described as "notification", addresses as "<addr>:" after the salutation.
using System.Text.RegularExpressions;
using MimeKit;

namespace Mailman.Bounces.Detectors;

public sealed partial class Postfix : IBounceDetector
{
    public string Name => "Postfix";

    public string Description => "old Postfix bounces: a \"notification\" part listing <addr>: lines";

    public BounceAnalysis? Detect(BounceContext message)
    {
        if (!message.Is("multipart", "mixed") && !message.Is("multipart", "report"))
        {
            return null;
        }

        foreach (var (entity, _) in message.Parts)
        {
            if (entity is MimePart part && part.ContentType.IsMimeType("text", "plain")
                && string.Equals(part.ContentDescription?.Trim(), "notification", StringComparison.OrdinalIgnoreCase))
            {
                return Find(message.LinesOf(part)).Result(BounceKind.Permanent, Name);
            }
        }

        return null;
    }

    private static AddressCollector Find(IReadOnlyList<string> lines)
    {
        var found = new AddressCollector();
        var salutation = false;
        foreach (var raw in lines)
        {
            var line = raw.TrimEnd();
            if (!salutation)
            {
                salutation = Salutation().IsMatch(line) || line.Equals("failure reason:", StringComparison.OrdinalIgnoreCase);
            }
            else if (line.Length > 0 && AngleColon.Find(line) is { } address)
            {
                found.Add(address);
            }
        }

        return found;
    }

    [GeneratedRegex(@"^[ \t]*the\s*(bns)?\s*(postfix|keftamail|smtp_gateway)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Salutation();
}
