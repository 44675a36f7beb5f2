// How a message is written for the wire: CRLF line endings (RFC 5321 §2.3.8). The pipeline
// flattens with it once; the outgoing runner sends with it.
using MimeKit;
using MimeKit.Cryptography;

namespace Mailman.Delivery;

public static class WireFormat
{
    public static readonly FormatOptions Options = Create();

    /// <summary>The message as bytes on the wire.</summary>
    public static byte[] Flatten(MimeMessage message)
    {
        using var output = new MemoryStream();
        message.WriteTo(Options, output, CancellationToken.None);
        return output.ToArray();
    }

    /// <summary>
    /// Ends the last header line of a message that ended inside it (headers only, no newline at
    /// the end): MimeKit writes such a line as it came, so no blank line would end the header
    /// block and the outgoing runner would refuse the entry (review 27).
    /// </summary>
    public static void EndLastHeaderLine(MimeMessage message)
    {
        if (message.Headers.Count > 0 && message.Headers[message.Headers.Count - 1] is { RawValue: { Length: > 0 } raw } last && raw[^1] != (byte)'\n')
        {
            last.SetRawValue([.. raw, (byte)'\n']);
        }
    }

    /// <summary>
    /// <paramref name="message"/> as an attached part: message/rfc822, or message/global
    /// (RFC 6532 3.7) when its header block holds raw UTF-8, which message/rfc822 may not.
    /// </summary>
    public static MessagePart Attached(MimeMessage message)
        => new(message.Headers.Any(h => !System.Text.Ascii.IsValid(h.RawValue)) ? "global" : "rfc822") { Message = message };

    /// <summary>
    /// Re-encodes what SMTP without BINARYMIME cannot carry as it is, as an MTA's downgrade
    /// would (review 79: a part declared binary went out with NULs, bare CRs and 8,000-byte
    /// lines under BODY=8BITMIME; a 5,000-byte text line went out as it came): a part declared
    /// binary, or a 7bit/8bit one with a line over 998 characters, a NUL or a bare CR, goes
    /// quoted-printable (text) or base64 (the rest). Every other part
    /// keeps its bytes; so do the parts under multipart/signed and multipart/encrypted (their
    /// signature covers them as they are). An attached message (message/rfc822) is walked too.
    /// Returns whether anything was re-encoded; MIME-Version is then added where missing.
    /// </summary>
    public static bool MakeTransportable(MimeMessage message) => Transport(message, out _);

    // keptAsIs: a part under the message was left as it came (signed, encrypted, or a message
    // past MimeKit's depth), so an attached message holding it stays declared as it was.
    private static bool Transport(MimeMessage message, out bool keptAsIs)
    {
        var changed = false;
        keptAsIs = false;
        var entities = new Stack<MimeEntity>();
        if (message.Body is { } body)
        {
            entities.Push(body);
        }

        while (entities.TryPop(out var entity))
        {
            switch (entity)
            {
                case MultipartSigned or MultipartEncrypted:
                    keptAsIs = true;
                    break;
                case Multipart multipart:
                    foreach (var child in multipart)
                    {
                        entities.Push(child);
                    }

                    break;
                case MessagePart { Message: { } inner } attached:
                    changed |= Transport(inner, out var innerKept);
                    keptAsIs |= innerKept;

                    // RFC 2046 5.2.1: message/rfc822 is 7bit, 8bit or binary; once its parts
                    // are re-encoded, binary is no longer true of it (review 82: unless a part
                    // under it kept its bytes).
                    if (!innerKept && attached.Headers[HeaderId.ContentTransferEncoding] is { } declared
                        && declared.Trim().Equals("binary", StringComparison.OrdinalIgnoreCase))
                    {
                        attached.Headers[HeaderId.ContentTransferEncoding] = "8bit";
                        changed = true;
                    }

                    break;
                case MimePart part when part.ContentType.MediaType.Equals("message", StringComparison.OrdinalIgnoreCase):
                    // A message MimeKit did not parse (past its depth): RFC 2046 allows it no
                    // base64 or quoted-printable (review 82).
                    keptAsIs = true;
                    break;
                case MimePart { Content: not null } part when NeedsEncoding(part):
                    part.ContentTransferEncoding = part is TextPart ? ContentEncoding.QuotedPrintable : ContentEncoding.Base64;
                    changed = true;
                    break;
            }
        }

        if (changed && !message.Headers.Contains(HeaderId.MimeVersion))
        {
            message.MimeVersion = new Version(1, 0);
        }

        return changed;
    }

    // RFC 5322 2.1.1: no line over 998 characters; RFC 6152: 8BITMIME carries 8-bit bytes in
    // such lines, not NULs or bare CRs. (Not MimeKit's GetBestEncoding: it also re-encodes a
    // line starting "From ", which would change ordinary posts and break their signatures.)
    private static bool NeedsEncoding(MimePart part) => part.ContentTransferEncoding switch
    {
        ContentEncoding.Binary => true,
        ContentEncoding.Default or ContentEncoding.SevenBit or ContentEncoding.EightBit => !FitsSmtp(part.Content!),
        _ => false,
    };

    private static bool FitsSmtp(IMimeContent content)
    {
        using var stream = content.Open();
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            var line = 0;
            var cr = false;
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                foreach (var b in buffer.AsSpan(0, read))
                {
                    if (cr && b != (byte)'\n')
                    {
                        return false;
                    }

                    cr = false;
                    switch (b)
                    {
                        case (byte)'\n':
                            line = 0;
                            break;
                        case (byte)'\r':
                            cr = true;
                            break;
                        case 0:
                            return false;
                        default:
                            if (++line > 998)
                            {
                                return false;
                            }

                            break;
                    }
                }
            }

            return !cr;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static FormatOptions Create()
    {
        var options = FormatOptions.Default.Clone();
        options.NewLineFormat = NewLineFormat.Dos;
        return options;
    }
}
