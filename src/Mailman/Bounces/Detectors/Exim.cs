// Exim: every bounce carries the failed addresses in an X-Failed-Recipients header.
namespace Mailman.Bounces.Detectors;

public sealed class Exim : IBounceDetector
{
    public string Name => "Exim";

    public string Description => "Exim bounces: the X-Failed-Recipients header";

    public BounceAnalysis? Detect(BounceContext message)
    {
        var found = new AddressCollector();
        Dictionary<string, int>? named = null;
        foreach (var header in message.Message.Headers)
        {
            if (!header.Field.Equals("X-Failed-Recipients", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            foreach (var range in header.Value.AsSpan().Split(','))
            {
                var address = AddressText.Clean(header.Value[range]);
                if (AddressText.LooksLikeAddress(address))
                {
                    named ??= Named(message.BodyLines);
                    found.Add(address, diagnostic: named.TryGetValue(address, out var line) ? DiagnosticAfter(message.BodyLines, line) : null);
                }
            }
        }

        return found.Result(BounceKind.Permanent, Name);
    }

    // Exim's text names each failed address on a line of its own ("  anne@example.org", with a
    // colon or in angle brackets) and indents what the remote server said below it ("    SMTP
    // error from remote mail server after RCPT TO:<...>:", "    550 5.7.1 ... DMARC policy"):
    // that is the diagnostic, so a refusal of our server or of the message is not scored (review
    // 61). The lines that may name one, found in one pass (a report naming thousands is not read
    // once per address).
    private static Dictionary<string, int> Named(IReadOnlyList<string> lines)
    {
        var named = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < lines.Count; i++)
        {
            var text = lines[i].Trim().TrimEnd(':');
            if (text.Length is > 2 and < 400 && text.Contains('@', StringComparison.Ordinal) && !text.Contains(' ', StringComparison.Ordinal))
            {
                named.TryAdd(text.StartsWith('<') && text.EndsWith('>') ? text[1..^1] : text, i);
            }
        }

        return named;
    }

    private static string? DiagnosticAfter(IReadOnlyList<string> lines, int at)
    {
        var indent = lines[at].Length - lines[at].TrimStart().Length;
        var diagnostic = new List<string>();
        for (var j = at + 1; j < lines.Count && diagnostic.Count < 40; j++)
        {
            var next = lines[j];
            if (next.Trim().Length == 0 || next.Length - next.TrimStart().Length <= indent)
            {
                break;
            }

            diagnostic.Add(next);
        }

        return AddressCollector.Diagnostic(diagnostic);
    }
}
