// Finds the moderator password a post carries (an Approved:/Approve: header, or the same as the
// first line of the first text/plain part, or of the first HTML part when there is no plain one:
// Mailman's pseudo-header; only the start of that part is read unless it holds one) and removes
// it from the post everywhere: every such header, and every text part that repeats it, whichever
// way it came (header or body), including the HTML copy of a multipart/alternative, where mail
// clients wrap it (and split it) in markup, text attachments and attached messages. A password
// must never reach the members, right or wrong: what stripping cannot remove (and anything of it
// in a header, a file name or a binary part), Remains finds, and the post is held.
using System.Net;
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
            // Mailman's pseudo-header: the first line of the first text/plain part, or of the
            // first HTML part (its text) when there is no plain one.
            var parts = TextParts(message, attachments: false).ToList();
            var first = parts.FirstOrDefault(p => p.IsPlain) ?? parts.FirstOrDefault(p => p.IsHtml);
            if (first is null)
            {
                return null;
            }

            var start = TextStart.Of(first);
            if (FirstLine(first.IsHtml ? HtmlText(start) : start) is not { } line || PseudoHeader().Match(line) is not { Success: true } match)
            {
                return null;
            }

            password = match.Groups[1].Value.Trim();
        }

        // Wherever the post repeats it: every text part, attachments and attached messages too.
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

        return password;
    }

    /// <summary>
    /// Whether <paramref name="password"/> is still in the post after <see cref="Take"/>: in a
    /// text part (split by markup in a way the stripping did not follow, or in a line that is not
    /// the pseudo-header), in any header of the post, of a part or of an attached message (the
    /// Subject, a display name, a file name), in a preamble or epilogue, or in the decoded content
    /// of a binary part. Such a post is held, never delivered with it (review 56: only text parts
    /// were looked at; a Subject or an attachment carried the password to every member).
    /// </summary>
    public static bool Remains(MimeMessage message, string password)
    {
        if (password.Length == 0)
        {
            return false;
        }

        var bytes = System.Text.Encoding.UTF8.GetBytes(password);
        if (Shows(message.Headers, password))
        {
            return true;
        }

        var pending = new Stack<MimeEntity>();
        if (message.Body is not null)
        {
            pending.Push(message.Body);
        }

        while (pending.Count > 0)
        {
            var entity = pending.Pop();
            if (Shows(entity.Headers, password)
                || entity.ContentType.Parameters.Any(p => p.Value.Contains(password, StringComparison.Ordinal))
                || (entity.ContentDisposition?.Parameters.Any(p => p.Value.Contains(password, StringComparison.Ordinal)) ?? false))
            {
                return true;
            }

            switch (entity)
            {
                case Multipart multipart:
                    if ((multipart.Preamble ?? "").Contains(password, StringComparison.Ordinal) || (multipart.Epilogue ?? "").Contains(password, StringComparison.Ordinal))
                    {
                        return true;
                    }

                    foreach (var child in multipart)
                    {
                        pending.Push(child);
                    }

                    break;
                case MessagePart { Message: { } inner }:
                    if (Shows(inner.Headers, password))
                    {
                        return true;
                    }

                    if (inner.Body is not null)
                    {
                        pending.Push(inner.Body);
                    }

                    break;
                case TextPart part:
                    var text = part.Text;
                    if (text.Contains(password, StringComparison.Ordinal)
                        || (part.IsHtml && Squeeze(HtmlText(text)).Contains(Squeeze(password), StringComparison.Ordinal)))
                    {
                        return true;
                    }

                    break;
                case MimePart { Content: { } content }:
                    using (var decoded = new MemoryStream())
                    {
                        content.DecodeTo(decoded);
                        if (decoded.GetBuffer().AsSpan(0, (int)decoded.Length).IndexOf(bytes) >= 0)
                        {
                            return true;
                        }
                    }

                    break;
            }
        }

        return false;
    }

    // A header as written and as decoded (RFC 2047 words, a display name): either may show it.
    private static bool Shows(HeaderList headers, string password)
    {
        foreach (var header in headers)
        {
            if (header.Value.Contains(password, StringComparison.Ordinal)
                || System.Text.Encoding.UTF8.GetString(header.RawValue).Contains(password, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
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

    // The text a reader sees in HTML: block tags are line breaks, other tags dropped, entities decoded.
    private static string HtmlText(string html)
        => WebUtility.HtmlDecode(Regex.Replace(
            Regex.Replace(html, @"<(?:br|/?p|/?div|/?tr|/?li|/?h[1-6]|/?td|/?title|/?blockquote)\b[^<>]*>", "\n", RegexOptions.NonBacktracking | RegexOptions.IgnoreCase),
            "<[^<>]*>", "", RegexOptions.NonBacktracking));

    private static string Squeeze(string text)
        => Regex.Replace(text, @"\s+", "", RegexOptions.NonBacktracking);

    private static string? FirstLine(string text)
    {
        foreach (var line in text.Split('\n'))
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
        => Regex.Replace(text, @"^[ \t]*(?:X-)?Approved?:[ \t]*" + Regex.Escape(password) + @"[ \t]*(?:\r?\n(?:[ \t]*\r?\n)?|$)", "",
            RegexOptions.Multiline | RegexOptions.IgnoreCase | RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);

    // In HTML the words may be split by tags, entities and line breaks ("<p>Approved:&nbsp;<b>pw</b>",
    // "<span>s3c</span><span>ret</span>"): the pseudo-header is found in the text a reader sees,
    // and exactly its characters (each a byte or an entity of the source) are cut from the HTML,
    // the markup between them left in place.
    private static string StripHtml(string html, string password)
    {
        var visible = new System.Text.StringBuilder(html.Length);
        var spans = new List<(int Start, int End)>(html.Length);
        for (var i = 0; i < html.Length;)
        {
            if (html[i] == '<' && html.IndexOf('>', i) is var close and > 0)
            {
                i = close + 1;
                continue;
            }

            if (html[i] == '&' && html.IndexOf(';', i) is var semi && semi > i && semi - i <= 10
                && WebUtility.HtmlDecode(html[i..(semi + 1)]) is { Length: 1 } decoded && decoded != html[i..(semi + 1)])
            {
                visible.Append(decoded[0]);
                spans.Add((i, semi + 1));
                i = semi + 1;
                continue;
            }

            visible.Append(html[i]);
            spans.Add((i, i + 1));
            i++;
        }

        var pattern = @"(?:X-)?Approved?:\s*" + Regex.Escape(password);
        var matches = Regex.Matches(visible.ToString(), pattern, RegexOptions.IgnoreCase | RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
        if (matches.Count == 0)
        {
            return html;
        }

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

    private static void SetText(TextPart part, string text)
    {
        try
        {
            part.SetText(part.ContentType.Charset ?? "utf-8", text);
        }
        catch (ArgumentException)
        {
            part.SetText("utf-8", text); // a charset .NET does not know: written as UTF-8
        }
    }

    [GeneratedRegex(@"^\s*(?:X-)?Approved?:\s*(\S.*?)\s*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex PseudoHeader();
}
