// Per-destination pacing, as Postfix paces a destination: at most MaxConnections connections
// with a transaction in flight to it, at most MaxPerMinute copies a minute (a token bucket), and an adaptive slow-down
// when it answers 421 or 4.7.x: its rate and concurrency are halved, then recover by a tenth a
// minute. A destination is a recipient domain, several domains configured as one, or (with
// Mailman:Smtp:GroupByMx) every domain whose primary MX is the same host, as soon as MxGroups
// knows it; a configured destination may claim MX hosts by suffix (MxHosts: google.com).
// State lives as long as the daemon: a provider's throttle outlasts a post. Time is the daemon's
// TimeProvider (its timestamps), so tests can move it.
using Mailman.Instance;
using Microsoft.Extensions.Logging;

namespace Mailman.Delivery;

/// <summary>One destination's limits and state. Guarded by the pacer's lock.</summary>
public sealed class Destination
{
    internal Destination(string name, DestinationOptions options, bool configured)
    {
        Name = name;
        Configured = configured;
        MaxConnections = options.MaxConnections;
        MaxPerMinute = options.MaxPerMinute;
        Rate = options.MaxPerMinute;
        Concurrency = options.MaxConnections;
    }

    public string Name { get; }

    /// <summary>Named in Destinations: its recipients get chunks of their own.</summary>
    public bool Configured { get; }

    public int? MaxConnections { get; }

    public int? MaxPerMinute { get; }

    /// <summary>The rate in force (copies a minute), null: unlimited.</summary>
    public double? Rate { get; internal set; }

    /// <summary>The concurrency in force, null: unlimited.</summary>
    public int? Concurrency { get; internal set; }

    internal int InFlight { get; set; }

    internal double Tokens { get; set; } = 1;

    internal long Refilled { get; set; }

    internal long LastThrottle { get; set; }

    internal long LastRecovery { get; set; }

    // Copies sent since WindowStart: the observed rate when an unlimited destination first throttles.
    internal long WindowStart { get; set; }

    internal long WindowCount { get; set; }

    public long Throttles { get; internal set; }
}

public sealed class Pacer
{
    private readonly TimeProvider _time;
    private readonly long _second;
    private readonly Dictionary<string, Destination> _byDomain = new(StringComparer.OrdinalIgnoreCase);
    private readonly DestinationOptions _defaults;
    private readonly ILogger? _log;
    private readonly object _gate = new();
    private readonly MxGroups? _mx;

    // With MX grouping: one destination per primary MX host, domains paced alone until their MX
    // is known, and the configured destinations' MX host suffixes.
    private readonly Dictionary<string, Destination> _byMx = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, Destination> _unresolved = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<(string Suffix, Destination Destination)> _mxSuffixes = [];

    public Pacer(SmtpOptions options, ILogger? log = null, TimeProvider? time = null, MxGroups? mx = null)
    {
        _time = time ?? TimeProvider.System;
        _second = _time.TimestampFrequency;
        _defaults = options.DestinationDefaults;
        _log = log;
        _mx = mx;
        foreach (var (name, d) in options.Destinations.OrderBy(d => d.Key, StringComparer.OrdinalIgnoreCase))
        {
            var destination = new Destination(SmtpOptions.DestinationDomain(name), d, configured: true);
            Configured.Add(destination);
            foreach (var domain in d.Domains.Prepend(name))
            {
                _byDomain[SmtpOptions.DestinationDomain(domain)] = destination;
            }

            foreach (var host in d.MxHosts)
            {
                _mxSuffixes.Add((SmtpOptions.DestinationDomain(host), destination));
            }
        }

        // The marker only where it changes how recipients match (an A-label key): an ASCII-only
        // grouping stays in the form an older build reads the same way.
        var marker = _byDomain.Keys.Any(k => k.Contains("xn--", StringComparison.OrdinalIgnoreCase)) ? ALabels + ";" : "";
        Grouping = Configured.Count == 0 ? "" : marker + string.Join(';', Configured.Select(d => d.Name + "=" + string.Join(',', _byDomain.Where(p => p.Value == d).Select(p => p.Key).Order(StringComparer.Ordinal))));
    }

    /// <summary>The configured destinations, in a stable order: each gets its own chunks.</summary>
    public List<Destination> Configured { get; } = [];

    /// <summary>
    /// The grouping as the checkpoint records it: "name=domain,domain;..." (empty: none). Only the
    /// domains named in the configuration: domains that join a destination by their MX travel in
    /// the mixed chunks and share its pace.
    /// </summary>
    public string Grouping { get; }

    /// <summary>
    /// The first element of a grouping whose domains are keyed as <see cref="SmtpOptions.DestinationDomain"/>
    /// keys them (internationalized names as A-labels), a recipient's domain by
    /// <see cref="SmtpOptions.RecipientDomainKey"/>; written only when a key is an A-label. A
    /// grouping without it (recorded before, or all ASCII) matches a recipient's domain as
    /// written, which for ASCII keys is the same: a resumed delivery must cut as it started.
    /// </summary>
    public const string ALabels = "*a-labels";

    /// <summary>The destination of a recipient domain.</summary>
    public Destination Of(string domain)
    {
        domain = SmtpOptions.RecipientDomainKey(domain);
        lock (_gate)
        {
            if (_byDomain.TryGetValue(domain, out var d))
            {
                return d;
            }

            if (_mx?.PrimaryMx(domain) is { } host)
            {
                if (!_byMx.TryGetValue(host, out d))
                {
                    d = _mxSuffixes.Find(s => host == s.Suffix || host.EndsWith("." + s.Suffix, StringComparison.Ordinal)).Destination
                        ?? new Destination(host, _defaults, configured: false);
                    _byMx[host] = d;
                }

                _unresolved.Remove(domain);
                _byDomain[domain] = d;
                return d;
            }

            // Paced on its own: remembered (its throttles must outlast a post; a list of a
            // million domains costs a small object each), with MX grouping until its MX is known.
            var alone = _mx is null ? _byDomain : _unresolved;
            if (!alone.TryGetValue(domain, out d))
            {
                d = new Destination(domain.ToLowerInvariant(), _defaults, configured: false);
                alone[domain] = d;
            }

            return d;
        }
    }

    /// <summary>
    /// Takes a slot and a token for one transaction to <paramref name="d"/>, or says how long
    /// until one could be had (<paramref name="wait"/>). Release the slot with <see cref="Done"/>.
    /// </summary>
    /// <param name="slotHeld">The caller's connection already holds a slot of <paramref name="d"/> (its
    /// pipelined transaction before this one): only a token is taken. A destination's concurrency
    /// counts connections, as Postfix's does, not the two transactions a pipelined one overlaps.</param>
    public bool TryAcquire(Destination d, out TimeSpan wait, bool slotHeld = false)
    {
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            Recover(d, now);
            wait = TimeSpan.Zero;
            if (!slotHeld && d.Concurrency is { } max && d.InFlight >= max)
            {
                wait = TimeSpan.FromMilliseconds(20);
                return false;
            }

            if (d.Rate is { } rate)
            {
                var perTick = rate / 60.0 / _second;
                var burst = Math.Max(1, rate / 60.0);
                d.Tokens = Math.Min(burst, d.Tokens + (now - d.Refilled) * perTick);
                d.Refilled = now;
                if (d.Tokens < 1)
                {
                    wait = TimeSpan.FromSeconds((1 - d.Tokens) / (rate / 60.0));
                    return false;
                }

                d.Tokens -= 1;
            }

            if (!slotHeld)
            {
                d.InFlight++;
            }

            return true;
        }
    }

    /// <summary>Why a transaction to <paramref name="d"/> has to wait (a deferral's reason): its own limit, or its slow-down.</summary>
    public string Why(Destination d)
    {
        lock (_gate)
        {
            var slowed = d.LastThrottle != 0 ? "slowed down by its 421 or 4.7.x, " : "";
            return d.Concurrency is { } c && d.InFlight >= c
                ? $"paced: {d.Name} {slowed}at {c} connections"
                : $"paced: {d.Name} {slowed}at {d.Rate?.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)} copies a minute";
        }
    }

    /// <summary>Whether another worker may take a chunk of <paramref name="d"/> while <paramref name="holders"/> hold one.</summary>
    public bool MayHold(Destination d, int holders)
    {
        lock (_gate)
        {
            return d.Concurrency is not { } c || holders < c;
        }
    }

    /// <summary>Whether a transaction to <paramref name="d"/> could start now (no slot taken).</summary>
    public bool Ready(Destination d)
    {
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            Recover(d, now);
            if (d.Concurrency is { } max && d.InFlight >= max)
            {
                return false;
            }

            return d.Rate is not { } rate || Math.Min(Math.Max(1, rate / 60.0), d.Tokens + (now - d.Refilled) * rate / 60.0 / _second) >= 1;
        }
    }

    /// <summary>A transaction to <paramref name="d"/> ended; <paramref name="throttled"/>: it answered 421 or 4.7.x.</summary>
    /// <param name="release">False when the next transaction on the same connection took its slot over.</param>
    public void Done(Destination d, int copies, bool throttled, bool release = true)
    {
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            if (release)
            {
                d.InFlight--;
            }

            if (d.WindowStart == 0 || now - d.WindowStart > 60 * _second)
            {
                d.WindowStart = now;
                d.WindowCount = 0;
            }

            d.WindowCount += copies;
            if (!throttled || now - d.LastThrottle < _second)
            {
                return; // one halving per second, however many connections hear the 421 at once
            }

            d.LastThrottle = now;
            d.LastRecovery = now;
            d.Throttles++;
            // The rate it was being sent at, halved; when nothing had gone through yet there is
            // no rate to halve (a 421 to the first copy would otherwise mean one a minute): only
            // the concurrency is halved.
            double? observed = d.WindowCount > 0 ? d.WindowCount * 60.0 * _second / Math.Max(_second, now - d.WindowStart) : null;
            d.Rate = (d.Rate ?? observed) is { } current ? Math.Max(1, current / 2) : null;
            d.Concurrency = Math.Max(1, (d.Concurrency ?? Math.Max(1, d.InFlight + 1)) / 2);
            d.Tokens = Math.Min(d.Tokens, 1);
            _log?.LogWarning("Destination {Destination} asks us to slow down (421 or 4.7.x): now {Rate} on {Concurrency} connections, recovering a tenth a minute",
                d.Name, d.Rate is { } r ? r.ToString("F0", System.Globalization.CultureInfo.InvariantCulture) + " copies a minute" : "no rate (none sent yet this minute to halve)", d.Concurrency);
        }
    }

    // A tenth more per quiet minute, back to the configured limits (or none).
    private void Recover(Destination d, long now)
    {
        if (d.LastThrottle == 0 || now - d.LastRecovery < 60 * _second)
        {
            return;
        }

        var minutes = (now - d.LastRecovery) / (60 * _second);
        d.LastRecovery += minutes * 60 * _second;
        for (var i = 0; i < minutes; i++)
        {
            if (d.Rate is { } rate)
            {
                d.Rate = d.MaxPerMinute is { } max ? Math.Min(max, rate * 1.1) : rate * 1.1;
            }

            if (d.Concurrency is { } c)
            {
                d.Concurrency = d.MaxConnections is { } maxC ? Math.Min(maxC, c + 1) : c + 1;
            }
        }

        // After ten quiet minutes the configured limits (or none) are in force again.
        if (now - d.LastThrottle > 600 * _second)
        {
            d.Rate = d.MaxPerMinute;
            d.Concurrency = d.MaxConnections;
        }

        if (d.Rate == d.MaxPerMinute && d.Concurrency == d.MaxConnections)
        {
            d.LastThrottle = 0;
        }
    }
}
