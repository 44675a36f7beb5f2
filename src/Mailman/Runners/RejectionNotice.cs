// The notice a poster gets when the list rejects their post (RFC 3834 auto-reply rules: sent to
// the envelope sender, never to the null sender or in reply to an automatic message).
using System.Text;
using Mailman.Lists;
using Mailman.Queues;
using MimeKit;

namespace Mailman.Runners;

public static class RejectionNotice
{
    /// <summary>Who should get the notice, or null when none may be sent.</summary>
    public static string? Recipient(MimeMessage post, EntryMetadata metadata)
    {
        var autoSubmitted = post.Headers[HeaderId.AutoSubmitted];
        if (autoSubmitted is not null && !autoSubmitted.Trim().StartsWith("no", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        if (metadata.Sender is not null)
        {
            // "<>" or empty: a bounce; never answer it.
            var sender = metadata.Sender.Trim().Trim('<', '>');
            return sender.Length == 0 ? null : sender;
        }

        return post.From.Mailboxes.FirstOrDefault()?.Address;
    }

    /// <summary>The notice, flattened with CRLF, ready for the out queue.</summary>
    public static byte[] Build(MailingList list, MimeMessage post, string recipient, string reason)
    {
        var notice = new MimeMessage();
        notice.From.Add(new MailboxAddress(list.DisplayName, list.Name.OwnerAddress));
        notice.To.Add(MailboxAddress.Parse(recipient));
        notice.Subject = $"Your message to {list.Name.Fqdn} was rejected";
        notice.Headers.Add(HeaderId.AutoSubmitted, "auto-replied");
        notice.Headers.Add("X-BeenThere", list.Name.Fqdn);
        if (post.MessageId is { } id)
        {
            notice.InReplyTo = id;
        }

        var text = new TextPart("plain")
        {
            Text = $"Your message to the {list.Name.Fqdn} mailing list was rejected:\n\n    {reason}\n\nThe list owner can be reached at {list.Name.OwnerAddress}.\n",
        };
        text.ContentType.Charset = "utf-8";
        notice.Body = new Multipart("mixed") { text, new MessagePart { Message = post } };
        return Delivery.WireFormat.Flatten(notice);
    }
}
