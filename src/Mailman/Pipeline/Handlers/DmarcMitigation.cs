// The dmarc handler (Mailman 3's handlers/dmarc.py): for a post whose From: domain publishes
// p=reject or p=quarantine (found by the dmarc-moderation check), or for every post when the list
// mitigates unconditionally, munge From: to the list ("Anne Smith via Dev Team" <dev@...>, the
// original in Reply-To: or Cc:) or wrap the post, whole and byte for byte, as a message/rfc822
// attachment of a message from the list. Runs before the other handlers, so the list's headers,
// subject prefix, personalization and footer go on the outer message. Also applies the site's
// remove_dkim_headers (Mailman 3's cleanse-dkim) to every post.
using System.Text;
using System.Text.RegularExpressions;
using Mailman.Delivery;
using Mailman.Dmarc;
using Mailman.Lists;
using Mailman.Queues;
using Microsoft.Extensions.Logging;
using MimeKit;
using MimeKit.Utils;

namespace Mailman.Pipeline.Handlers;

public sealed partial class DmarcMitigation(DmarcServices dmarc) : IHandler
{
    /// <summary>Headers of the post kept on a wrapper (Mailman 3's KEEPERS, matched as prefixes).</summary>
    private static readonly string[] Keepers =
    [
        "archived-at", "date", "in-reply-to", "list-", "precedence", "references", "subject", "to", "x-mailman-",

        // Not Mailman 3's: the loop marker of every list the post already went through. Without
        // it two wrapping lists that are members of each other pass one post back and forth for
        // good (List-Id is replaced by each list, so X-BeenThere is what loop-detection finds).
        "x-beenthere",
    ];

    /// <summary>What Mailman 3's cleanse-dkim removes.</summary>
    private static readonly string[] DkimHeaders = ["DomainKey-Signature", "DKIM-Signature", "Authentication-Results"];

    public string Name => "dmarc";

    public string Description => "munge From: or wrap the post for p=reject/quarantine From: domains (dmarc_mitigate_action)";

    public HandlerResult Process(PostContext post)
    {
        if (dmarc.RemoveDkimHeaders)
        {
            foreach (var field in DkimHeaders)
            {
                post.Message.Headers.RemoveAll(field);
            }
        }

        var list = post.List;
        var action = list.DmarcMitigateAction;
        if (action == DmarcMitigateAction.NoMitigation)
        {
            return HandlerResult.Continue;
        }

        var note = post.Metadata.Dmarc ?? LookUp(post);
        var unconditional = list.DmarcMitigateUnconditionally && action is DmarcMitigateAction.MungeFrom or DmarcMitigateAction.WrapMessage;
        if (!note.Mitigate && !unconditional)
        {
            return HandlerResult.Continue;
        }

        // reject/discard only reach here when DNS failed (the check lets those through): munging
        // is harmless, a bounce at every member's provider is not.
        var applied = action == DmarcMitigateAction.WrapMessage ? DmarcMitigateAction.WrapMessage : DmarcMitigateAction.MungeFrom;
        if (applied == DmarcMitigateAction.WrapMessage)
        {
            Wrap(post);
        }
        else
        {
            MungeFrom(post.Message, list, post.Metadata.Sender, OriginalAuthors(post));
        }

        dmarc.Log.LogInformation("DMARC mitigation of post {MessageId} to {ListId}: From: domain {Domain}, policy {Policy}, action {Action}",
            post.Metadata.MessageId, list.Name.Fqdn, note.Domain, note.Policy, MailingList.Snake(applied.ToString()));
        return HandlerResult.Continue;
    }

    // A post that reached the pipeline without the incoming check's note (queued before it existed).
    private DmarcNote LookUp(PostContext post)
    {
        var domains = DmarcModeration.FromDomains(post);
        if (DmarcModeration.TooManyDomains(domains) is { } many)
        {
            post.Metadata.Dmarc = many;
            return many;
        }

        var result = dmarc.Lookup.LookupAll(domains);
        var note = result is null ? new DmarcNote("", "no-from", false) : new DmarcNote(result.Domain, result.PolicyName, result.NeedsMitigation);
        post.Metadata.Dmarc = note;
        return note;
    }

    // The From: mailboxes of the post as received, every From: header's: the pipeline keeps only
    // the first header (review 58), and a second one's author is often whose domain asked for the
    // mitigation (review 112). Null when the post as received cannot be read (the message's then).
    private static List<MailboxAddress>? OriginalAuthors(PostContext post)
    {
        if (post.OpenOriginal is not { } open)
        {
            return null;
        }

        try
        {
            using var original = open();
            return Authors(HeaderList.Load(original));
        }
        catch (Exception e) when (e is FormatException or IOException)
        {
            return null;
        }
    }

    private static List<MailboxAddress> Authors(IEnumerable<Header> headers)
    {
        var authors = new List<MailboxAddress>();
        foreach (var header in headers)
        {
            if (header.Id == HeaderId.From && InternetAddressList.TryParse(header.RawValue, out var list))
            {
                authors.AddRange(list.Mailboxes);
            }
        }

        return authors;
    }

    /// <summary>Replaces From: with the list's address and adds the authors to Reply-To: or Cc:.</summary>
    public static void MungeFrom(MimeMessage message, MailingList list, string? envelopeSender, IReadOnlyList<MailboxAddress>? fromMailboxes = null)
    {
        var (from, authors) = MungedFrom(message, list, envelopeSender, fromMailboxes);
        AddOriginal(message, list, authors);
        message.From.Clear();
        message.From.Add(from);
    }

    /// <summary>
    /// Mailman 3's munged_headers: the new From:, and the authors to add to Reply-To:/Cc:. With one
    /// From: mailbox its name makes the new From:'s; with none or several, the envelope sender's
    /// address does (as Mailman 3's original_sender). The authors are every From: mailbox (up to
    /// <see cref="MaximumAuthors"/>; not Mailman 3's, which names only the envelope sender when
    /// there are several, so an author whose domain asked for the mitigation vanished from the
    /// post), or the envelope sender when From: has none.
    /// </summary>
    public static (MailboxAddress From, IReadOnlyList<MailboxAddress> Authors) MungedFrom(MimeMessage message, MailingList list, string? envelopeSender, IReadOnlyList<MailboxAddress>? fromMailboxes = null)
    {
        var authors = new List<MailboxAddress>();
        foreach (var mailbox in fromMailboxes ?? [.. message.From.Mailboxes])
        {
            if (authors.Count < MaximumAuthors && mailbox.Address.Contains('@', StringComparison.Ordinal)
                && !authors.Any(a => a.Address.Equals(mailbox.Address, StringComparison.OrdinalIgnoreCase)))
            {
                // The authors' names go back out in Reply-To: or Cc: as well: no line breaks in them.
                authors.Add(new MailboxAddress(Lists.Member.Sanitize(mailbox.Name ?? ""), mailbox.Address));
            }
        }

        var sender = envelopeSender?.Trim().Trim('<', '>');
        if (authors.Count == 0 && !string.IsNullOrEmpty(sender))
        {
            authors.Add(new MailboxAddress("", sender));
        }

        var realname = authors.Count != 1 ? sender ?? ""
            : authors[0].Name is { } name && !string.IsNullOrWhiteSpace(name) ? name : authors[0].Address;

        // An address in the name would put a second domain in From: (spam filters dislike it).
        // Names are capped first: a match is linear, but not a name of megabytes.
        realname = Lists.Member.Sanitize(realname);
        realname = AddressInName().Replace(realname, "---");
        realname = new string(realname.Select(c => char.IsControl(c) ? ' ' : c).ToArray()).Trim();
        var listName = string.IsNullOrEmpty(list.DisplayName) ? list.Name.LocalPart : list.DisplayName;
        var display = realname.Length == 0 ? listName : $"{realname} via {listName}";
        return (new MailboxAddress(display, list.Name.Fqdn), authors);
    }

    /// <summary>Authors of one post named in Reply-To: or Cc: (a From: of hundreds is not a post's authors).</summary>
    public const int MaximumAuthors = 10;

    // Mailman 3: Reply-To: when the list leaves Reply-To alone, else Cc:, so reply and reply-all
    // do what they do on other posts of the list. Not added twice.
    private static void AddOriginal(MimeMessage message, MailingList list, IReadOnlyList<MailboxAddress> authors)
    {
        var target = list.ReplyTo == ReplyToPolicy.None ? message.ReplyTo : message.Cc;
        foreach (var author in authors)
        {
            if (!target.Mailboxes.Any(m => m.Address.Equals(author.Address, StringComparison.OrdinalIgnoreCase)))
            {
                target.Add(author);
            }
        }
    }

    /// <summary>
    /// Mailman 3's wrap_message: the post keeps only the <see cref="Keepers"/> headers, gets a new
    /// Message-ID, the munged From: and Reply-To:/Cc:, and a body of the wrapped-message text (if
    /// any) and the original as received, attached whole as message/rfc822 (message/global when
    /// its header block is raw UTF-8).
    /// </summary>
    public static void Wrap(PostContext post)
    {
        var message = post.Message;
        var list = post.List;
        var (original, fromMailboxes) = Original(post);
        var (from, authors) = MungedFrom(message, list, post.Metadata.Sender, fromMailboxes);
        var replyTo = message.ReplyTo.ToList();
        var cc = message.Cc.ToList();
        var headers = message.Headers;
        for (var i = headers.Count - 1; i >= 0; i--)
        {
            var field = headers[i].Field;
            if (!Keepers.Any(k => field.StartsWith(k, StringComparison.OrdinalIgnoreCase)))
            {
                headers.RemoveAt(i);
            }
        }

        headers.Add(HeaderId.MimeVersion, "1.0");
        message.MessageId = MimeUtils.GenerateMessageId(list.Name.Domain);
        message.From.Add(from);

        // The original's Reply-To: or Cc: (whichever Mailman 3 would add the author to) comes back with the authors.
        if (list.ReplyTo == ReplyToPolicy.None)
        {
            message.ReplyTo.AddRange(replyTo);
        }
        else
        {
            message.Cc.AddRange(cc);
        }

        AddOriginal(message, list, authors);
        var attached = WireFormat.Attached(original);
        attached.ContentDisposition = new ContentDisposition(ContentDisposition.Inline);
        var text = list.DmarcWrappedMessageText;
        if (string.IsNullOrWhiteSpace(text))
        {
            message.Body = attached;
            return;
        }

        text = text.ReplaceLineEndings("\n");
        var explanation = new TextPart("plain")
        {
            Content = new MimeContent(new MemoryStream(Encoding.UTF8.GetBytes(text.EndsWith('\n') ? text : text + "\n")), ContentEncoding.EightBit),
            ContentTransferEncoding = ContentEncoding.EightBit,
            ContentDisposition = new ContentDisposition(ContentDisposition.Inline),
        };
        explanation.ContentType.Charset = "utf-8";
        message.Body = new Multipart("mixed") { explanation, attached };
    }

    // The post as received, from the queue file when the runner can open it (so the original's
    // own DKIM signature still verifies inside the wrapper), else the message as it stands.
    // Loaded into memory (not persistent): wrapping is per post and rare, and the stream's life
    // would otherwise have to outlast the handler. With its authors, as OriginalAuthors finds
    // them (null without the queue file: the message's own From: then), from the one reading.
    private static (MimeMessage Original, List<MailboxAddress>? Authors) Original(PostContext post)
    {
        if (post.OpenOriginal is { } open)
        {
            using var original = open();
            var loaded = MimeMessage.Load(original);
            var authors = Authors(loaded.Headers);
            Delivery.WireFormat.MakeTransportable(loaded);
            return (loaded, authors);
        }

        using var copy = new MemoryStream();
        post.Message.WriteTo(copy);
        copy.Position = 0;
        return (MimeMessage.Load(copy), null);
    }

    [GeneratedRegex(@"@([^ .]+\.)+[^ .]+$", RegexOptions.NonBacktracking)]
    private static partial Regex AddressInName();
}
