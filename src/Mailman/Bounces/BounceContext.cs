// One message as the detectors see it: its parts walked once, and bounded, decoded prefixes
// of its text parts split into lines. Detectors read from here and never touch raw content.
using System.Text;
using System.Text.Unicode;
using MimeKit;

namespace Mailman.Bounces;

/// <summary>A part of the message and how many attached messages (<c>message/rfc822</c>) enclose it.</summary>
public readonly record struct BodyPart(MimeEntity Entity, int Depth);

/// <summary>The decoded, bounded text of one <c>text/*</c> part, split into lines (no line ends).</summary>
public sealed record TextBody(MimePart Part, int Depth, IReadOnlyList<string> Lines);

/// <summary>A parsed message prepared for the detectors; built once per classification.</summary>
/// <remarks>
/// Bounds, so that a 20 MB bounce costs what a small one does and no regex ever runs over
/// megabytes: at most <see cref="MaxParts"/> parts are walked, <see cref="MaxDepth"/> attached
/// messages deep; only the first <see cref="MaxTextParts"/> text parts are read, and of each only
/// the first <see cref="TextPrefixBytes"/> decoded bytes, in lines of at most
/// <see cref="MaxLineLength"/> characters. Text is decoded as UTF-8 when it is
/// valid UTF-8 and as Latin-1 otherwise, whatever the charset parameter claims: bounce texts and
/// addresses are ASCII in practice, and a broken or unknown charset can never throw.
/// </remarks>
public sealed class BounceContext
{
    /// <summary>Decoded bytes read from each text part (the rest is never looked at).</summary>
    public const int TextPrefixBytes = 64 * 1024;

    /// <summary>Text parts read, in walk order (outer message first).</summary>
    public const int MaxTextParts = 8;

    /// <summary>Parts walked.</summary>
    public const int MaxParts = 256;

    /// <summary>Characters kept of one line (RFC 5322 allows 998): a regex never sees more.</summary>
    public const int MaxLineLength = 4096;

    /// <summary>Attached messages descended into.</summary>
    public const int MaxDepth = 4;

    private List<BodyPart>? _parts;
    private List<TextBody>? _texts;
    private List<string>? _lines;
    private string? _lowerText;
    private string? _from;
    private List<string>? _opening;

    public BounceContext(MimeMessage message)
    {
        Message = message;
    }

    public MimeMessage Message { get; }

    /// <summary>Every part in walk order: multiparts, their children, attached messages' parts.</summary>
    public IReadOnlyList<BodyPart> Parts => _parts ??= Walk(Message);

    /// <summary>The first text parts, decoded and bounded.</summary>
    public IReadOnlyList<TextBody> TextParts => _texts ??= ReadTexts(Parts);

    /// <summary>The lines of every text part read, in order (Mailman's <c>body_line_iterator</c>).</summary>
    public IReadOnlyList<string> BodyLines => _lines ??= TextParts.SelectMany(t => t.Lines).ToList();

    /// <summary>All text read, lower-cased (invariant), for cheap "does this phrase occur at all" checks.</summary>
    public string LowerText => _lowerText ??= string.Join('\n', BodyLines).ToLowerInvariant();

    /// <summary>Lines of a notice's opening kept as its own words.</summary>
    public const int OpeningLines = 40;

    /// <summary>
    /// The notice's own words: its first text part's lines (of those with any) up to where a
    /// returned message starts (<see cref="ReturnedMessageStarts"/>), without the lines that
    /// quote one (<see cref="QuotedLine"/>); <see cref="OpeningLines"/> at most.
    /// </summary>
    public IReadOnlyList<string> Opening => _opening ??= ReadOpening();

    private List<string> ReadOpening()
    {
        var opening = new List<string>();
        if (TextParts.FirstOrDefault(t => t.Lines.Count > 0) is { } text)
        {
            foreach (var line in text.Lines)
            {
                if (opening.Count == OpeningLines || ReturnedMessageStarts(line))
                {
                    break;
                }

                if (!QuotedLine(line))
                {
                    opening.Add(line);
                }
            }
        }

        return opening;
    }

    /// <summary>
    /// Where a returned message starts in a notice's text ("--- Below this line is a copy of the
    /// message.", "----- Original message -----"): what follows is not the notice's own words.
    /// </summary>
    public static bool ReturnedMessageStarts(string line)
        => line.AsSpan().TrimStart().StartsWith("---", StringComparison.Ordinal) || line.Contains("original message", StringComparison.OrdinalIgnoreCase)
            || line.Contains("copy of the message", StringComparison.OrdinalIgnoreCase) || line.Contains("copy of your message", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A line of a notice that quotes the returned message, not the remote server's words: a
    /// header field of it (indented too: Exchange's "  Subject: ..."), or any line naming a
    /// subject (Mimecast's "With subject ...", Exim's "The subject of the message is: ..."): a
    /// post's subject may say "spam" or "policy" (review 142).
    /// </summary>
    public static bool QuotedLine(string line)
    {
        if (line.Contains("subject", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        var trimmed = line.TrimStart();
        var colon = trimmed.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            return false;
        }

        var name = trimmed.AsSpan(0, colon);
        return name.StartsWith("X-", StringComparison.OrdinalIgnoreCase) || name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase)
            || name.StartsWith("List-", StringComparison.OrdinalIgnoreCase) || QuotedFields.Contains(name.ToString());
    }

    private static readonly HashSet<string> QuotedFields = new(StringComparer.OrdinalIgnoreCase)
    {
        "Received", "Return-Path", "From", "To", "Cc", "Date", "Message-ID", "Reply-To", "Sender", "MIME-Version", "DKIM-Signature",
        "References", "In-Reply-To", "Precedence", "Delivered-To", "Authentication-Results", "ARC-Seal", "ARC-Message-Signature",
        "ARC-Authentication-Results", "Thread-Topic", "Thread-Index",
    };

    /// <summary>The address of the first <c>From:</c> mailbox, or "".</summary>
    public string From => _from ??= FirstAddress(Message.From);

    /// <summary>The message's own content type.</summary>
    public ContentType ContentType => Message.Body?.ContentType ?? new ContentType("text", "plain");

    /// <summary>A top-level header's value, or null.</summary>
    public string? Header(string name) => Message.Headers[name];

    /// <summary>True when the phrase (lower case) occurs anywhere in the text read.</summary>
    public bool Mentions(string lowerPhrase) => LowerText.Contains(lowerPhrase, StringComparison.Ordinal);

    /// <summary>The lines of one text part: those already read, else its bounded prefix.</summary>
    public IReadOnlyList<string> LinesOf(MimePart part)
    {
        foreach (var text in TextParts)
        {
            if (ReferenceEquals(text.Part, part))
            {
                return text.Lines;
            }
        }

        return SplitLines(ReadText(part, TextPrefixBytes));
    }

    /// <summary>True when the message's own content type is the given one.</summary>
    public bool Is(string mediaType, string subtype) => ContentType.IsMimeType(mediaType, subtype);

    /// <summary>The first mailbox address in a list, or "".</summary>
    public static string FirstAddress(InternetAddressList list)
    {
        foreach (var mailbox in list.Mailboxes)
        {
            return mailbox.Address ?? "";
        }

        return "";
    }

    /// <summary>Reads at most <paramref name="maxBytes"/> decoded bytes of a part as text (see remarks on the class).</summary>
    public static string ReadText(MimePart part, int maxBytes)
    {
        if (part.Content is null)
        {
            return "";
        }

        try
        {
            using var stream = part.Content.Open();
            // Decoding never grows content (7bit, 8bit, base64, quoted-printable): the encoded
            // length is a good first size.
            var encoded = part.Content.Stream is { CanSeek: true } raw ? raw.Length : 64 * 1024;
            var buffer = new byte[(int)Math.Clamp(encoded + 16, 256, maxBytes)];
            var total = 0;
            int read;
            while ((read = stream.Read(buffer, total, buffer.Length - total)) > 0)
            {
                total += read;
                if (total == buffer.Length)
                {
                    if (buffer.Length >= maxBytes)
                    {
                        break;
                    }

                    Array.Resize(ref buffer, (int)Math.Min(maxBytes, buffer.Length * 2L));
                }
            }

            return Decode(buffer.AsSpan(0, total));
        }
        catch (Exception e) when (e is IOException or FormatException or NotSupportedException or InvalidOperationException)
        {
            return "";
        }
    }

    /// <summary>UTF-8 when the bytes are UTF-8 (a prefix may end inside a character), else Latin-1.</summary>
    internal static string Decode(ReadOnlySpan<byte> bytes)
    {
        for (var cut = 0; cut <= 3 && cut <= bytes.Length; cut++)
        {
            if (Utf8.IsValid(bytes[..^cut]))
            {
                return Encoding.UTF8.GetString(bytes[..^cut]);
            }
        }

        return Encoding.Latin1.GetString(bytes);
    }

    /// <summary>Splits text into lines on LF, CRLF or CR, without the line ends; a line longer
    /// than <see cref="MaxLineLength"/> keeps only its start.</summary>
    public static List<string> SplitLines(string text)
    {
        var lines = new List<string>();
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c is '\n' or '\r')
            {
                lines.Add(text[start..Math.Min(i, start + MaxLineLength)]);
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n')
                {
                    i++;
                }

                start = i + 1;
            }
        }

        if (start < text.Length)
        {
            lines.Add(text[start..Math.Min(text.Length, start + MaxLineLength)]);
        }

        return lines;
    }

    private static List<BodyPart> Walk(MimeMessage message)
    {
        var parts = new List<BodyPart>();
        if (message.Body is { } body)
        {
            Walk(body, 0, parts);
        }

        return parts;
    }

    private static void Walk(MimeEntity entity, int depth, List<BodyPart> parts)
    {
        if (parts.Count >= MaxParts)
        {
            return;
        }

        parts.Add(new BodyPart(entity, depth));
        switch (entity)
        {
            case Multipart multipart:
                foreach (var child in multipart)
                {
                    Walk(child, depth, parts);
                }

                break;
            case MessagePart { Message.Body: { } inner } when depth < MaxDepth:
                Walk(inner, depth + 1, parts);
                break;
        }
    }

    private static List<TextBody> ReadTexts(IReadOnlyList<BodyPart> parts)
    {
        var texts = new List<TextBody>();
        foreach (var (entity, depth) in parts)
        {
            if (texts.Count >= MaxTextParts)
            {
                break;
            }

            if (entity is MimePart part && part.ContentType.MediaType.Equals("text", StringComparison.OrdinalIgnoreCase))
            {
                texts.Add(new TextBody(part, depth, SplitLines(ReadText(part, TextPrefixBytes))));
            }
        }

        return texts;
    }
}
