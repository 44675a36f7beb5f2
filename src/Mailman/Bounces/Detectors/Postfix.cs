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

    // Each "<addr>: host mx[...] said: 550 5.7.1 ..." with its indented continuation lines as the
    // diagnostic: a refusal of our server or of the message is not scored (review 61).
    private static AddressCollector Find(IReadOnlyList<string> lines)
    {
        var found = new AddressCollector();
        var salutation = false;
        for (var i = 0; i < lines.Count; i++)
        {
            var line = lines[i].TrimEnd();
            if (!salutation)
            {
                salutation = Salutation().IsMatch(line) || line.Equals("failure reason:", StringComparison.OrdinalIgnoreCase);
            }
            else if (line.Length > 0 && AngleColon.Find(line) is { } address)
            {
                var diagnostic = new List<string> { line[(line.IndexOf(address + ">:", StringComparison.Ordinal) + address.Length + 2)..] };
                for (; i + 1 < lines.Count && lines[i + 1].Length > 0 && char.IsWhiteSpace(lines[i + 1][0]) && lines[i + 1].Trim().Length > 0; i++)
                {
                    if (diagnostic.Count < 40)
                    {
                        diagnostic.Add(lines[i + 1]);
                    }
                }

                found.Add(address, diagnostic: AddressCollector.Diagnostic(diagnostic));
            }
        }

        return found;
    }

    [GeneratedRegex(@"^[ \t]*the\s*(bns)?\s*(postfix|keftamail|smtp_gateway)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Salutation();
}
