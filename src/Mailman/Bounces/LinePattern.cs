// The engine behind SimpleMatch and SimpleWarning (Mailman 2.1's simple state machine): a
// start line, address lines, an end line, tried pattern by pattern over the body's lines.
namespace Mailman.Bounces;

/// <summary>One heuristic format.</summary>
/// <param name="Hint">A lower-case phrase the start line must contain: patterns whose phrase
/// occurs nowhere in the text are skipped without looking at a line.</param>
/// <param name="Start">The line that opens the block (it may itself name an address).</param>
/// <param name="End">The line after the block (checked only on lines naming no address).</param>
/// <param name="Address">The address a line names, or null.</param>
public sealed record LinePattern(string Hint, Func<string, bool> Start, Func<string, bool> End, Func<string, string?> Address)
{
    /// <summary>True when the line contains the phrase, ignoring case.</summary>
    public static bool Has(string line, string phrase) => line.Contains(phrase, StringComparison.OrdinalIgnoreCase);

    /// <summary>True when the line starts with the phrase, ignoring case.</summary>
    public static bool Opens(string line, string phrase) => line.StartsWith(phrase, StringComparison.OrdinalIgnoreCase);

    /// <summary>The addresses of the first pattern (in order) that names any; empty when none does.
    /// Each pattern reads the lines at most once: linear in the (bounded) text.</summary>
    public static AddressCollector Scan(BounceContext message, IReadOnlyList<LinePattern> patterns, bool plausibleOnly)
    {
        var lines = message.BodyLines;
        foreach (var pattern in patterns)
        {
            if (!message.Mentions(pattern.Hint))
            {
                continue;
            }

            var found = new List<string>();
            var started = false;
            foreach (var line in lines)
            {
                started = started || pattern.Start(line);
                if (!started)
                {
                    continue;
                }

                if (pattern.Address(line) is { Length: > 0 } address)
                {
                    found.Add(address);
                }
                else if (pattern.End(line))
                {
                    break;
                }
            }

            if (found.Count > 0)
            {
                var result = new AddressCollector();
                foreach (var address in found)
                {
                    var clean = AddressText.Clean(address);
                    if (!plausibleOnly || AddressText.IsPlausible(clean))
                    {
                        result.Add(clean);
                    }
                }

                return result;
            }
        }

        return new AddressCollector();
    }
}
