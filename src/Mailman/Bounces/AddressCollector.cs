// The addresses a detector found: cleaned as written, deduplicated case-insensitively, in the
// order the report names them.
namespace Mailman.Bounces;

public sealed class AddressCollector
{
    private readonly HashSet<string> _seen = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<BouncedAddress> _addresses = [];

    public int Count => _addresses.Count;

    public IReadOnlyList<BouncedAddress> Addresses => _addresses;

    /// <summary>Adds an address after <see cref="AddressText.Clean"/>; empty or repeated ones are skipped.</summary>
    public bool Add(string? raw, string? status = null, string? diagnostic = null)
    {
        var address = AddressText.Clean(raw);
        if (address.Length == 0 || !_seen.Add(address))
        {
            return false;
        }

        _addresses.Add(new BouncedAddress(address, status, diagnostic));
        return true;
    }

    /// <summary>
    /// Lines of a report's text about one recipient as one diagnostic (trimmed, joined by a
    /// space, at most 1,000 characters), or null when they say nothing.
    /// </summary>
    public static string? Diagnostic(IEnumerable<string> lines)
    {
        var text = string.Join(' ', lines.Select(l => l.Trim()).Where(l => l.Length > 0));
        return text.Length == 0 ? null : text.Length > 1000 ? text[..1000] : text;
    }

    /// <summary>A result of the given kind from this detector, or null when nothing was found.</summary>
    public BounceAnalysis? Result(BounceKind kind, string detector)
        => _addresses.Count == 0 ? null : new BounceAnalysis(kind, _addresses, detector);
}
