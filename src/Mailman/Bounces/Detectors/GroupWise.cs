// Novell GroupWise, NTMail and Exchange's Internet Mail Service: the first text/plain part
// names the failed addresses, bracketed or as the first word of a line.
using MimeKit;

namespace Mailman.Bounces.Detectors;

public sealed class GroupWise : IBounceDetector
{
    public string Name => "GroupWise";

    public string Description => "GroupWise / NTMail / Internet Mail Service bounces (by X-Mailer)";

    public BounceAnalysis? Detect(BounceContext message)
    {
        if (!message.Is("multipart", "mixed") || message.Header("X-Mailer") is not { } mailer)
        {
            return null;
        }

        var prefix = mailer.TrimStart();
        if (!(prefix.StartsWith("nov", StringComparison.OrdinalIgnoreCase) || prefix.StartsWith("ntm", StringComparison.OrdinalIgnoreCase)
            || prefix.StartsWith("int", StringComparison.OrdinalIgnoreCase)))
        {
            return null;
        }

        var plain = message.Parts.Select(p => p.Entity).OfType<MimePart>().FirstOrDefault(p => p.ContentType.IsMimeType("text", "plain"));
        if (plain is null)
        {
            return null;
        }

        var found = new AddressCollector();
        foreach (var line in message.LinesOf(plain))
        {
            if (AngleColon.Angle(line) is { } bracketed)
            {
                found.Add(bracketed);
            }
            else if (line.Contains('@', StringComparison.Ordinal) && !line.StartsWith(' '))
            {
                var space = line.IndexOf(' ', StringComparison.Ordinal);
                found.Add(space < 0 ? line : line[..space]);
            }
        }

        return found.Result(BounceKind.Permanent, Name);
    }
}
