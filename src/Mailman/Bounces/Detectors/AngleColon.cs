// "<addr>:" and "<addr>" in a line, found by hand in one pass (no regex, no backtracking).
namespace Mailman.Bounces.Detectors;

internal static class AngleColon
{
    /// <summary>The first "&lt;addr&gt;:" anywhere in the line, or null.</summary>
    public static string? Find(string line)
    {
        var from = 0;
        while (from < line.Length)
        {
            var open = line.IndexOf('<', from);
            if (open < 0)
            {
                return null;
            }

            var close = line.IndexOf('>', open + 1);
            if (close < 0)
            {
                return null;
            }

            // The nearest '<' before this '>' opens the candidate ("<<a>:" names "a").
            var start = line.LastIndexOf('<', close - 1) + 1;
            if (close + 1 < line.Length && line[close + 1] == ':')
            {
                return line[start..close];
            }

            from = close + 1;
        }

        return null;
    }

    /// <summary>"&lt;addr&gt;:" at the very start of the (trimmed) line, or null.</summary>
    public static string? AtStart(string line)
    {
        if (!line.StartsWith('<'))
        {
            return null;
        }

        var close = line.IndexOf('>', 1);
        return close > 0 && close + 1 < line.Length && line[close + 1] == ':' ? line[1..close] : null;
    }

    /// <summary>"&lt;addr&gt;" at the very start of the line, or null.</summary>
    public static string? AngleAtStart(string line)
    {
        if (!line.StartsWith('<'))
        {
            return null;
        }

        var close = line.IndexOf('>', 1);
        return close > 0 ? line[1..close] : null;
    }

    /// <summary>The first "&lt;addr&gt;" anywhere in the line, or null.</summary>
    public static string? Angle(string line)
    {
        var open = line.IndexOf('<');
        if (open < 0)
        {
            return null;
        }

        var close = line.IndexOf('>', open + 1);
        return close < 0 ? null : line[(line.LastIndexOf('<', close - 1) + 1)..close];
    }
}
