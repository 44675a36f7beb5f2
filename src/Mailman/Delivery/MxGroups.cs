// Which recipient domains share a mail server, as Postfix paces by next hop: the primary
// (lowest-preference) MX of each domain, looked up in the background and kept for its TTL on the
// daemon's clock. Pacing never waits for DNS: a domain whose MX is not known yet is paced on its
// own until it is; a lookup that fails is tried again a minute later.
using System.Collections.Concurrent;

namespace Mailman.Delivery;

/// <summary>A domain's primary MX host (null: none known: NXDOMAIN or a failed lookup) and how long the answer holds.</summary>
public readonly record struct MxAnswer(string? Host, TimeSpan Ttl);

public sealed class MxGroups(Func<string, CancellationToken, Task<MxAnswer>> lookup, TimeProvider time, int parallel = 4)
{
    /// <summary>No answer is kept longer than this, whatever its TTL.</summary>
    public static readonly TimeSpan MaximumTtl = TimeSpan.FromDays(1);

    /// <summary>How long a failed lookup is remembered before the domain is looked up again.</summary>
    public static readonly TimeSpan FailureTtl = TimeSpan.FromMinutes(1);

    /// <summary>Domains kept at most; past it, expired entries go, then everything (a cache, not a store).</summary>
    public const int MaximumEntries = 100_000;

    private readonly ConcurrentDictionary<string, (string? Host, DateTimeOffset Expires)> _known = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, byte> _looking = new(StringComparer.OrdinalIgnoreCase);
    private int _inFlight;

    /// <summary>Lookups done (answered or failed), for tests and status.</summary>
    public long Lookups => Interlocked.Read(ref _lookups);

    private long _lookups;

    /// <summary>
    /// The primary MX host of <paramref name="domain"/> when it is known now (lower case, no
    /// trailing dot); null when it is not, and then a lookup begins unless one is under way or
    /// every lookup slot is taken (the domain is asked about again with its next copy).
    /// </summary>
    public string? PrimaryMx(string domain)
    {
        if (_known.TryGetValue(domain, out var hit) && hit.Expires > time.GetUtcNow())
        {
            return hit.Host;
        }

        if (Interlocked.Increment(ref _inFlight) <= parallel && _looking.TryAdd(domain, 0))
        {
            _ = LookUp(domain);
        }
        else
        {
            Interlocked.Decrement(ref _inFlight);
        }

        return null;
    }

    private async Task LookUp(string domain)
    {
        try
        {
            MxAnswer answer;
            try
            {
                answer = await lookup(domain, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                answer = new MxAnswer(null, FailureTtl);
            }

            var now = time.GetUtcNow();
            if (_known.Count >= MaximumEntries)
            {
                foreach (var (key, value) in _known)
                {
                    if (value.Expires <= now)
                    {
                        _known.TryRemove(key, out _);
                    }
                }

                if (_known.Count >= MaximumEntries)
                {
                    _known.Clear();
                }
            }

            var ttl = answer.Ttl <= TimeSpan.Zero ? FailureTtl : answer.Ttl > MaximumTtl ? MaximumTtl : answer.Ttl;
            _known[domain] = (answer.Host?.TrimEnd('.').ToLowerInvariant(), now + ttl);
            Interlocked.Increment(ref _lookups);
        }
        finally
        {
            _looking.TryRemove(domain, out _);
            Interlocked.Decrement(ref _inFlight);
        }
    }
}
