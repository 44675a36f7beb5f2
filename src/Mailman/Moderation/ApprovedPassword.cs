// Finds the moderator password a post carries (an Approved:/Approve: header, or the same as the
// first line of the first text/plain part, Mailman's pseudo-header; only the start of that part
// is read unless it holds one) and removes it from the post
// everywhere: every such header, and every text part that repeats it, including the HTML copy of
// a multipart/alternative, where mail clients wrap it in markup. A password must never reach the
// members, right or wrong.
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

        foreach (var name in HeaderNames)
        {
            while (message.Headers.Contains(name))
            {
                message.Headers.Remove(name);
                modified = true;
            }
        }

        if (password is not null)
        {
            return password;
        }

        var first = TextParts(message).FirstOrDefault(p => p.IsPlain);
        if (first is null || FirstLine(TextStart.Of(first)) is not { } line || PseudoHeader().Match(line) is not { Success: true } match)
        {
            return null;
        }

        password = match.Groups[1].Value.Trim();
        foreach (var part in TextParts(message))
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

    // Text parts of the post itself: not attachments, not the insides of attached messages.
    private static IEnumerable<TextPart> TextParts(MimeMessage message)
        => message.BodyParts.OfType<TextPart>().Where(p => !p.IsAttachment);

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

    // In HTML the words may be split by tags, entities and line breaks ("<p>Approved:&nbsp;<b>pw</b>").
    private static string StripHtml(string html, string password)
    {
        var between = @"(?:\s|&nbsp;|&#160;|&#xa0;|<[^<>]{0,500}>)*";
        var passwords = new[] { password, WebUtility.HtmlEncode(password) }.Distinct(StringComparer.Ordinal).Select(Regex.Escape);
        var pattern = "(?:X-)?Approved?:" + between + "(?:" + string.Join('|', passwords) + ")";
        return Regex.Replace(html, pattern, "", RegexOptions.IgnoreCase | RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
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
