// The start of a text part, decoded, without reading the rest: what the rules that look at a
// post's first lines need, at the same cost for a 40 MB post as for a short one.
using System.Text;
using MimeKit;

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
}
