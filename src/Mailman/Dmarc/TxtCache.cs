// A TTL cache in front of a TXT resolver: an answer is reused until its TTL runs out on the
// injected clock, so a day of posts from one domain costs one lookup per TTL. Failures are kept
// briefly so a DNS outage costs one timeout per name per minute, not one per post.
using System.Collections.Concurrent;

namespace Mailman.Dmarc;

public sealed class TxtCache(ITxtResolver inner, TimeProvider time) : ITxtResolver
{
    /// <summary>No answer is kept longer than this, whatever its TTL (as resolvers cap at a day).</summary>
    public static readonly TimeSpan MaximumTtl = TimeSpan.FromDays(1);

    /// <summary>How long a timeout or SERVFAIL is remembered.</summary>
    public static readonly TimeSpan FailureTtl = TimeSpan.FromMinutes(1);

    /// <summary>Names kept at most; past it, expired entries go, then everything (a cache, not a store).</summary>
    public const int MaximumEntries = 10_000;

    private readonly ConcurrentDictionary<string, (TxtAnswer Answer, DateTimeOffset Expires)> _entries = new(StringComparer.OrdinalIgnoreCase);

    public int Count => _entries.Count;

    public TxtAnswer QueryTxt(string name)
    {
        var now = time.GetUtcNow();
        if (_entries.TryGetValue(name, out var hit) && hit.Expires > now)
        {
            return hit.Answer;
        }

        var answer = inner.QueryTxt(name);
        var ttl = answer.IsFailure ? FailureTtl : answer.Ttl > MaximumTtl ? MaximumTtl : answer.Ttl;
        if (ttl > TimeSpan.Zero)
        {
            if (_entries.Count >= MaximumEntries)
            {
                Trim(now);
            }

            _entries[name] = (answer, now + ttl);
        }
        else
        {
            _entries.TryRemove(name, out _);
        }

        return answer;
    }

    private void Trim(DateTimeOffset now)
    {
        foreach (var (key, value) in _entries)
        {
            if (value.Expires <= now)
            {
                _entries.TryRemove(key, out _);
            }
        }

        if (_entries.Count >= MaximumEntries)
        {
            _entries.Clear();
        }
    }
}
