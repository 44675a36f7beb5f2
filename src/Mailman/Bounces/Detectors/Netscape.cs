// Netscape Messaging Server: DSN-shaped reports without -Recipient fields; "<addr>" lines after
// "This Message was undeliverable due to the following reason:".
namespace Mailman.Bounces.Detectors;

public sealed class Netscape : IBounceDetector
{
    public string Name => "Netscape";

    public string Description => "Netscape Messaging Server bounces";

    public BounceAnalysis? Detect(BounceContext message)
    {
        if (message.Message.Body is not MimeKit.Multipart || !message.Mentions("this message was undeliverable due to the following reason:"))
        {
            return null;
        }

        // The first text/plain leaf that is not the last leaf.
        var leaves = message.Parts.Where(p => p.Entity is MimeKit.MimePart).ToList();
        var plain = leaves.Take(leaves.Count - 1).Select(p => p.Entity).OfType<MimeKit.MimePart>()
            .FirstOrDefault(p => p.ContentType.IsMimeType("text", "plain"));
        if (plain is null)
        {
            return null;
        }

        var found = new AddressCollector();
        var inSection = false;
        foreach (var line in message.LinesOf(plain))
        {
            if (!inSection)
            {
                inSection = line.Contains("This Message was undeliverable due to the following reason:", StringComparison.OrdinalIgnoreCase);
                continue;
            }

            // The last "<addr>" on the line, unless the line asks for replies elsewhere.
            var close = line.LastIndexOf('>');
            var open = close > 0 ? line.LastIndexOf('<', close - 1) : -1;
            if (open >= 0 && !line.StartsWith("please reply to", StringComparison.OrdinalIgnoreCase))
            {
                found.Add(line[(open + 1)..line.IndexOf('>', open)]);
            }
        }

        return found.Result(BounceKind.Permanent, Name);
    }
}
