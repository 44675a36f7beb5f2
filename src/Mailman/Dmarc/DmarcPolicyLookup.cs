// Finds the DMARC policy that applies to a From: domain with RFC 9989's DNS Tree Walk (DMARCbis;
// no Public Suffix List): query _dmarc.DOMAIN; if no single valid record is there, drop labels
// (to at most four, then one at a time) and query each parent up to the top-level domain. The
// first single valid record found is the policy record: its p= for the domain itself, its sp=
// (else p=) for a subdomain. At most five queries per domain, whatever the answers say: the
// targets come from the name alone, never from an answer, so no answer can lead the walk astray.
using Microsoft.Extensions.Logging;

namespace Mailman.Dmarc;

/// <summary>What the lookup found for one author domain.</summary>
public enum DmarcVerdict
{
    /// <summary>The domain is not a valid DNS name (no domain, too long, bad label): nothing to look up.</summary>
    InvalidDomain,

    /// <summary>No DMARC record anywhere on the walk.</summary>
    NoRecord,

    /// <summary>p=none (or a record without a valid policy).</summary>
    None,

    Quarantine,

    Reject,

    /// <summary>A timeout or SERVFAIL on the walk: unknown, treated as a policy that needs mitigation.</summary>
    DnsError,
}

/// <param name="Domain">The author domain as looked up (lower case, IDNA A-labels).</param>
/// <param name="RecordDomain">Where the policy record was found (the domain or a parent), if any.</param>
/// <param name="Queries">DNS queries this lookup asked (cached answers count too).</param>
public sealed record DmarcResult(string Domain, DmarcVerdict Verdict, string? RecordDomain, int Queries, string Detail)
{
    /// <summary>reject, quarantine, or unknown because DNS failed: munging is harmless, bounces are not.</summary>
    public bool NeedsMitigation => Verdict is DmarcVerdict.Reject or DmarcVerdict.Quarantine or DmarcVerdict.DnsError;

    /// <summary>The verdict as logged and stored: reject, quarantine, none, no-record, dns-error, invalid-domain.</summary>
    public string PolicyName => Verdict switch
    {
        DmarcVerdict.InvalidDomain => "invalid-domain",
        DmarcVerdict.NoRecord => "no-record",
        DmarcVerdict.DnsError => "dns-error",
        _ => Verdict.ToString().ToLowerInvariant(),
    };
}

public sealed class DmarcPolicyLookup(ITxtResolver resolver, ILogger<DmarcPolicyLookup> logger)
{
    /// <summary>Distinct From: domains looked up per post; the rest are not (several authors are rare, thousands are an attack).</summary>
    public const int MaximumDomainsPerPost = 5;

    /// <summary>RFC 1035 §2.3.4: 255 octets on the wire, so 253 characters in text form.</summary>
    private const int MaximumNameLength = 253;

    /// <summary>The policy for one author domain.</summary>
    public DmarcResult Lookup(string domain)
    {
        if (!TryNormalize(domain, out var name, out var why))
        {
            return new DmarcResult(domain, DmarcVerdict.InvalidDomain, null, 0, why);
        }

        var queries = 0;
        foreach (var target in Targets(name))
        {
            var query = "_dmarc." + target;
            if (query.Length > MaximumNameLength)
            {
                // Too long to ask about (a 300-label From: domain); its parents may still be asked.
                continue;
            }

            queries++;
            var answer = resolver.QueryTxt(query);
            if (answer.IsFailure)
            {
                logger.LogWarning("DMARC lookup of {Query} for {Domain} failed ({Status}: {Error}); the post is mitigated as if the policy were reject",
                    query, name, answer.Status, answer.Error);
                return new DmarcResult(name, DmarcVerdict.DnsError, target, queries, $"{query}: {answer.Status}");
            }

            var records = answer.Records.Select(DmarcRecord.Parse).Where(r => r is not null).ToList();
            if (records.Count != 1)
            {
                // None, or several (RFC 9989: all are then discarded): walk on.
                continue;
            }

            var record = records[0]!;
            var own = target.Length == name.Length;
            var policy = own ? record.Policy : record.SubdomainPolicy ?? record.Policy;
            var verdict = policy switch
            {
                DmarcPolicy.Reject => DmarcVerdict.Reject,
                DmarcPolicy.Quarantine => DmarcVerdict.Quarantine,
                _ => DmarcVerdict.None,
            };
            var tag = own || record.SubdomainPolicy is null ? "p" : "sp";
            return new DmarcResult(name, verdict, target, queries, $"{tag}={policy.ToString().ToLowerInvariant()} at _dmarc.{target}");
        }

        return new DmarcResult(name, DmarcVerdict.NoRecord, null, queries, "no DMARC record");
    }

    /// <summary>
    /// The strictest verdict over a post's From: domains (the first <see cref="MaximumDomainsPerPost"/>
    /// distinct ones), or null when there is no domain at all.
    /// </summary>
    public DmarcResult? LookupAll(IEnumerable<string> domains)
    {
        DmarcResult? strictest = null;
        foreach (var domain in domains.Distinct(StringComparer.OrdinalIgnoreCase).Take(MaximumDomainsPerPost))
        {
            var result = Lookup(domain);
            if (strictest is null || Rank(result.Verdict) > Rank(strictest.Verdict))
            {
                strictest = result;
            }

            // The post is mitigated either way; more timeouts would only hold up every list's
            // posts behind this one (a From: of several blackholed domains).
            if (result.Verdict == DmarcVerdict.DnsError)
            {
                break;
            }
        }

        return strictest;
    }

    private static int Rank(DmarcVerdict verdict) => verdict switch
    {
        DmarcVerdict.Reject => 5,
        DmarcVerdict.Quarantine => 4,
        DmarcVerdict.DnsError => 3,
        DmarcVerdict.None => 2,
        DmarcVerdict.NoRecord => 1,
        _ => 0,
    };

    /// <summary>
    /// The DNS Tree Walk's targets (RFC 9989): the domain itself; then, if it has five labels or
    /// more, its last four labels; then one label fewer each time, down to the top-level domain.
    /// </summary>
    public static IEnumerable<string> Targets(string domain)
    {
        yield return domain;
        var labels = domain.Split('.');
        var next = labels.Length >= 5 ? 4 : labels.Length - 1;
        for (var n = next; n >= 1; n--)
        {
            yield return string.Join('.', labels[^n..]);
        }
    }

    /// <summary>Lower case, no trailing dot, IDNA A-labels (RFC 5891), every label 1-63 letters, digits, '-' or '_'.</summary>
    public static bool TryNormalize(string domain, out string name, out string why)
    {
        name = domain.Trim().TrimEnd('.').ToLowerInvariant();
        why = "";
        if (name.Length == 0)
        {
            why = "no domain";
            return false;
        }

        if (!System.Text.Ascii.IsValid(name))
        {
            try
            {
                name = new System.Globalization.IdnMapping { UseStd3AsciiRules = false }.GetAscii(name);
            }
            catch (ArgumentException)
            {
                why = "not a valid internationalized domain name";
                return false;
            }
        }

        foreach (var label in name.Split('.'))
        {
            if (label.Length is 0 or > 63 || label.Any(c => c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_')))
            {
                why = "not a valid DNS name (an empty or over-long label, or characters other than letters, digits, '-' and '_')";
                return false;
            }
        }

        return true;
    }
}
