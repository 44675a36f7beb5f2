// The seed's workloads, generated deterministically: 8000 members with random 7-letter local
// parts at example.com, and posts of a given size (text/plain with wrapped lines, some starting
// with '.'; or multipart/related: HTML plus base64 images, like a saved web page).
using System.Text;

namespace Mailman.Benchmarks;

/// <param name="Dns">With a DNS server (IP:port): the list munges From: for DMARC p=reject posters, looking the policy up there.</param>
public sealed record Row(string Name, int Bytes, bool Related, int MaxRecipients, double Minutes2003, int Members, string? Dns = null);

public static class Workloads
{
    /// <summary>An empty instance at <paramref name="home"/>: what a previous row left there is deleted first.</summary>
    public static Mailman.Instance.InstancePaths FreshInstance(string home, Action? beforeDelete = null)
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(home))
        {
            beforeDelete?.Invoke();
            Directory.Delete(home, true);
        }

        var paths = new Mailman.Instance.InstancePaths(home);
        paths.EnsureCreated();
        return paths;
    }

    public static IEnumerable<string> Members(int count, int seed = 2003)
    {
        var random = new Random(seed);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var local = new char[7];
        while (seen.Count < count)
        {
            for (var i = 0; i < local.Length; i++)
            {
                local[i] = (char)('a' + random.Next(26));
            }

            var address = new string(local) + "@example.com";
            if (seen.Add(address))
            {
                yield return address;
            }
        }
    }

    private static readonly string[] Words = "the quick brown fox jumps over lazy dogs mailman list delivery performance python postfix".Split(' ');

    public static byte[] Post(Row row) => row.Related ? Related(row.Bytes) : Plain(row.Bytes);

    private static string Head(string contentType) =>
        "From: Barry Warsaw <barry@example.com>\n" +
        "To: bench@example.org\n" +
        "Subject: Looking at performance again\n" +
        "Message-Id: <bench-" + contentType.Length + "@example.com>\n" +
        "Date: Wed, 14 May 2003 17:21:08 -0400\n" +
        "MIME-Version: 1.0\n";

    private static byte[] Plain(int size) => Text(size, width: 68, exact: false, dotEvery: 23);

    /// <summary>
    /// A text/plain post of <paramref name="size"/> bytes whose body has the shape of what
    /// `smtp-source -l` sends: lines of 78 characters, none starting with a dot. Through Postfix
    /// the work per message follows the line count (a record per line in smtpd, cleanup and the
    /// queue file), so a row that compares us with smtp-source there sends the same lines.
    /// </summary>
    public static byte[] PlainLikeSmtpSource(int size) => Text(size, width: 78, exact: true, dotEvery: 0);

    // Word soup in lines: at least width characters, cut at a word (a prose post's 68-75) or
    // exactly width (the last line to fill size); every dotEvery-th line starts with a dot.
    private static byte[] Text(int size, int width, bool exact, int dotEvery)
    {
        var sb = new StringBuilder(Head("text/plain")).Append("Content-Type: text/plain; charset=us-ascii\n\n");
        var random = new Random(size);
        var line = new StringBuilder();
        var n = 0;
        while (sb.Length < size)
        {
            line.Clear();
            if (dotEvery > 0 && n++ % dotEvery == 0)
            {
                line.Append('.');
            }

            while (line.Length < width)
            {
                line.Append(Words[random.Next(Words.Length)]).Append(' ');
            }

            if (exact)
            {
                line.Length = Math.Min(width, size - sb.Length);
                if (line[^1] == ' ')
                {
                    line[^1] = 's';
                }

                sb.Append(line);
            }
            else
            {
                sb.Append(line.ToString().TrimEnd());
            }

            sb.Append('\n');
        }

        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    private static byte[] Related(int size)
    {
        var random = new Random(size);
        var sb = new StringBuilder(Head("multipart/related"))
            .Append("Content-Type: multipart/related; boundary=\"=_related\"; type=\"text/html\"\n\n")
            .Append("--=_related\nContent-Type: text/html; charset=us-ascii\n\n<html><body>\n");
        for (var i = 0; i < 40; i++)
        {
            sb.Append("<p>Paragraph ").Append(i).Append(" of the snapshot, <img src=\"cid:img").Append(i % 8).Append("@example.com\"></p>\n");
        }

        sb.Append("</body></html>\n");
        var images = 8;
        var perImage = Math.Max(1024, (size - sb.Length) * 3 / 4 / images);
        for (var i = 0; i < images; i++)
        {
            var bytes = new byte[perImage];
            random.NextBytes(bytes);
            sb.Append("--=_related\nContent-Type: image/png\nContent-Transfer-Encoding: base64\nContent-ID: <img").Append(i).Append("@example.com>\n\n")
              .Append(Convert.ToBase64String(bytes, Base64FormattingOptions.InsertLineBreaks).Replace("\r\n", "\n", StringComparison.Ordinal)).Append('\n');
        }

        sb.Append("--=_related--\n");
        return Encoding.ASCII.GetBytes(sb.ToString());
    }
}
