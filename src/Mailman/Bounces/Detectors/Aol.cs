// AOL's bounces that name only screen names: one per line after the tag line.
namespace Mailman.Bounces.Detectors;

public sealed class Aol : IBounceDetector
{
    public string Name => "AOL";

    public string Description => "AOL bounces naming screen names (name@aol.com)";

    public BounceAnalysis? Detect(BounceContext message)
    {
        if (!message.Is("text", "plain") || !message.From.EndsWith("@aol.com", StringComparison.OrdinalIgnoreCase)
            || message.TextParts.Count == 0)
        {
            return null;
        }

        var found = new AddressCollector();
        var tagSeen = false;
        foreach (var line in message.TextParts[0].Lines)
        {
            if (line.Contains("mail to the following recipients could not be delivered", StringComparison.Ordinal))
            {
                tagSeen = true;
                continue;
            }

            var local = line.Trim();
            if (!tagSeen || local.Length == 0)
            {
                continue;
            }

            if (local.AsSpan().ContainsAny(" \t"))
            {
                break;
            }

            found.Add(local.Contains('@', StringComparison.Ordinal) ? local : local + "@aol.com");
        }

        return found.Result(BounceKind.Permanent, Name);
    }
}
