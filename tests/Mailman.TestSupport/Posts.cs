// Builders for test posts: plain, 8-bit, multipart/alternative, multipart/related.
using System.Text;

namespace Mailman.TestSupport;

public static class Posts
{
    public static byte[] Plain(string from = "poster@example.com", string to = "dev@example.org", string subject = "Hello", string body = "Hi all,\n.leading dot\n..two dots\nbye\n", string messageId = "post1@example.com")
        => Encoding.UTF8.GetBytes($"From: Poster <{from}>\nTo: {to}\nSubject: {subject}\nMessage-Id: <{messageId}>\nDate: Sat, 28 Nov 2026 10:00:00 +0000\n\n{body}");

    /// <summary>A text/plain ISO-8859-1 body with 8-bit bytes (cannot be extended in place: footer goes in its own part).</summary>
    public static byte[] EightBitLatin1()
    {
        var head = Encoding.ASCII.GetBytes("From: poster@example.com\nTo: dev@example.org\nSubject: latin\nMessage-Id: <latin1@example.com>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n");
        var body = Encoding.Latin1.GetBytes("Caf\u00e9 cr\u00e8me \u00fcber alles\n.dot line\n");
        return [.. head, .. body];
    }

    public static byte[] Alternative()
        => Encoding.ASCII.GetBytes("""
            From: poster@example.com
            To: dev@example.org
            Subject: alt
            Message-Id: <alt@example.com>
            MIME-Version: 1.0
            Content-Type: multipart/alternative; boundary="ALT-BOUNDARY"

            --ALT-BOUNDARY
            Content-Type: text/plain; charset=us-ascii

            plain version
            --ALT-BOUNDARY
            Content-Type: text/html; charset=us-ascii

            <p>html version</p>
            --ALT-BOUNDARY--

            """.Replace("\r\n", "\n", StringComparison.Ordinal));

    public static byte[] Related()
    {
        var image = Convert.ToBase64String(Enumerable.Range(0, 3000).Select(i => (byte)(i * 7)).ToArray(), Base64FormattingOptions.InsertLineBreaks).Replace("\r\n", "\n", StringComparison.Ordinal);
        return Encoding.ASCII.GetBytes($"""
            From: poster@example.com
            To: dev@example.org
            Subject: related
            Message-Id: <rel@example.com>
            MIME-Version: 1.0
            Content-Type: multipart/related; boundary="REL-BOUNDARY"; type="text/html"

            --REL-BOUNDARY
            Content-Type: text/html; charset=us-ascii

            <html><img src="cid:img1@example.com"></html>
            --REL-BOUNDARY
            Content-Type: image/png
            Content-Transfer-Encoding: base64
            Content-ID: <img1@example.com>

            {image}
            --REL-BOUNDARY--

            """.Replace("\r\n", "\n", StringComparison.Ordinal));
    }
}
