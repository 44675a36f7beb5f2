// The start of a text part, decoded, without reading the rest: what the rules that look at a
// post's first lines need, at the same cost for a 40 MB post as for a short one. An HTML part's
// start is read as the lines a reader sees (the request runner's commands in an HTML-only reply,
// the Approved: line of an HTML-only post).
using System.Text;
using MimeKit;
using MimeKit.Text;

namespace Mailman.Moderation;

internal static class TextStart
{
    /// <summary>At most <paramref name="maxChars"/> characters from the start of <paramref name="part"/>'s text.</summary>
    public static string Of(TextPart part, int maxChars = 16 * 1024)
    {
        if (part.Content is null)
        {
            return "";
        }

        Encoding encoding;
        try
        {
            encoding = part.ContentType.CharsetEncoding ?? Encoding.UTF8;
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            encoding = Encoding.UTF8; // a charset .NET does not know: read as UTF-8, as a guess
        }

        using var reader = new StreamReader(part.Content.Open(), encoding, detectEncodingFromByteOrderMarks: true, bufferSize: 4096, leaveOpen: false);
        var buffer = new char[maxChars];
        var n = reader.ReadBlock(buffer, 0, maxChars);
        return new string(buffer, 0, n);
    }

    /// <summary>
    /// At most <paramref name="maxChars"/> characters of the text of the start of the HTML part
    /// <paramref name="part"/> (four times as much markup is read), as lines: a block element or
    /// &lt;br&gt; ends one, the source's line breaks are spaces, what &lt;head&gt;,
    /// &lt;style&gt; and &lt;script&gt; hold is not text, and what a &lt;blockquote&gt; holds is
    /// quoted ("&gt; "), as a plain reply quotes. MimeKit's tokenizer reads the markup and its
    /// character references.
    /// </summary>
    public static string OfHtml(TextPart part, int maxChars = 16 * 1024)
    {
        var text = new StringBuilder();
        int hidden = 0, quoted = 0;
        var lineStart = true;
        var tokenizer = new HtmlTokenizer(new StringReader(Of(part, 4 * maxChars))) { DecodeCharacterReferences = true };
        while (text.Length < maxChars && tokenizer.ReadNextToken(out var token))
        {
            if (token is HtmlTagToken tag)
            {
                var step = tag.IsEmptyElement ? 0 : tag.IsEndTag ? -1 : 1;
                if (tag.Id is HtmlTagId.Head or HtmlTagId.Style or HtmlTagId.Script or HtmlTagId.Title)
                {
                    hidden = Math.Max(0, hidden + step);
                }
                else if (tag.Id == HtmlTagId.BlockQuote)
                {
                    quoted = Math.Max(0, quoted + step);
                }

                if (!lineStart && EndsLine(tag.Id))
                {
                    text.Append('\n');
                    lineStart = true;
                }
            }
            else if (token is HtmlDataToken data && hidden == 0)
            {
                var words = string.Join(' ', data.Data.Split([' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries));
                if (words.Length == 0)
                {
                    continue;
                }

                text.Append(lineStart ? (quoted > 0 ? "> " : "") : char.IsWhiteSpace(data.Data[0]) ? " " : "").Append(words);
                lineStart = false;
            }
        }

        return text.Length > maxChars ? text.ToString(0, maxChars) : text.ToString();
    }

    private static bool EndsLine(HtmlTagId id) => id is HtmlTagId.Br or HtmlTagId.P or HtmlTagId.Div or HtmlTagId.BlockQuote or HtmlTagId.LI or HtmlTagId.TR
        or HtmlTagId.TD or HtmlTagId.TH or HtmlTagId.HR or HtmlTagId.H1 or HtmlTagId.H2 or HtmlTagId.H3 or HtmlTagId.H4 or HtmlTagId.H5 or HtmlTagId.H6
        or HtmlTagId.Pre or HtmlTagId.Table or HtmlTagId.UL or HtmlTagId.OL or HtmlTagId.Body or HtmlTagId.Html;
}
