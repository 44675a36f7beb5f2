// RFC 8098 message disposition notifications that are read receipts: a member's mail client
// said the post was displayed (or dispatched, processed), or a person deleted it unread
// (Outlook's "Not read", manual-action ...; deleted). Never a bounce, and not unrecognized
// either (review 49: a read receipt at a VERP address was forwarded to the owners). One deleted
// automatically is left to the other detectors: Dovecot's Sieve "reject" writes its refusals in
// this format (corpus simple_38, a permanent failure); so is a report that also holds a
// delivery-status part (review 50: a disposition part must not hide a DSN's failures).
using MimeKit;

namespace Mailman.Bounces.Detectors;

public sealed class Mdn : IBounceDetector
{
    private static readonly string[] ReceiptDispositions = ["displayed", "dispatched", "processed"];

    public string Name => "MDN";

    public string Description => "RFC 8098 read receipts (displayed, dispatched, processed, deleted by hand): not a bounce";

    public BounceAnalysis? Detect(BounceContext message)
    {
        MimePart? notification = null;
        foreach (var (entity, depth) in message.Parts)
        {
            if (depth != 0 || entity is not MimePart part)
            {
                continue;
            }

            if (part.ContentType.IsMimeType("message", "delivery-status") || part.ContentType.IsMimeType("message", "global-delivery-status"))
            {
                return null;
            }

            if (notification is null && (part.ContentType.IsMimeType("message", "disposition-notification") || part.ContentType.IsMimeType("message", "global-disposition-notification")))
            {
                notification = part;
            }
        }

        if (notification is null)
        {
            return null;
        }

        foreach (var field in ReportFields.Parse(BounceContext.ReadText(notification, BounceContext.TextPrefixBytes)))
        {
            // "Disposition: manual-action/MDN-sent-manually; displayed/error" (RFC 8098 §3.2.6).
            if (field.Is("Disposition"))
            {
                var semicolon = field.Value.IndexOf(';', StringComparison.Ordinal);
                var mode = (semicolon < 0 ? field.Value : field.Value[..semicolon]).Trim();
                var type = semicolon < 0 ? "" : field.Value[(semicolon + 1)..].Trim();
                var end = type.IndexOfAny(['/', ' ', '\t', '(']);
                var modifier = end >= 0 && type[end] == '/' ? type[(end + 1)..].Trim() : "";
                type = (end < 0 ? type : type[..end]).ToLowerInvariant();

                // "processed/error": the message was not processed (RFC 8098 §3.2.6.3): not a receipt (review 51).
                var receipt = !modifier.StartsWith("error", StringComparison.OrdinalIgnoreCase)
                    && (Array.IndexOf(ReceiptDispositions, type) >= 0 || (type == "deleted" && mode.StartsWith("manual-action", StringComparison.OrdinalIgnoreCase)));
                return receipt ? new BounceAnalysis(BounceKind.NotABounce, [], Name) : null;
            }
        }

        return null;
    }
}
