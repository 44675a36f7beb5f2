// Adds the list's header and footer templates to a post, placed so the MIME structure stays
// valid: appended to the text itself for a plain identity-encoded text/plain post, as separate
// text/plain parts of a multipart/mixed otherwise (as Mailman's decorate does). The original
// parts are kept byte for byte. Per-recipient placeholders become slot tokens.
using System.Text;
using Mailman.Templates;
using MimeKit;

namespace Mailman.Pipeline.Handlers;

public sealed class Decorate : IHandler
{
    public string Name => "decorate";

    public string Description => "add the list's header and footer templates, per recipient where personalized";

    public HandlerResult Process(PostContext post)
    {
        var header = Render(post.List.HeaderTemplate, post);
        var footer = Render(post.List.FooterTemplate, post);
        if (header.Length == 0 && footer.Length == 0)
        {
            return HandlerResult.Continue;
        }

        var message = post.Message;
        var ascii = IsPlainAscii(header, post) && IsPlainAscii(footer, post);
        if (message.Body is TextPart text && CanAppendInPlace(text))
        {
            if (!AppendInPlace(text, header, footer, ascii))
            {
                return HandlerResult.Continue;
            }
        }
        else if (message.Body is Multipart mixed && mixed.ContentType.IsMimeType("multipart", "mixed") && mixed is not MimeKit.Cryptography.MultipartSigned)
        {
            // A boundary of our own: the poster's may be missing (the parts went out between
            // empty "--" lines) or one a member's name in the footer could start a line with
            // (review 79: "--M" as a display name split the member's own copy).
            mixed.Boundary = new Multipart().Boundary!;
            if (header.Length > 0)
            {
                mixed.Insert(0, NewTextPart(header, ascii));
            }

            if (footer.Length > 0)
            {
                mixed.Add(NewTextPart(footer, ascii));
            }
        }
        else
        {
            var wrapper = new Multipart("mixed");
            if (header.Length > 0)
            {
                wrapper.Add(NewTextPart(header, ascii));
            }

            if (message.Body is not null)
            {
                wrapper.Add(message.Body);
            }

            if (footer.Length > 0)
            {
                wrapper.Add(NewTextPart(footer, ascii));
            }

            message.Body = wrapper;
        }

        // RFC 2045 4: a post without MIME-Version (a bare text/plain, say) that now has a
        // multipart body or a charset went out without it (review 79).
        if (!message.Headers.Contains(HeaderId.MimeVersion))
        {
            message.MimeVersion = new Version(1, 0);
        }

        return HandlerResult.Continue;
    }

    /// <summary>Expands list placeholders; recipient placeholders become slots (personalized) or empty.</summary>
    internal static string Render(string template, PostContext post)
    {
        if (string.IsNullOrEmpty(template))
        {
            return "";
        }

        var listValues = Template.ListValues(post.List);
        var text = Template.Expand(template, name =>
        {
            var slot = Slots.ForPlaceholder(name);
            if (slot is null)
            {
                return listValues(name);
            }

            return post.SlotNonce is null ? "" : Slots.Token(post.SlotNonce, slot.Value);
        });
        text = text.ReplaceLineEndings("\n");
        return text.EndsWith('\n') ? text : text + "\n";
    }

    // ASCII and no member's value: a name or an address may need UTF-8, known only per copy.
    private static bool IsPlainAscii(string text, PostContext post)
        => Ascii.IsValid(text) && (post.SlotNonce is null || !text.Contains(Slots.Marker(post.SlotNonce), StringComparison.Ordinal));

    // Appending to the text itself is safe only when the bytes in the part are the text:
    // 7bit/8bit (not base64 or quoted-printable), and a charset UTF-8 can extend.
    private static bool CanAppendInPlace(TextPart part)
    {
        if (!part.IsPlain || part.IsAttachment)
        {
            return false;
        }

        if (part.ContentTransferEncoding is not (ContentEncoding.Default or ContentEncoding.SevenBit or ContentEncoding.EightBit))
        {
            return false;
        }

        var charset = part.ContentType.Charset;
        return charset is null
            || charset.Equals("us-ascii", StringComparison.OrdinalIgnoreCase)
            || charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase)
            || charset.Equals("utf8", StringComparison.OrdinalIgnoreCase);
    }

    // The text is not copied: its content (a stream over the entry file when the post was parsed
    // in place) is chained between the header and footer bytes, so a 40 MB text post costs no
    // 40 MB here.
    // Whether the part's declaration changed (charset, encoding); not when an ASCII post stays as it was declared.
    private static bool AppendInPlace(TextPart part, string header, string footer, bool ascii)
    {
        var chained = new MimeKit.IO.ChainedStream();
        chained.Add(new MemoryStream(Encoding.UTF8.GetBytes(header)), leaveOpen: false);
        var content = part.Content?.Stream;
        if (content is not null && content.Length > 0)
        {
            content.Position = content.Length - 1;
            var last = content.ReadByte();
            content.Position = 0;
            chained.Add(content, leaveOpen: true);
            if (last != (byte)'\n')
            {
                chained.Add(new MemoryStream("\n"u8.ToArray()), leaveOpen: false);
            }
        }

        chained.Add(new MemoryStream(Encoding.UTF8.GetBytes(footer)), leaveOpen: false);

        // A 7-bit ASCII post with ASCII added stays as it was declared (no 8BITMIME needed on
        // the way, nothing for a relay to convert). Otherwise: US-ASCII is a subset of UTF-8, so
        // the original bytes stay valid, and names may need UTF-8.
        if (ascii && part.ContentTransferEncoding is ContentEncoding.Default or ContentEncoding.SevenBit
            && (part.ContentType.Charset is null || part.ContentType.Charset.Equals("us-ascii", StringComparison.OrdinalIgnoreCase)))
        {
            part.Content = new MimeContent(chained, part.ContentTransferEncoding);
            return false;
        }

        part.ContentType.Charset = "utf-8";
        part.Content = new MimeContent(chained, ContentEncoding.EightBit);
        part.ContentTransferEncoding = ContentEncoding.EightBit;
        return true;
    }

    private static TextPart NewTextPart(string text, bool ascii)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var encoding = ascii ? ContentEncoding.SevenBit : ContentEncoding.EightBit;
        var part = new TextPart("plain")
        {
            Content = new MimeContent(new MemoryStream(bytes), encoding),
            ContentTransferEncoding = encoding,
        };
        part.ContentType.Charset = ascii ? "us-ascii" : "utf-8";
        part.ContentDisposition = new ContentDisposition(ContentDisposition.Inline);
        return part;
    }
}
