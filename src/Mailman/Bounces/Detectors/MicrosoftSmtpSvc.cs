// Microsoft SMTPSVC: a multipart/mixed whose first part, after "transcript of session
// follows", lists the failed addresses one a line.
using MimeKit;

namespace Mailman.Bounces.Detectors;

public sealed class MicrosoftSmtpSvc : IBounceDetector
{
    public string Name => "Microsoft";

    public string Description => "Microsoft SMTPSVC bounces (addresses after the session transcript line)";

    public BounceAnalysis? Detect(BounceContext message)
    {
        if (message.Message.Body is not Multipart { Count: > 0 } mixed || !mixed.ContentType.IsMimeType("multipart", "mixed")
            || mixed[0] is not MimePart first || !message.Mentions("transcript of session follows"))
        {
            return null;
        }

        var found = new AddressCollector();
        var tagSeen = false;
        foreach (var line in message.LinesOf(first))
        {
            if (!tagSeen)
            {
                tagSeen = line.Contains("transcript of session follows", StringComparison.OrdinalIgnoreCase);
            }
            else if (AddressText.LooksLikeAddress(line.AsSpan().Trim()))
            {
                found.Add(line);
            }
        }

        return found.Result(BounceKind.Permanent, Name);
    }
}
