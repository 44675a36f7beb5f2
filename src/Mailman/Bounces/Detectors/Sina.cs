// sina.com's bounces: from mailer-daemon@sina.com, "<addr>" lines in the first part.
using MimeKit;

namespace Mailman.Bounces.Detectors;

public sealed class Sina : IBounceDetector
{
    public string Name => "Sina";

    public string Description => "sina.com bounces: <addr> lines in the first part";

    public BounceAnalysis? Detect(BounceContext message)
    {
        if (!message.From.Equals("mailer-daemon@sina.com", StringComparison.OrdinalIgnoreCase)
            || message.Message.Body is not Multipart { Count: > 0 } multipart)
        {
            return null;
        }

        var found = new AddressCollector();
        foreach (var text in message.TextParts)
        {
            if (!IsWithin(text.Part, multipart[0]))
            {
                continue;
            }

            foreach (var line in text.Lines)
            {
                found.Add(AngleColon.AngleAtStart(line));
            }
        }

        return found.Result(BounceKind.Permanent, Name);
    }

    private static bool IsWithin(MimeEntity part, MimeEntity container)
        => ReferenceEquals(part, container) || (container is Multipart m && m.Any(child => IsWithin(part, child)));
}
