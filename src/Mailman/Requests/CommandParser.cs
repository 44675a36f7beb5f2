// Finds the commands in a mail to LIST-request@: the Subject (when it names a command), then the
// first lines of the body's plain text (an HTML-only body's text). Quoted reply text ("> ...", "On ... wrote:") and
// signatures ("-- ") are not commands, and only the first lines are read: a 10 MB body costs
// what its first 64 KB cost.
using System.Text;
using MimeKit;
using Mailman.Moderation;

namespace Mailman.Requests;

/// <summary>One line that may be a command: its words, and whether it came from the Subject.</summary>
public sealed record CommandLine(string Text, bool FromSubject)
{
    private static readonly char[] Blanks = [' ', '\t'];

    public IReadOnlyList<string> Words { get; } = Text.Split(Blanks, StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The command word, lower-cased ("" for none).</summary>
    public string Name => Words.Count == 0 ? "" : Words[0].ToLowerInvariant();

    public IReadOnlyList<string> Arguments => Words.Skip(1).ToList();

    /// <summary>Stands for body lines past <see cref="CommandParser.MaxBodyLines"/> that were not read: the results say so.</summary>
    public bool NotRead { get; init; }
}

public static class CommandParser
{
    /// <summary>Body lines looked at (not counting blank and quoted ones), as Mailman's email_commands_max_lines.</summary>
    public const int MaxBodyLines = 10;

    /// <summary>Characters of body text read at most.</summary>
    public const int MaxBodyChars = 64 * 1024;

    /// <summary>A longer line is cut: no command is that long.</summary>
    public const int MaxLineLength = 1000;

    private static readonly string[] ReplyPrefixes = ["re:", "aw:", "sv:", "fw:", "fwd:", "wg:", "tr:"];

    /// <summary>The candidate command lines of <paramref name="message"/>.</summary>
    public static IReadOnlyList<CommandLine> Read(MimeMessage message) => Read(message.Subject, BodyText(message));

    /// <summary>The candidate command lines of a subject and a plain-text body.</summary>
    public static IReadOnlyList<CommandLine> Read(string? subject, string body)
    {
        var lines = new List<CommandLine>();
        var s = Clean(StripReplyPrefixes(subject ?? ""));
        if (s.Length > 0)
        {
            lines.Add(new CommandLine(s, FromSubject: true));
        }

        var taken = 0;
        using var reader = new StringReader(body);
        while (taken < MaxBodyLines && reader.ReadLine() is { } raw)
        {
            var line = Clean(raw);
            if (Ends(raw, line))
            {
                break;
            }

            if (line.Length == 0 || line.StartsWith('>'))
            {
                continue;
            }

            lines.Add(new CommandLine(line, FromSubject: false));
            taken++;
        }

        // Lines past the limit that may be commands are not read, but not in silence (review
        // 104: an 11th command was neither done nor mentioned).
        if (taken == MaxBodyLines && MoreFollow(reader))
        {
            lines.Add(new CommandLine("...", FromSubject: false) { NotRead = true });
        }

        return lines;
    }

    // Whether a line that is no quote, signature or blank follows.
    private static bool MoreFollow(StringReader reader)
    {
        while (reader.ReadLine() is { } raw)
        {
            var line = Clean(raw);
            if (Ends(raw, line))
            {
                return false;
            }

            if (line.Length > 0 && !line.StartsWith('>'))
            {
                return true;
            }
        }

        return false;
    }

    // A signature, the start of a forwarded or quoted message, or "On Mon, Anne wrote:" (what
    // follows is the quoted message): no command follows.
    private static bool Ends(string raw, string line)
        => raw is "-- " or "--" || raw.StartsWith("-----Original Message", StringComparison.OrdinalIgnoreCase) || raw.StartsWith("________________", StringComparison.Ordinal)
            || (!line.StartsWith('>') && (line.EndsWith("wrote:", StringComparison.OrdinalIgnoreCase) || line.EndsWith("schrieb:", StringComparison.OrdinalIgnoreCase)));

    /// <summary>The subject without "Re:", "Fwd:" and "[tag]" prefixes, however many.</summary>
    public static string StripReplyPrefixes(string subject)
    {
        var s = subject.Trim();
        while (true)
        {
            var before = s;
            foreach (var p in ReplyPrefixes)
            {
                if (s.StartsWith(p, StringComparison.OrdinalIgnoreCase))
                {
                    s = s[p.Length..].TrimStart();
                }
            }

            if (s.StartsWith('[') && s.IndexOf(']', StringComparison.Ordinal) is var close and > 0)
            {
                s = s[(close + 1)..].TrimStart();
            }

            if (s == before)
            {
                return s;
            }
        }
    }

    /// <summary>
    /// The start of the first plain-text part that is not an attachment, decoded, as a reader
    /// sees it (format=flowed lines joined); without one, the text of the first HTML part
    /// (stop 56's note: a moderator's HTML-only "approve" was answered "the reply said
    /// nothing"); "" when there is neither.
    /// </summary>
    public static string BodyText(MimeMessage message)
    {
        var parts = message.BodyParts.OfType<TextPart>().Where(p => !p.IsAttachment).ToList();
        return (parts.FirstOrDefault(p => p.IsPlain) ?? parts.FirstOrDefault(p => p.IsHtml)) is { } part ? TextStart.AsRead(part, MaxBodyChars) : "";
    }

    /// <summary>The first line a reply's writer wrote, before any quoted text; null when there is none.</summary>
    public static string? FirstLine(MimeMessage reply)
    {
        var line = BodyText(reply).Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0);
        return line is null || line.StartsWith('>') ? null : Clean(line);
    }

    /// <summary>What a reply said, for the answer that says what was expected instead.</summary>
    public static string Said(string? line)
        => string.IsNullOrEmpty(line) ? "nothing" : "'" + (line.Length > 60 ? line[..60] + "..." : line) + "'";

    // Control characters become spaces; long lines are cut.
    private static string Clean(string line)
    {
        var s = line.Length > MaxLineLength ? line[..MaxLineLength] : line;
        return string.Create(s.Length, s, static (span, src) =>
        {
            for (var i = 0; i < src.Length; i++)
            {
                span[i] = char.IsControl(src[i]) ? ' ' : src[i];
            }
        }).Trim();
    }
}
