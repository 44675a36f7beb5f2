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
    /// The start of <paramref name="part"/> as a reader sees it: an HTML part's text
    /// (<see cref="OfHtml"/>), a plain part's text with its format=flowed lines joined (RFC 3676;
    /// review 136: a soft break after "Approved:" hid the line, and a request's long command
    /// line was read as two).
    /// </summary>
    public static string AsRead(TextPart part, int maxChars = 16 * 1024, int? maxMarkup = null)
    {
        var text = part.IsHtml ? OfHtml(part, maxChars, maxMarkup) : Of(part, maxChars);
        if (part.IsFlowed)
        {
            // The signature separator "-- " is a fixed line (RFC 3676 4.3): the flowed text
            // ends before it, and what follows is left as it is (review 138: "join " before it
            // was joined with it and the signature into one command).
            var sig = text.StartsWith("-- \n", StringComparison.Ordinal) || text.StartsWith("-- \r\n", StringComparison.Ordinal) ? 0
                : Math.Min(After(text.IndexOf("\n-- \n", StringComparison.Ordinal)), After(text.IndexOf("\n-- \r\n", StringComparison.Ordinal)));
            var delsp = part.ContentType.Parameters.TryGetValue("delsp", out string? d) && string.Equals(d, "yes", StringComparison.OrdinalIgnoreCase);
            var flowed = sig == 0 ? "" : new FlowedToText { DeleteSpace = delsp }.Convert(text[..sig]);
            text = sig == text.Length ? flowed : flowed.TrimEnd(' ') + (flowed.Length == 0 || flowed.EndsWith('\n') ? "" : "\n") + text[sig..];
        }

        return text;

        int After(int lf) => lf < 0 ? text.Length : lf + 1;
    }

    /// <summary>
    /// At most <paramref name="maxChars"/> characters of the text of the start of the HTML part
    /// <paramref name="part"/>, from at most <paramref name="maxMarkup"/> characters of its
    /// source (default four times <paramref name="maxChars"/>), as lines: every element but an
    /// inline one ends one, the source's line breaks are spaces except in
    /// &lt;pre&gt;, what &lt;style&gt;, &lt;script&gt; and &lt;title&gt; hold is not text, and
    /// what a &lt;blockquote&gt; holds is quoted ("&gt; "), as a plain reply quotes. MimeKit's
    /// tokenizer reads the markup and its character references. Review 132: &lt;head&gt; is not
    /// hidden (HTML lets its end tag out, and the whole post was), and &lt;pre&gt; keeps its
    /// lines. Review 134: text hidden by styles is text here (an element's end may be left out,
    /// and hiding to it hid the rest); what reads a first line must not rely on it being the
    /// first a reader sees (ApprovedPassword.Shown).
    /// </summary>
    public static string OfHtml(TextPart part, int maxChars = 16 * 1024, int? maxMarkup = null)
    {
        if (part.Content is null)
        {
            return "";
        }

        var text = new StringBuilder();
        int raw = 0, pre = 0, quoted = 0;
        bool lineStart = true, space = false;
        using var source = new Bounded(Reader(part), maxMarkup ?? 4 * maxChars);
        var tokenizer = new HtmlTokenizer(source) { DecodeCharacterReferences = true, IgnoreTruncatedTags = true };
        while (text.Length < maxChars && tokenizer.ReadNextToken(out var token))
        {
            if (token is HtmlTagToken tag)
            {
                var step = tag.IsEmptyElement || tag.Id.IsEmptyElement() ? 0 : tag.IsEndTag ? -1 : 1;
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
            else if (token is HtmlDataToken data && raw == 0)
            {
                var lines = pre > 0 ? data.Data.ReplaceLineEndings("\n").Split('\n') : [data.Data];
                for (var i = 0; i < lines.Length; i++)
                {
                    if (i > 0 && !lineStart)
                    {
                        text.Append('\n');
                        lineStart = true;
                    }

                    // White space between words, in this token or ending the one before, is one space.
                    var line = lines[i];
                    var words = string.Join(' ', line.Split(Blanks, StringSplitOptions.RemoveEmptyEntries));
                    if (words.Length > 0)
                    {
                        text.Append(lineStart ? (quoted > 0 ? "> " : "") : space || Blanks.Contains(line[0]) ? " " : "").Append(words);
                        lineStart = false;
                    }

                    space = line.Length > 0 && Blanks.Contains(line[^1]) || (words.Length == 0 && (space || line.Length > 0));
                }
            }
        }

        return text.Length > maxChars ? text.ToString(0, maxChars) : text.ToString();
    }

    private static readonly char[] Blanks = [' ', '\t', '\r', '\n'];

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

    // Any element but the inline ones ends a line (review 134: <center>, <section>, <dd> ... ran
    // two lines into one).
    private static bool EndsLine(HtmlTagId id) => id is not (HtmlTagId.A or HtmlTagId.Abbr or HtmlTagId.Acronym or HtmlTagId.B or HtmlTagId.Bdi
        or HtmlTagId.Bdo or HtmlTagId.Big or HtmlTagId.Blink or HtmlTagId.Cite or HtmlTagId.Code or HtmlTagId.Del or HtmlTagId.Dfn or HtmlTagId.EM
        or HtmlTagId.Font or HtmlTagId.I or HtmlTagId.Ins or HtmlTagId.Kbd or HtmlTagId.Label or HtmlTagId.Mark or HtmlTagId.NoBR or HtmlTagId.Q
        or HtmlTagId.S or HtmlTagId.Samp or HtmlTagId.Small or HtmlTagId.Span or HtmlTagId.Strike or HtmlTagId.Strong or HtmlTagId.Sub
        or HtmlTagId.Sup or HtmlTagId.Time or HtmlTagId.TT or HtmlTagId.U or HtmlTagId.Var or HtmlTagId.Wbr or HtmlTagId.Image or HtmlTagId.Comment
        or HtmlTagId.Unknown); // Outlook's <o:p>, <st1:PersonName> (review 135: a command split in two)

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
