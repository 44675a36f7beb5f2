// The DMARC policy record a domain publishes at _dmarc.DOMAIN (RFC 9989, "DMARC Policy Record"
// format): a tag list starting with v=DMARC1. Only what mitigation needs is kept: p, sp, psd.
namespace Mailman.Dmarc;

/// <summary>A Domain Owner Assessment Policy (the <c>p</c> and <c>sp</c> values).</summary>
public enum DmarcPolicy
{
    None,
    Quarantine,
    Reject,
}

/// <summary>One parsed DMARC record.</summary>
/// <param name="Policy">p: a missing or unknown value reads as none (RFC 9989 drops the old "invalid record").</param>
/// <param name="SubdomainPolicy">sp, when present and valid.</param>
/// <param name="PublicSuffix">psd: y (true), n (false), absent or other (null).</param>
public sealed record DmarcRecord(DmarcPolicy Policy, DmarcPolicy? SubdomainPolicy, bool? PublicSuffix)
{
    /// <summary>
    /// Parses one TXT record (its strings already concatenated). Null when the text is not a
    /// DMARC record: the first tag must be exactly <c>v=DMARC1</c>; such records are discarded.
    /// Unknown tags are ignored. Linear in the length; a 60 KB record is parsed like a short one.
    /// </summary>
    public static DmarcRecord? Parse(string text)
    {
        var tags = text.Split(';');
        // Tag names and keyword values are ABNF quoted strings, case-insensitive (RFC 5234 2.3);
        // "DMARC1" is written in %x values, exact (review 108: V=DMARC1 and P=reject, seen in
        // real records, read as no record and the post went unmitigated).
        if (!TrySplitTag(tags[0], out var name, out var value) || !name.Equals("v", StringComparison.OrdinalIgnoreCase) || value != "DMARC1")
        {
            return null;
        }

        DmarcPolicy? p = null, sp = null;
        bool? psd = null;
        foreach (var tag in tags.AsSpan(1))
        {
            if (!TrySplitTag(tag, out name, out value))
            {
                continue;
            }

            switch (name.ToLowerInvariant())
            {
                case "p": p ??= ParsePolicy(value); break;
                case "sp": sp ??= ParsePolicy(value); break;
                case "psd": psd ??= value.ToLowerInvariant() switch { "y" => true, "n" => false, _ => null }; break;
            }
        }

        return new DmarcRecord(p ?? DmarcPolicy.None, sp, psd);
    }

    // tag-spec = tag-name *WSP "=" *WSP tag-value, surrounded by optional whitespace.
    private static bool TrySplitTag(string tag, out string name, out string value)
    {
        var eq = tag.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0)
        {
            name = value = "";
            return false;
        }

        name = tag[..eq].Trim(' ', '\t', '\r', '\n');
        value = tag[(eq + 1)..].Trim(' ', '\t', '\r', '\n');
        return name.Length > 0;
    }

    private static DmarcPolicy? ParsePolicy(string value)
        => value.ToLowerInvariant() switch
        {
            "none" => DmarcPolicy.None,
            "quarantine" => DmarcPolicy.Quarantine,
            "reject" => DmarcPolicy.Reject,
            _ => null,
        };
}
