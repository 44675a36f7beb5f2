// RFC 8098 message disposition notifications that are read receipts: a member's mail client
// said the post was displayed (or dispatched, processed). Never a bounce, and not unrecognized
// either (review 49: a read receipt at a VERP address was forwarded to the owners). A
// notification that the message was deleted is left to the other detectors: Dovecot's Sieve
// "reject" writes its refusals in this format (corpus simple_38, a permanent failure).
using MimeKit;

namespace Mailman.Bounces.Detectors;

public sealed class Mdn : IBounceDetector
{
    private static readonly string[] ReceiptDispositions = ["displayed", "dispatched", "processed"];

    public string Name => "MDN";

    public string Description => "RFC 8098 read receipts (displayed, dispatched, processed): not a bounce";

    public BounceAnalysis? Detect(BounceContext message)
    {
        foreach (var (entity, depth) in message.Parts)
        {
            if (depth != 0 || entity is not MimePart part
                || !(part.ContentType.IsMimeType("message", "disposition-notification") || part.ContentType.IsMimeType("message", "global-disposition-notification")))
            {
                continue;
            }

            foreach (var field in ReportFields.Parse(BounceContext.ReadText(part, BounceContext.TextPrefixBytes)))
            {
                // "Disposition: manual-action/MDN-sent-manually; displayed/error" (RFC 8098 §3.2.6).
                if (field.Is("Disposition"))
                {
                    var semicolon = field.Value.IndexOf(';', StringComparison.Ordinal);
                    var type = semicolon < 0 ? "" : field.Value[(semicolon + 1)..].Trim();
                    var end = type.IndexOfAny(['/', ' ', '\t', '(']);
                    type = (end < 0 ? type : type[..end]).ToLowerInvariant();
                    return Array.IndexOf(ReceiptDispositions, type) >= 0 ? new BounceAnalysis(BounceKind.NotABounce, [], Name) : null;
                }
            }

            return null;
        }

        return null;
    }
}
