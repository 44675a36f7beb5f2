// The body of one recipient's copy of a prepared post, written verbatim. It rides in a carrier
// MimeMessage whose headers are the post's own (parsed once per connection), so MailKit sends
// the post's header block, the blank line, then exactly these bytes.
using MimeKit;
using MimeKit.IO;

namespace Mailman.Delivery.Smtp;

/// <summary>A MIME entity that writes the prepared body with one recipient's values spliced in.</summary>
internal sealed class SplicedBody : Multipart
{
    public SplicedBody(PreparedPost post)
        : base("mixed")
    {
        Post = post;

        // No headers of its own: the carrier's header block is the post's. An empty part marked
        // 8bit lets MailKit see that the copy needs BODY=8BITMIME; it is never written.
        Headers.Clear();
        if (post.EightBit)
        {
            Add(new MimePart { ContentTransferEncoding = ContentEncoding.EightBit });
        }
    }

    public PreparedPost Post { get; }

    public RecipientValues? Values { get; set; }

    public long Size => Post.SizeFor(Values);

    /// <summary>
    /// Set by <see cref="ListSmtpClient"/> per transaction: the socket as a buffered stream, or
    /// under TLS MailKit's own SslStream buffered (null when it is not known: the body then goes
    /// to MailKit's stream, never to the socket under the TLS session). MailKit
    /// writes a message into its own stream in 4 KB sends, and for DATA through a
    /// <see cref="FilteredStream"/> whose one filter dot-stuffs byte by byte (two thirds of the CPU
    /// of a 1 MB copy). The header block still takes MailKit's path; the body, dot-stuffed once
    /// per post for DATA, goes straight to the socket after MailKit's buffer is flushed.
    /// </summary>
    public Stream? Wire { get; set; }

    /// <summary>MailKit sends this copy with DATA (dot-stuffed), not BDAT.</summary>
    public bool DotStuff { get; set; }

    public override void Prepare(EncodingConstraint constraint, int maxLineLength = 78)
    {
        // Flattened once in the pipeline; nothing to re-encode per copy.
    }

    /// <summary>MailKit began to write this copy's body (DATA was answered 354, or BDAT began): a refusal from now on is the message's.</summary>
    public bool Written { get; set; }

    public override void WriteTo(FormatOptions options, Stream stream, bool contentOnly, CancellationToken cancellationToken = default)
    {
        Written = true;
        // DATA: MailKit's dot-stuffing filter over its stream. BDAT: its stream itself.
        var mailkit = DotStuff
            ? (stream as FilteredStream)?.Source
            : stream.GetType().FullName == "MailKit.Net.Smtp.SmtpStream" ? stream : null;
        if (mailkit is not null)
        {
            // One path for the whole body: the wire (the plain socket, or MailKit's own TLS
            // stream) after MailKit's buffer is flushed, or else MailKit's stream itself.
            var target = Wire ?? mailkit;
            if (Wire is not null)
            {
                mailkit.Flush();
            }

            if (DotStuff)
            {
                Post.WriteBodyDotStuffedTo(target, Values, cancellationToken);
            }
            else
            {
                Post.WriteBodyTo(target, Values, cancellationToken, Wire is null ? 16 * 1024 : PreparedPost.SocketWriteChunk);
            }

            if (Wire is not null)
            {
                target.Flush();
            }

            return;
        }

        Post.WriteBodyTo(stream, Values, cancellationToken);
    }

    public override Task WriteToAsync(FormatOptions options, Stream stream, bool contentOnly, CancellationToken cancellationToken = default)
    {
        WriteTo(options, stream, contentOnly, cancellationToken);
        return Task.CompletedTask;
    }
}

/// <summary>A message that carries one post to many recipients, one copy at a time.</summary>
internal sealed class Carrier
{
    private readonly Header? _to;
    private readonly Header? _unsubscribe;
    private readonly UnsubscribeSlot? _unsubscribeSlot;

    public Carrier(PreparedPost post)
    {
        using var seed = new MemoryStream("X-Carrier: 1\r\n\r\n"u8.ToArray());
        Message = MimeMessage.Load(seed);
        Message.Headers.Clear();
        using var headerBlock = new MemoryStream(post.HeaderBlock.Length + 2);
        headerBlock.Write(post.HeaderBlock.Span);
        headerBlock.Write("\r\n"u8);
        headerBlock.Position = 0;
        foreach (var header in HeaderList.Load(headerBlock))
        {
            Message.Headers.Add(header);
            if (post.ToToken is not null && _to is null && header.Id == HeaderId.To
                && System.Text.Encoding.ASCII.GetString(header.RawValue) == post.ToToken)
            {
                _to = header;
            }

            if (post.Unsubscribe is { } slot && _unsubscribe is null && header.Field.Equals("List-Unsubscribe", StringComparison.OrdinalIgnoreCase)
                && slot.Matches(header.RawValue))
            {
                _unsubscribe = header;
                _unsubscribeSlot = slot;
            }
        }

        Body = new SplicedBody(post);
        Message.Body = Body;
    }

    public MimeMessage Message { get; }

    public SplicedBody Body { get; }

    /// <summary>Sets the per-recipient parts: the To: and List-Unsubscribe headers and the body slots.</summary>
    public void SetRecipient(RecipientValues? values)
    {
        Body.Values = values;
        if (_to is not null && values is not null)
        {
            _to.SetRawValue(values.ToRawValue);
        }

        if (_unsubscribe is not null && values is not null)
        {
            _unsubscribe.SetRawValue(_unsubscribeSlot!.RawValue(values.Unsubscribe));
        }
    }

    /// <summary>
    /// Format options for sending: CRLF, nothing hidden. Not International: MailKit says SMTPUTF8
    /// only for a UTF-8 address, never for raw UTF-8 in the header block alone (a From: or
    /// Subject: as an author's MUA wrote it): a message received with SMTPUTF8 and UTF-8 in a
    /// header is one Postfix returns as undeliverable to every next hop without SMTPUTF8
    /// (SMTPUTF8_README), where without the flag it delivers it as it always has (review 113).
    /// </summary>
    public static FormatOptions SendOptions => WireFormat.Options;
}
