// Finds the moderator password a post carries (an Approved:/Approve: header, or the same as the
// first line of the first text/plain part, or of the first HTML part when there is no plain one:
// Mailman's pseudo-header; only the start of that part is read unless it holds one) and removes
// it from the post everywhere: every such header, and every text part that repeats it, whichever
// way it came (header or body), including the HTML copy of a multipart/alternative, where mail
// clients wrap it (and split it) in markup, text attachments and attached messages. A password
// must never reach the members, right or wrong: what stripping cannot remove (and anything of it
// in a header, a file name or a binary part), Remains finds, and the post is held.
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using MimeKit;

namespace Mailman.Moderation;

public static partial class ApprovedPassword
{
    private static readonly string[] HeaderNames = ["Approved", "Approve", "X-Approved", "X-Approve"];

    /// <summary>
    /// The password <paramref name="message"/> carries (null: none), removed from the message.
    /// <paramref name="modified"/> says whether anything was removed.
    /// </summary>
    public static string? Take(MimeMessage message, out bool modified)
    {
        modified = false;
        string? password = null;
        foreach (var header in message.Headers)
        {
            if (HeaderNames.Contains(header.Field, StringComparer.OrdinalIgnoreCase))
            {
                password = header.Value.Trim(); // the first one
                break;
            }
        }

        // One pass from the end (a post of thousands of Approved: lines once cost minutes of
        // CPU as a search from the start for each).
        var headers = message.Headers;
        for (var i = headers.Count - 1; i >= 0; i--)
        {
            if (HeaderNames.Contains(headers[i].Field, StringComparer.OrdinalIgnoreCase))
            {
                headers.RemoveAt(i);
                modified = true;
            }
        }

        if (password is null)
        {
            // Mailman's pseudo-header: the first line of the first text/plain part with any text
            // (review 57: an empty first part hid it, and it went to the members), or of the
            // first HTML part (its text) when there is no plain one.
            var parts = TextParts(message, attachments: false).ToList();
            var first = parts.Where(p => p.IsPlain).Select(p => FirstLine(Lines(p))).FirstOrDefault(l => l is not null)
                ?? parts.Where(p => p.IsHtml).Select(p => FirstLine(Lines(p))).FirstOrDefault(l => l is not null);
            if (first is null || Value(first) is not { } value)
            {
                return null;
            }

            password = value;
        }

        modified |= Strip(message, password);
        return password;
    }

    /// <summary>
    /// The moderator password (what <paramref name="isPassword"/> accepts) in an Approved: line
    /// of the start of any of the post's text parts, where <see cref="Take"/> did not take it
    /// (review 134: text a mail client hides, or an element the reader ran into the line, came
    /// first, and the post went to the members with the password); removed from the post as
    /// Take removes it. Null when there is none. At most <see cref="MaxCandidates"/> candidates
    /// besides <paramref name="taken"/> (what Take found, tried already) are tried: each costs
    /// a password hash.
    /// </summary>
    public static string? Shown(MimeMessage message, Func<string, bool> isPassword, out bool modified, string? taken = null)
    {
        modified = false;
        var values = new List<string>();
        foreach (var part in TextParts(message, attachments: true).Take(MaxParts))
        {
            foreach (var line in Lines(part))
            {
                if (Value(line) is { } value)
                {
                    values.Add(value);
                }
            }
        }

        // One word first (a password is one, most often: review 136, two earlier lines of words
        // took both tries), then whole lines, then a line's first word (a line run into the next).
        var candidates = values.Where(v => !v.Any(char.IsWhiteSpace))
            .Concat(values.Where(v => v.Any(char.IsWhiteSpace)))
            .Concat(values.Select(v => v.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries)[0]));
        var shown = candidates.Where(c => c != taken).Distinct(StringComparer.Ordinal).Take(MaxCandidates).FirstOrDefault(isPassword);
        if (shown is not null)
        {
            modified = Strip(message, shown);
        }

        return shown;
    }

    // The lines of the start of a text part as a reader sees them (TextStart.AsRead).
    private static string[] Lines(TextPart part) => TextStart.AsRead(part, maxMarkup: MaxHtmlMarkup).Split('\n');

    // The password a pseudo-header line carries; null for any other line, and for one too long to
    // be one (review 136: a 2,000-character first line made the strip's automaton too large, and
    // the post was shunted; a long line also cost the square of its length to match).
    private static string? Value(string line)
    {
        var trimmed = line.Trim();
        return trimmed.Length <= MaxPseudoHeader && PseudoHeader().Match(trimmed) is { Success: true } match ? match.Groups[1].Value.Trim() : null;
    }

    private const int MaxPseudoHeader = 300;

    // How many of a post's text parts Shown reads (the start of each, as Take does), and how many
    // passwords it tries: each costs a password hash, and a post of anyone's may carry such
    // lines (review 135: four hashes a post). Review 135: five hidden lines came before the
    // right one, and the fourth of four alternatives held it: every line of every part is read.
    private const int MaxParts = 20;
    private const int MaxCandidates = 2;

    // Removes the password wherever the post repeats it: every text part, attachments and
    // attached messages too.
    private static bool Strip(MimeMessage message, string password)
    {
        // An Approved: header of prose is no password (the strip's automaton would grow too
        // large for it, and the post was shunted); the header itself is removed all the same.
        if (password.Length > MaxPseudoHeader)
        {
            return false;
        }

        var modified = false;
        foreach (var part in TextParts(message, attachments: true))
        {
            var text = part.Text;
            var stripped = part.IsHtml ? StripHtml(text, password) : StripPlain(text, password);
            if (!ReferenceEquals(stripped, text) && stripped != text)
            {
                SetText(part, stripped);
                modified = true;
            }
        }

        return modified;
    }

    /// <summary>
    /// Whether <paramref name="password"/> is still in the post after <see cref="Take"/>, in any
    /// form a member's mail client shows: in a text part (split by markup the stripping did not
    /// follow, in an HTML attribute or comment, folded as iCalendar and vCard fold, broken as
    /// format=flowed with delsp breaks, with white space or invisible characters inside), in any header of the post, of a part or of an attached message
    /// (the Subject, a display name, a file name), in a preamble or epilogue, in the decoded
    /// content of a binary part (UTF-8 or UTF-16), or in an attached message sent encoded. Such
    /// a post is held, and cannot be approved (reviews 56 and 57: only text parts were looked at,
    /// and a held one a moderator approved went to every member with it).
    /// </summary>
    public static bool Remains(MimeMessage message, string password)
    {
        var wanted = Skeleton(password);
        if (wanted.Length == 0)
        {
            return false;
        }

        byte[][] patterns = [Encoding.UTF8.GetBytes(password), Encoding.Unicode.GetBytes(password), Encoding.BigEndianUnicode.GetBytes(password)];
        var pending = new Stack<(MimeEntity? Entity, HeaderList? Headers)>();
        pending.Push((message.Body, message.Headers));
        while (pending.Count > 0)
        {
            var (entity, headers) = pending.Pop();
            if (headers is not null && Shows(headers, wanted))
            {
                return true;
            }

            if (entity is null)
            {
                continue;
            }

            if (Shows(entity.Headers, wanted)
                || entity.ContentType.Parameters.Any(p => Skeleton(p.Value).Contains(wanted, StringComparison.Ordinal))
                || (entity.ContentDisposition?.Parameters.Any(p => Skeleton(p.Value).Contains(wanted, StringComparison.Ordinal)) ?? false))
            {
                return true;
            }

            switch (entity)
            {
                case Multipart multipart:
                    if (Skeleton(multipart.Preamble ?? "").Contains(wanted, StringComparison.Ordinal) || Skeleton(multipart.Epilogue ?? "").Contains(wanted, StringComparison.Ordinal))
                    {
                        return true;
                    }

                    foreach (var child in multipart)
                    {
                        pending.Push((child, null));
                    }

                    break;
                case MessagePart { Message: { } inner } attached:
                    if (Encoded(attached) is { } sent)
                    {
                        // Sent base64 or quoted-printable: MimeKit parsed the encoded text as the
                        // message; what a client shows is the decoded one.
                        if (patterns.Any(p => sent.AsSpan().IndexOf(p) >= 0))
                        {
                            return true;
                        }

                        try
                        {
                            var shown = MimeMessage.Load(new MemoryStream(sent));
                            pending.Push((shown.Body, shown.Headers));
                        }
                        catch (FormatException)
                        {
                            // No message inside: its bytes were searched.
                        }
                    }
                    else
                    {
                        pending.Push((inner.Body, inner.Headers));
                    }

                    break;
                case TextPart part:
                    if (TextShows(part, wanted) || UuencodedShows(part.Text, patterns))
                    {
                        return true;
                    }

                    break;
                case MimePart { Content: { } content }:
                    using (var decoded = new MemoryStream())
                    {
                        content.DecodeTo(decoded);
                        var data = decoded.GetBuffer().AsSpan(0, (int)decoded.Length);
                        foreach (var p in patterns)
                        {
                            if (data.IndexOf(p) >= 0)
                            {
                                return true;
                            }
                        }
                    }

                    break;
            }
        }

        return false;
    }

    // The text as a reader sees it, in the forms a client may show it.
    private static bool TextShows(TextPart part, string wanted)
    {
        var text = part.Text;
        var type = part.ContentType;
        var readable = new List<string> { text };
        if (part.IsHtml || type.IsMimeType("text", "enriched") || type.IsMimeType("text", "richtext"))
        {
            // What a browser shows (comments and tags out, a quoted '>' kept inside its tag),
            // and attribute values (alt, title) with their entities decoded.
            // A block tag is a break a reader sees (review 58: "<li>Summer</li><li>2026" is not
            // the password Summer2026); any other tag is nothing ("s3c<b>ret</b>").
            var tagsOut = Regex.Replace(WithoutComments(text), """<(?:br|/?p|/?div|/?tr|/?li|/?h[1-6]|/?td|/?th|/?title|/?blockquote|/?table|/?ul|/?ol|hr)\b(?:[^<>"']|"[^"]*"|'[^']*')*>""", " ",
                RegexOptions.NonBacktracking | RegexOptions.IgnoreCase);
            readable.Add(WebUtility.HtmlDecode(Regex.Replace(tagsOut, """<(?:[^<>"']|"[^"]*"|'[^']*')*>""", "", RegexOptions.NonBacktracking)));
            readable.Add(WebUtility.HtmlDecode(text));
        }

        if (type.IsMimeType("text", "calendar") || type.IsMimeType("text", "vcard") || type.IsMimeType("text", "x-vcard") || type.IsMimeType("text", "directory"))
        {
            readable.Add(Regex.Replace(text, "\r?\n[ \t]", "")); // RFC 5545 and 6350 unfolding
        }

        if (string.Equals(type.Parameters["delsp"], "yes", StringComparison.OrdinalIgnoreCase))
        {
            readable.Add(Regex.Replace(text, " \r?\n", "")); // RFC 3676: the space of a flowed line goes too
        }

        return readable.Any(r => Skeleton(r).Contains(wanted, StringComparison.Ordinal));
    }

    // A uuencoded file in a text ("begin 644 name" ... "end"), which mail clients show as an
    // attachment (review 57).
    private static bool UuencodedShows(string text, byte[][] patterns)
    {
        var begin = text.StartsWith("begin ", StringComparison.Ordinal) ? 0 : text.IndexOf("\nbegin ", StringComparison.Ordinal);
        if (begin < 0)
        {
            return false;
        }

        var input = Encoding.Latin1.GetBytes(text[begin..]);
        var decoder = new MimeKit.Encodings.UUDecoder();
        var output = new byte[decoder.EstimateOutputLength(input.Length)];
        var n = decoder.Decode(input, 0, input.Length, output);
        return patterns.Any(p => output.AsSpan(0, n).IndexOf(p) >= 0);
    }

    private static string WithoutComments(string html)
    {
        var result = new StringBuilder(html.Length);
        var at = 0;
        while (html.IndexOf("<!--", at, StringComparison.Ordinal) is var open and >= 0)
        {
            result.Append(html, at, open - at);
            var close = html.IndexOf("-->", open + 4, StringComparison.Ordinal);
            at = close < 0 ? html.Length : close + 3;
        }

        return result.Append(html, at, html.Length - at).ToString();
    }

    // An attached message sent base64 or quoted-printable, decoded; null when sent as it is.
    private static byte[]? Encoded(MessagePart part)
    {
        var encoding = part.Headers[HeaderId.ContentTransferEncoding]?.Trim().ToLowerInvariant();
        if (encoding is not ("base64" or "quoted-printable"))
        {
            return null;
        }

        using var raw = new MemoryStream();
        part.Message!.WriteTo(raw);
        raw.Position = 0;
        using var decoded = new MemoryStream();
        using (var filtered = new MimeKit.IO.FilteredStream(raw))
        {
            filtered.Add(MimeKit.IO.Filters.DecoderFilter.Create(encoding == "base64" ? ContentEncoding.Base64 : ContentEncoding.QuotedPrintable));
            filtered.CopyTo(decoded);
        }

        return decoded.ToArray();
    }

    // A header as written and as decoded (RFC 2047 words, a display name): either may show it.
    private static bool Shows(HeaderList headers, string wanted)
    {
        foreach (var header in headers)
        {
            if (Skeleton(header.Value).Contains(wanted, StringComparison.Ordinal)
                || Skeleton(Encoding.UTF8.GetString(header.RawValue)).Contains(wanted, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    // What is compared: the text with each run of white space one space (a space, a line break
    // and a no-break space look alike; none is taken out: "Summer 2026" is not the password
    // Summer2026, review 58) and without invisible characters (format characters such as a soft
    // hyphen, a zero-width space or a byte-order mark), which a reader does not see inside a
    // word. Not normalized: the daemon runs without ICU (InvariantGlobalization), where
    // string.Normalize changes nothing.
    private static string Skeleton(string text)
    {
        var result = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c))
            {
                if (result.Length == 0 || result[^1] != ' ')
                {
                    result.Append(' ');
                }
            }
            else if (char.GetUnicodeCategory(c) != System.Globalization.UnicodeCategory.Format)
            {
                result.Append(c);
            }
        }

        return result.ToString();
    }

    // Text parts of the post: without attachments for finding the pseudo-header; with them, and
    // with the insides of attached messages, for removing the password.
    private static IEnumerable<TextPart> TextParts(MimeMessage message, bool attachments)
    {
        var pending = new Stack<MimeEntity>();
        if (message.Body is not null)
        {
            pending.Push(message.Body);
        }

        while (pending.Count > 0)
        {
            switch (pending.Pop())
            {
                case Multipart multipart:
                    for (var i = multipart.Count - 1; i >= 0; i--)
                    {
                        pending.Push(multipart[i]);
                    }

                    break;
                case MessagePart { Message.Body: { } inner } when attachments:
                    pending.Push(inner);
                    break;
                case TextPart text when attachments || !text.IsAttachment:
                    yield return text;
                    break;
            }
        }
    }

    // How much of an HTML part's source is read for its first lines (review 132: a 64 KB <style>,
    // as Outlook writes, hid the line past the 16 KB read, and the password went to the members).
    // Review 134: 8 MB of attributes cost half a gigabyte; an Outlook head is some 100 KB.
    private const int MaxHtmlMarkup = 1024 * 1024;

    private static string? FirstLine(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            if (line.Trim().Length > 0)
            {
                return line;
            }
        }

        return null;
    }

    // Every line that is the pseudo-header with this password, and a blank line right after it.
    private static string StripPlain(string text, string password)
        => Regex.Replace(text, @"^[\s\p{Cf}-[\r\n]]*(?:X-)?Approved?[\s\p{Cf}-[\r\n]]*:[\s\p{Cf}-[\r\n]]*" + Regex.Escape(password) + @"[\s\p{Cf}-[\r\n]]*(?:\r?\n(?:[\s\p{Cf}-[\r\n]]*\r?\n)?|$)", "",
            RegexOptions.Multiline | RegexOptions.IgnoreCase | RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);

    // In HTML the words may be split by tags, entities and line breaks ("<p>Approved:&nbsp;<b>pw</b>",
    // "<span>s3c</span><span>ret</span>"): the pseudo-header is found in the text a reader sees,
    // and exactly its characters (each a byte or an entity of the source) are cut from the HTML,
    // the markup between them left in place.
    private static string StripHtml(string html, string password)
    {
        // The characters' places are recorded only when there is something to cut: most HTML
        // parts have none, and a list of places costs 8 bytes a character of the part.
        var pattern = @"(?:X-)?Approved?[\s\p{Cf}]*:[\s\p{Cf}]*" + Regex.Escape(password);
        const RegexOptions options = RegexOptions.IgnoreCase | RegexOptions.NonBacktracking | RegexOptions.CultureInvariant;
        if (!Regex.IsMatch(Visible(html, null), pattern, options))
        {
            return html;
        }

        var spans = new List<(int Start, int End)>(html.Length);
        var matches = Regex.Matches(Visible(html, spans), pattern, options);
        var cut = new bool[html.Length];
        foreach (Match m in matches)
        {
            for (var k = m.Index; k < m.Index + m.Length; k++)
            {
                for (var j = spans[k].Start; j < spans[k].End; j++)
                {
                    cut[j] = true;
                }
            }
        }

        var result = new System.Text.StringBuilder(html.Length);
        for (var j = 0; j < html.Length; j++)
        {
            if (!cut[j])
            {
                result.Append(html[j]);
            }
        }

        return result.ToString();
    }

    // The text a reader sees of the HTML, each character's place in it added to spans when given.
    private static string Visible(string html, List<(int Start, int End)>? spans)
    {
        var visible = new StringBuilder(html.Length);
        var close = -1; // the next '>' at or after i, once looked for; each search starts past the last
        var closes = true;
        for (var i = 0; i < html.Length;)
        {
            // Review 58: a search to the end from every '<' (or '&') without its '>' (';') made
            // a post of '<'s cost the square of its size: 3 MB, 137 s of the incoming runner.
            if (html[i] == '<' && closes)
            {
                if (close < i)
                {
                    close = html.IndexOf('>', i);
                    closes = close >= 0;
                }

                if (closes)
                {
                    i = close + 1;
                    continue;
                }
            }

            if (html[i] == '&' && html.IndexOf(';', i, Math.Min(11, html.Length - i)) is var semi && semi > i
                && WebUtility.HtmlDecode(html[i..(semi + 1)]) is { Length: 1 } decoded && decoded != html[i..(semi + 1)])
            {
                visible.Append(decoded[0]);
                spans?.Add((i, semi + 1));
                i = semi + 1;
                continue;
            }

            visible.Append(html[i]);
            spans?.Add((i, i + 1));
            i++;
        }

        return visible.ToString();
    }

    private static void SetText(TextPart part, string text)
    {
        try
        {
            part.SetText(part.ContentType.Charset ?? "utf-8", text);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            part.SetText("utf-8", text); // a charset .NET does not know: written as UTF-8 (review 134: shunted)
        }
    }

    // Invisible format characters (U+200B, U+2060, U+FEFF) count as white space (review 135: one
    // before "Approved:" hid the line, and the post went to the members with it).
    [GeneratedRegex(@"^[\s\p{Cf}]*(?:X-)?Approved?[\s\p{Cf}]*:[\s\p{Cf}]*([^\s\p{Cf}].*?)[\s\p{Cf}]*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex PseudoHeader();
}
