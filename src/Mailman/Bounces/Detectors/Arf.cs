// RFC 5965 Abuse Reporting Format: a recipient complained (feedback loop). Never a bounce; the
// complaint names who complained so the runner can log it against the member.
using MimeKit;

namespace Mailman.Bounces.Detectors;

public sealed class Arf : IBounceDetector
{
    public string Name => "ARF";

    public string Description => "RFC 5965 feedback reports (complaints): not a bounce";

    public BounceAnalysis? Detect(BounceContext message)
    {
        MimePart? report = null;
        foreach (var (entity, depth) in message.Parts)
        {
            if (depth == 0 && entity is MimePart part && part.ContentType.IsMimeType("message", "feedback-report"))
            {
                report = part;
                break;
            }
        }

        if (report is null)
        {
            return null;
        }

        string? feedbackType = null;
        var recipients = new AddressCollector();
        foreach (var field in ReportFields.Parse(BounceContext.ReadText(report, BounceContext.TextPrefixBytes)))
        {
            if (field.Is("Feedback-Type"))
            {
                feedbackType ??= field.Value.Trim();
            }
            else if (field.Is("Original-Rcpt-To"))
            {
                recipients.Add(field.Value);
            }
        }

        if (recipients.Count == 0)
        {
            AddOriginalTo(message, recipients);
        }

        var complaint = new Complaint(string.IsNullOrEmpty(feedbackType) ? null : feedbackType, recipients.Addresses.Select(a => a.Address).ToList());
        return new BounceAnalysis(BounceKind.NotABounce, [], Name, complaint);
    }

    /// <summary>The To: of the attached original (message/rfc822, or text/rfc822-headers).</summary>
    private static void AddOriginalTo(BounceContext message, AddressCollector recipients)
    {
        foreach (var (entity, depth) in message.Parts)
        {
            if (depth != 0)
            {
                continue;
            }

            if (entity is MessagePart { Message: { } original })
            {
                AddMailboxes(original.To, recipients);
                return;
            }

            if (entity is MimePart part && part.ContentType.IsMimeType("text", "rfc822-headers"))
            {
                foreach (var field in ReportFields.Parse(BounceContext.ReadText(part, BounceContext.TextPrefixBytes)))
                {
                    if (field.Is("To") && InternetAddressList.TryParse(field.Value, out var to))
                    {
                        AddMailboxes(to, recipients);
                        return;
                    }
                }
            }
        }
    }

    private static void AddMailboxes(InternetAddressList list, AddressCollector recipients)
    {
        foreach (var mailbox in list.Mailboxes)
        {
            recipients.Add(mailbox.Address);
        }
    }
}
