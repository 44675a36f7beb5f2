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

        using var reader = Reader(part);
        var buffer = new char[maxChars];
        var n = reader.ReadBlock(buffer, 0, maxChars);
        return new string(buffer, 0, n);
    }

    /// <summary>
    /// At most <paramref name="maxChars"/> characters of the text of the start of the HTML part
    /// <paramref name="part"/>, from at most <paramref name="maxMarkup"/> characters of its
    /// source (default four times <paramref name="maxChars"/>), as the lines a reader sees: a
    /// block element or &lt;br&gt; ends one, the source's line breaks are spaces except in
    /// &lt;pre&gt;, what &lt;style&gt;, &lt;script&gt; and &lt;title&gt; hold is not text, nor
    /// is an element marked <c>hidden</c> or <c>display:none</c>, and what a
    /// &lt;blockquote&gt; holds is quoted ("&gt; "), as a plain reply quotes. MimeKit's tokenizer
    /// reads the markup and its character references. Review 132: &lt;head&gt; is not hidden
    /// (HTML lets its end tag out, and the whole post was), and &lt;pre&gt; keeps its lines (its
    /// first line ran into the next).
    /// </summary>
    public static string OfHtml(TextPart part, int maxChars = 16 * 1024, int? maxMarkup = null)
    {
        if (part.Content is null)
        {
            return "";
        }

        var text = new StringBuilder();
        int raw = 0, pre = 0, quoted = 0;
        (HtmlTagId Id, int Depth)? hidden = null;
        var lineStart = true;
        using var source = new Bounded(Reader(part), maxMarkup ?? 4 * maxChars);
        var tokenizer = new HtmlTokenizer(source) { DecodeCharacterReferences = true, IgnoreTruncatedTags = true };
        while (text.Length < maxChars && tokenizer.ReadNextToken(out var token))
        {
            if (token is HtmlTagToken tag)
            {
                var step = tag.IsEmptyElement || tag.Id.IsEmptyElement() ? 0 : tag.IsEndTag ? -1 : 1;
                if (hidden is var (id, depth))
                {
                    // Inside a hidden element: only its own nesting counts, until it ends.
                    hidden = tag.Id != id ? hidden : depth + step == 0 ? null : (id, depth + step);
                    continue;
                }

                if (step == 1 && Hidden(tag))
                {
                    hidden = (tag.Id, 1);
                    continue;
                }

                switch (tag.Id)
                {
                    case HtmlTagId.Style or HtmlTagId.Script or HtmlTagId.Title:
                        raw = Math.Max(0, raw + step);
                        break;
                    case HtmlTagId.Pre or HtmlTagId.Listing or HtmlTagId.Xmp or HtmlTagId.PlainText or HtmlTagId.TextArea:
                        pre = Math.Max(0, pre + step);
                        break;
                    case HtmlTagId.BlockQuote:
                        quoted = Math.Max(0, quoted + step);
                        break;
                }

                if (!lineStart && EndsLine(tag.Id))
                {
                    text.Append('\n');
                    lineStart = true;
                }
            }
            else if (token is HtmlDataToken data && raw == 0 && hidden is null)
            {
                var lines = pre > 0 ? data.Data.Split('\n') : [data.Data];
                for (var i = 0; i < lines.Length; i++)
                {
                    if (i > 0 && !lineStart)
                    {
                        text.Append('\n');
                        lineStart = true;
                    }

                    var words = string.Join(' ', lines[i].Split([' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries));
                    if (words.Length > 0)
                    {
                        text.Append(lineStart ? (quoted > 0 ? "> " : "") : char.IsWhiteSpace(lines[i][0]) ? " " : "").Append(words);
                        lineStart = false;
                    }
                }
            }
        }

        return text.Length > maxChars ? text.ToString(0, maxChars) : text.ToString();
    }

    private static StreamReader Reader(TextPart part)
    {
        Encoding encoding;
        try
        {
            encoding = part.ContentType.CharsetEncoding ?? Encoding.UTF8;
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            encoding = Encoding.UTF8; // a charset .NET does not know: read as UTF-8, as a guess
        }

        return new StreamReader(part.Content!.Open(), encoding, detectEncodingFromByteOrderMarks: true, bufferSize: 4096, leaveOpen: false);
    }

    // An element a reader does not see: the hidden attribute, or display:none in its style.
    private static bool Hidden(HtmlTagToken tag)
    {
        foreach (var attribute in tag.Attributes)
        {
            if (attribute.Name.Equals("hidden", StringComparison.OrdinalIgnoreCase)
                || (attribute.Id == HtmlAttributeId.Style && attribute.Value is { } style
                    && style.Replace(" ", "", StringComparison.Ordinal).Contains("display:none", StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }
        }

        return false;
    }

    private static bool EndsLine(HtmlTagId id) => id is HtmlTagId.Br or HtmlTagId.P or HtmlTagId.Div or HtmlTagId.BlockQuote or HtmlTagId.LI or HtmlTagId.TR
        or HtmlTagId.TD or HtmlTagId.TH or HtmlTagId.HR or HtmlTagId.H1 or HtmlTagId.H2 or HtmlTagId.H3 or HtmlTagId.H4 or HtmlTagId.H5 or HtmlTagId.H6
        or HtmlTagId.Pre or HtmlTagId.Listing or HtmlTagId.Xmp or HtmlTagId.PlainText or HtmlTagId.TextArea or HtmlTagId.Table or HtmlTagId.UL or HtmlTagId.OL
        or HtmlTagId.Body or HtmlTagId.Html;

    // At most a number of characters of a reader: the markup read of a part is bounded.
    private sealed class Bounded(TextReader inner, int limit) : TextReader
    {
        private int _left = limit;

        public override int Peek() => _left > 0 ? inner.Peek() : -1;

        public override int Read()
        {
            if (_left <= 0)
            {
                return -1;
            }

            _left--;
            return inner.Read();
        }

        public override int Read(char[] buffer, int index, int count)
        {
            var n = inner.Read(buffer, index, Math.Min(count, _left));
            _left -= n;
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
