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

    /// <summary>Lines of a block kept as what the remote server said.</summary>
    public const int MaxSaidLines = 40;

    /// <summary>
    /// The addresses of the first pattern (in order) that names any; empty when none does. Each
    /// address carries the block's text as its diagnostic (from the start line to the end line,
    /// <see cref="MaxSaidLines"/> at most, in the text part it starts in, before a returned
    /// message, without the lines that quote one: BounceContext.QuotedLine): these
    /// formats give no status, and the remote server's words are in the block ("The error that
    /// the other server returned was: 554 ... blocked using zen.spamhaus.org"; review 140: such a
    /// refusal of our server scored, and its probe's bounce disabled the member). Each pattern
    /// reads the lines at most once: linear in the (bounded) text.
    /// </summary>
    public static AddressCollector Scan(BounceContext message, IReadOnlyList<LinePattern> patterns, bool plausibleOnly)
    {
        foreach (var pattern in patterns)
        {
            if (!message.Mentions(pattern.Hint))
            {
                continue;
            }

            var found = new List<string>();
            var said = new List<string>();
            var started = false;
            var ended = false;
            TextBody? startPart = null;
            foreach (var text in message.TextParts)
            {
                foreach (var line in text.Lines)
                {
                    if (!started && pattern.Start(line))
                    {
                        started = true;
                        startPart = text;
                    }

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
                        ended = true;
                        break;
                    }

                    // What the server said is in the part the block starts in, before a returned
                    // message (review 142: Dovecot's block ran on into the returned post's text).
                    startPart = ReferenceEquals(text, startPart) && !BounceContext.ReturnedMessageStarts(line) ? startPart : null;
                    if (startPart is not null && said.Count < MaxSaidLines && !BounceContext.QuotedLine(line))
                    {
                        said.Add(line);
                    }
                }

                if (ended)
                {
                    break;
                }
            }

            if (found.Count > 0)
            {
                var result = new AddressCollector();
                var diagnostic = AddressCollector.Diagnostic(said);
                foreach (var address in found)
                {
                    var clean = AddressText.Clean(address);
                    if (!plausibleOnly || AddressText.IsPlausible(clean))
                    {
                        result.Add(clean, diagnostic: diagnostic);
                    }
                }

                return result;
            }
        }

        return new AddressCollector();
    }
}
