// The one DNS question DMARC asks: the TXT records at a name. An interface so the tree walk and
// the cache are tested against a scripted resolver and a fake clock.
namespace Mailman.Dmarc;

/// <summary>How a TXT query ended.</summary>
public enum DnsStatus
{
    /// <summary>An answer, possibly without TXT records (NODATA).</summary>
    Ok,

    /// <summary>NXDOMAIN: the name does not exist.</summary>
    NameError,

    /// <summary>SERVFAIL, REFUSED or any other error code, or the server could not be reached.</summary>
    ServerFailure,

    /// <summary>No answer within the timeout.</summary>
    Timeout,
}

/// <summary>The answer to one TXT query; each record's strings are already concatenated.</summary>
/// <param name="Ttl">How long the answer may be cached (RFC 2308 for negative answers).</param>
public sealed record TxtAnswer(DnsStatus Status, IReadOnlyList<string> Records, TimeSpan Ttl, string? Error = null)
{
    public bool IsFailure => Status is DnsStatus.ServerFailure or DnsStatus.Timeout;
}

/// <summary>Answers TXT queries.</summary>
public interface ITxtResolver
{
    /// <summary>Never throws for DNS trouble: failures come back as <see cref="DnsStatus.ServerFailure"/> or <see cref="DnsStatus.Timeout"/>.</summary>
    TxtAnswer QueryTxt(string name);
}
