// Reads the "Name: value" field blocks of a machine-readable report part (RFC 3464
// message/delivery-status, RFC 5965 message/feedback-report) in one linear pass, leniently.
namespace Mailman.Bounces;

/// <summary>One field of a report, unfolded; a blank line is a field with an empty name.</summary>
public readonly record struct ReportField(string Name, string Value)
{
    public bool IsBlank => Name.Length == 0;

    public bool Is(string name) => Name.Equals(name, StringComparison.OrdinalIgnoreCase);
}

public static class ReportFields
{
    /// <summary>Bytes read from a report part: a DSN naming 10,000 recipients is ~3 MB.</summary>
    public const int MaxReportBytes = 16 * 1024 * 1024;

    /// <summary>The fields in order, with blank lines kept as separators. Continuation lines
    /// (leading whitespace) are joined to their field with one space; lines that are not fields
    /// are skipped. Linear in the text.</summary>
    public static List<ReportField> Parse(string text)
    {
        var fields = new List<ReportField>();
        string? name = null;
        string? value = null;
        System.Text.StringBuilder? folded = null;
        var lastBlank = true;
        var position = 0;
        while (position < text.Length)
        {
            var newline = text.IndexOf('\n', position);
            var end = newline < 0 ? text.Length : newline;
            var line = text.AsSpan(position, end - position).TrimEnd('\r');
            position = end + 1;
            if (line.IsWhiteSpace())
            {
                Flush();
                if (!lastBlank)
                {
                    fields.Add(new ReportField("", ""));
                }

                lastBlank = true;
            }
            else if (line[0] is ' ' or '\t')
            {
                if (name is not null)
                {
                    folded ??= new System.Text.StringBuilder();
                    if (folded.Length == 0)
                    {
                        folded.Append(value);
                    }

                    folded.Append(' ').Append(line.Trim());
                }
            }
            else
            {
                Flush();
                var colon = line.IndexOf(':');
                if (colon > 0 && !line[..colon].ContainsAny(' ', '\t'))
                {
                    name = line[..colon].ToString();
                    value = line[(colon + 1)..].Trim().ToString();
                    lastBlank = false;
                }
            }
        }

        Flush();
        return fields;

        void Flush()
        {
            if (name is not null)
            {
                fields.Add(new ReportField(name, folded is { Length: > 0 } ? folded.ToString() : value!));
            }

            name = null;
            folded?.Clear();
        }
    }
}
