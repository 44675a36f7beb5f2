// One recipient line of a queue entry: "address TAB display-name LF", or with the member's
// one-click unsubscribe token "address TAB display-name TAB token LF" (two-field lines still read).
namespace Mailman.Queues;

/// <summary>An address to deliver to, with the member's display name (may be empty).</summary>
public readonly record struct Recipient(string Address, string DisplayName)
{
    /// <summary>The member's one-click unsubscribe token (Http/OneClickLinks), or null.</summary>
    public string? UnsubscribeToken { get; init; }

    public string Domain
    {
        get
        {
            var at = Address.LastIndexOf('@');
            return at < 0 ? "" : Address[(at + 1)..].ToLowerInvariant();
        }
    }

    /// <summary>Reads one recipient line (without its LF).</summary>
    public static Recipient Parse(string line)
    {
        var tab = line.IndexOf('\t', StringComparison.Ordinal);
        if (tab < 0)
        {
            return new Recipient(line, "");
        }

        var second = line.IndexOf('\t', tab + 1);
        return second < 0
            ? new Recipient(line[..tab], line[(tab + 1)..])
            : new Recipient(line[..tab], line[(tab + 1)..second]) { UnsubscribeToken = line[(second + 1)..] };
    }

    /// <summary>The line for this recipient (with its LF); TAB and line breaks in the fields become spaces.</summary>
    public string ToLine()
        => UnsubscribeToken is { } token
            ? Clean(Address) + "\t" + Clean(DisplayName) + "\t" + Clean(token) + "\n"
            : Clean(Address) + "\t" + Clean(DisplayName) + "\n";

    private static string Clean(string s)
        => s.AsSpan().IndexOfAny('\t', '\n', '\r') < 0 ? s : s.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');
}
