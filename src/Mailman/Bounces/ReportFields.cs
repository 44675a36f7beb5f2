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
        var value = new System.Text.StringBuilder();
        var lastBlank = true;
        foreach (var range in text.AsSpan().Split('\n'))
        {
            var line = text.AsSpan(range.Start.Value, range.End.Value - range.Start.Value).TrimEnd('\r');
            if (line.IsWhiteSpace())
            {
                Flush();
                if (!lastBlank)
                {
                    fields.Add(new ReportField("", ""));
                }

                lastBlank = true;
                continue;
            }

            if (line[0] is ' ' or '\t')
            {
                if (name is not null)
                {
                    value.Append(' ').Append(line.Trim());
                }

                continue;
            }

            Flush();
            var colon = line.IndexOf(':');
            if (colon <= 0 || line[..colon].ContainsAny(" \t"))
            {
                continue;
            }

            name = line[..colon].ToString();
            value.Append(line[(colon + 1)..].Trim());
            lastBlank = false;
        }

        Flush();
        return fields;

        void Flush()
        {
            if (name is not null)
            {
                fields.Add(new ReportField(name, value.ToString()));
            }

            name = null;
            value.Clear();
        }
    }
}
