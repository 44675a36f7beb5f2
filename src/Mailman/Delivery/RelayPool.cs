// The relays of the outbound pool and what the daemon knows of each across posts: up or down
// (with backoff after a refusal, logged once per episode, not per copy), copies sent and their
// recent rate. var/relays.json publishes it for `mailman status`. Timestamps are the daemon's
// TimeProvider's.
using Mailman.Delivery.Smtp;
using Microsoft.Extensions.Logging;

namespace Mailman.Delivery;

/// <summary>One relay's state in the pool. Guarded by the pool's lock.</summary>
public sealed class RelayState(Relay relay, int index)
{
    public Relay Relay { get; } = relay;

    public int Index { get; } = index;

    /// <summary>Down until this timestamp (the pool's TimeProvider); 0 when up.</summary>
    internal long DownUntil { get; set; }

    internal TimeSpan Backoff { get; set; }

    internal long DownSince { get; set; }

    internal string? LastError { get; set; }

    /// <summary>Every failure of the current down episode was a 421 in a session it took: it is there, and is waited for once.</summary>
    internal bool Answered { get; set; }

    /// <summary>421s it answered in the current down episode (every connection's).</summary>
    internal int Refusals { get; set; }

    /// <summary>Chunks handed to this relay in the current delivery (its weighted share).</summary>
    internal long Taken { get; set; }

    /// <summary>Its workers holding a chunk now.</summary>
    internal int Busy { get; set; }

    /// <summary>Sessions of ours open to it now (connected, secured, authenticated).</summary>
    internal int Open { get; set; }

    /// <summary>Connection attempts of ours to it under way now.</summary>
    internal int Connecting { get; set; }

    /// <summary>Its workers retired (for <see cref="RelayPool.RetireFor"/>): it refused their connections while others of ours were open.</summary>
    internal int Retired { get; set; }

    internal long RetiredAt { get; set; }

    /// <summary>Connections to it the current delivery uses.</summary>
    internal int Working => Relay.Connections - Retired;

    /// <summary>Its weight for the share of chunks: the configured one, in proportion to the connections it takes.</summary>
    internal double Share => Relay.Weight * (double)Working / Relay.Connections;

    /// <summary>When its last down episode ended (0: none yet).</summary>
    internal long UpSince { get; set; }

    /// <summary>Down episodes in a row that began within <see cref="RelayPool.Steady"/> of the one before ending: logged once, then counted.</summary>
    internal int Flaps { get; set; }

    /// <summary>When the first of those <see cref="Flaps"/> began (for the "steady again" line's span).</summary>
    internal long FlapsSince { get; set; }

    /// <summary>Its opportunistic STARTTLS failed and a session went on in plain text (logged once as a warning).</summary>
    internal bool WentPlain { get; set; }

    /// <summary>When it last answered a transaction (or the delivery began).</summary>
    internal long LastReply { get; set; }

    public long Sent { get; internal set; }

    // Copies in the current one-second window and the rate of the last full window.
    internal long WindowStart { get; set; }

    internal long WindowCount { get; set; }

    public double Rate { get; internal set; }

    public bool IsDown => DownUntil != 0;

    /// <summary>Our connections' open runs of refusals alike at RCPT (see <see cref="ConnectionRefusals"/>).</summary>
    internal List<RefusalRun> Runs { get; } = [];

    /// <summary>
    /// It answered more 421s in this episode than it has connections: not one stray refusal but
    /// every transaction (review 32: a relay answering 421 to all had every copy of the post
    /// tried within its first backoff). Its workers stop; with no other relay up, the rest waits in retry.
    /// </summary>
    internal bool RefusesAll => Answered && Refusals > Working;
}

/// <summary>
/// Recipients one connection of ours to a relay had refused at RCPT one after another, with one
/// reply (the addresses in it aside) and nothing accepted between. Guarded by the pool's lock.
/// </summary>
public sealed class RefusalRun
{
    internal RefusalRun(string reply) => Reply = reply;

    internal string Reply { get; }

    internal int Count { get; set; } = 1;

    /// <summary>The most refusals alike the relay's open runs held together while this one was open.</summary>
    internal int Peak { get; set; } = 1;
}

/// <summary>
/// One connection's runs of refusals alike at RCPT on its relay: the run it has open, among the
/// relay's (<see cref="RelayState.Runs"/>). Guarded by the pool's lock.
/// </summary>
public sealed class ConnectionRefusals(RelayState relay)
{
    // The connection's open run: nothing accepted on it since (null: none).
    private RefusalRun? _run;

    /// <summary>
    /// The connection's transaction delivered nothing and had recipients refused at RCPT with
    /// <paramref name="reply"/> (normalized): the run it joins or begins, whose
    /// <see cref="RefusalRun.Peak"/> is raised with every open run of that reply on the relay.
    /// </summary>
    internal RefusalRun Refused(string reply)
    {
        if (_run is { } current && current.Reply == reply)
        {
            current.Count++;
        }
        else
        {
            End();
            _run = new RefusalRun(reply);
            relay.Runs.Add(_run);
        }

        var together = 0;
        foreach (var open in relay.Runs)
        {
            together += open.Reply == reply ? open.Count : 0;
        }

        foreach (var open in relay.Runs)
        {
            if (open.Reply == reply)
            {
                open.Peak = Math.Max(open.Peak, together);
            }
        }

        return _run;
    }

    /// <summary>The connection's run is over (a copy accepted, its worker done).</summary>
    internal void End()
    {
        if (_run is not null)
        {
            relay.Runs.Remove(_run);
        }

        _run = null;
    }
}

/// <summary>The pool: which relay takes the next chunk, and who is down.</summary>
public sealed class RelayPool
{
    internal static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(2);

    /// <summary>Up this long after a down episode, a relay is steady again: its next episode is logged as new.</summary>
    internal static readonly TimeSpan Steady = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(60);

    /// <summary>How long a relay that refused connections beyond some number keeps that many fewer.</summary>
    internal static readonly TimeSpan RetireFor = TimeSpan.FromMinutes(10);

    /// <summary>A relay whose every connection is busy and that answered nothing for this long holds no one back (it stalls).</summary>
    internal static readonly TimeSpan StallAfter = TimeSpan.FromSeconds(2);
    private readonly ILogger? _log;
    private readonly Action<IReadOnlyList<RelayStatus>>? _publish;
    private readonly long _second;
    private long _published;

    public RelayPool(IReadOnlyList<Relay> relays, ILogger? log = null, Action<IReadOnlyList<RelayStatus>>? publish = null, TimeProvider? time = null)
    {
        Time = time ?? TimeProvider.System;
        _second = Time.TimestampFrequency;
        Relays = [.. relays.Select((r, i) => new RelayState(r, i))];
        _log = log;
        _publish = publish;
    }

    public IReadOnlyList<RelayState> Relays { get; }

    /// <summary>The clock of every decision here (backoff, rates); PostDelivery's scheduler reads it too.</summary>
    public TimeProvider Time { get; }

    /// <summary>Lock for every RelayState; PostDelivery's scheduler takes it too.</summary>
    internal object Gate { get; } = new();

    /// <summary>
    /// An opportunistic relay's STARTTLS failed and the session went on in plain text, as
    /// Postfix's "may" does: a warning the first time, then at debug level (every connection tries TLS again).
    /// </summary>
    internal void PlainFallback(RelayState r, string why)
    {
        bool first;
        lock (Gate)
        {
            first = !r.WentPlain;
            r.WentPlain = true;
        }

        _log?.Log(first ? LogLevel.Warning : LogLevel.Debug,
            "Relay {Relay}: STARTTLS, its handshake or the EHLO after it failed ({Error}); Security is opportunistic and no password is sent, so copies go over plain text, as Postfix's may does (each new connection tries TLS again; starttls would refuse the relay instead)",
            r.Relay.Name, why);
    }

    /// <summary>Under the gate: forgets last delivery's shares.</summary>
    internal void StartDelivery()
    {
        var now = Time.GetTimestamp();
        foreach (var r in Relays)
        {
            r.Taken = 0;
            r.Busy = 0;
            if (r.Retired > 0 && now - r.RetiredAt >= (long)(RetireFor.TotalSeconds * _second))
            {
                r.Retired = 0; // try the configured connections again
            }
            r.LastReply = now;
            r.WindowStart = now; // the first window's rate counts from the delivery's start
            r.WindowCount = 0;
        }
    }

    /// <summary>Under the gate: whether <paramref name="r"/> may be tried now (up, or its backoff is over).</summary>
    internal static bool Usable(RelayState r, long now) => r.DownUntil == 0 || now >= r.DownUntil;

    /// <summary>Under the gate: every relay is down and none of them may be tried yet.</summary>
    internal bool AllDown(long now) => Relays.All(r => !Usable(r, now));

    /// <summary>
    /// Under the gate, when every relay is down: whether each of them only answered a 421 in a
    /// session (it took the connection) and is in its first backoff. The delivery waits for the
    /// first to be tried again instead of sending the rest to retry (review 31: one stray 421 on
    /// a sole relay's last transaction of a chunk sent 476 of 500 copies to retry). A second
    /// 421 in a row, a refused connection or a stall ends it as before.
    /// </summary>
    internal bool WorthWaiting() => Relays.All(r => r.Answered && r.Backoff == FirstBackoff && !r.RefusesAll);

    /// <summary>Under the gate: when the first relay that is down may be tried again.</summary>
    internal long NextTry() => Relays.Min(r => r.DownUntil);

    /// <summary>
    /// Under the gate: whether <paramref name="r"/> is within its weighted share: no usable relay
    /// is more than one round of the pool behind it. A relay that stalls (every connection busy,
    /// no reply for <see cref="StallAfter"/>) holds no one back: its share goes to the others.
    /// </summary>
    internal bool WithinShare(RelayState r, long now)
    {
        if (Relays.Count == 1)
        {
            return true;
        }

        var slack = (double)Relays.Sum(x => x.Working) / Relays.Sum(x => x.Share);
        var mine = r.Taken / r.Share;
        var stall = (long)(StallAfter.TotalSeconds * _second);
        foreach (var q in Relays)
        {
            if (q != r && Usable(q, now) && !(q.Busy >= q.Working && now - q.LastReply > stall)
                && mine > q.Taken / q.Share + slack)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Under the gate: whether a new connection to <paramref name="r"/> that the server answered
    /// with 421 (<paramref name="busy"/>) while other sessions of ours to it are open is its limit
    /// on connections from us (Postfix's anvil: "421 4.7.0 too many connections"), not the relay
    /// being down. Its last worker never counts as over the limit: that one marks it down.
    /// </summary>
    internal static bool AtLimit(RelayState r, bool busy) => busy && r.Open > 0 && r.Working > 1;

    /// <summary>
    /// Under the gate: one worker of <paramref name="r"/> stops for this delivery and the next
    /// ones for <see cref="RetireFor"/>, and its work goes to the others: the way Postfix lowers a
    /// destination's concurrency, instead of marking it dead, while other sessions to it succeed.
    /// </summary>
    internal void Retire(RelayState r, string reason, long now)
    {
        r.Retired++;
        r.RetiredAt = now;
        _log?.LogWarning("Relay {Relay} refused a connection while {Open} of ours were open ({Reason}): {Working} connections to it for {Minutes:F0} min",
            r.Relay.Name, r.Open, reason, r.Working, RetireFor.TotalMinutes);
        PublishLocked(force: true);
    }

    /// <summary>
    /// Ends the backoff of every relay that is down: each is tried at the next connection (a
    /// failed try doubles its backoff, as after one that ran out). For `queue flush`, the
    /// operator's word that the relays are back (review 137: a flush within a relay's backoff
    /// found every relay down untried, deferred the post again and doubled its retry delay).
    /// </summary>
    /// <returns>The relays whose backoff it ended.</returns>
    public IReadOnlyList<string> TryAgainNow()
    {
        lock (Gate)
        {
            var now = Time.GetTimestamp();
            var ended = new List<string>();
            foreach (var r in Relays)
            {
                if (r.DownUntil != 0 && now < r.DownUntil)
                {
                    r.DownUntil = now;
                    ended.Add(r.Relay.Name);
                }
            }

            return ended;
        }
    }

    /// <summary>Under the gate: the relay refused; a new episode is logged once, a failed try after the backoff doubles it.</summary>
    /// <param name="answered">A 421 in a session the relay took (not a refused or silent connection, not a stall).</param>
    internal void MarkDown(RelayState r, string reason, long now, bool answered = false)
    {
        if (r.DownUntil != 0 && now < r.DownUntil)
        {
            // Another connection of ours, tried before the relay was marked down, failing too:
            // the same try, not a new one (eight refusals at once would take the backoff to 60 s).
            r.LastError = reason;
            r.Answered &= answered;
            r.Refusals += answered ? 1 : 0;
            return;
        }

        var first = r.DownUntil == 0;
        r.Answered = first ? answered : r.Answered && answered;
        r.Refusals = (first ? 0 : r.Refusals) + (answered ? 1 : 0);
        r.Backoff = first ? FirstBackoff : TimeSpan.FromTicks(Math.Min(r.Backoff.Ticks * 2, MaxBackoff.Ticks));
        r.DownUntil = now + (long)(r.Backoff.TotalSeconds * _second);
        r.LastError = reason;
        if (first)
        {
            r.DownSince = now;

            // Review 59: a relay that stalls now and then (one reply in ten late) was logged down
            // and up again every few seconds. Down again within a minute of coming back, it is
            // unsteady: said once, then counted until it has stayed up a minute.
            var flap = r.UpSince != 0 && now - r.UpSince < (long)(Steady.TotalSeconds * _second);
            if (!flap)
            {
                r.Flaps = 0;
            }

            if (flap && r.Flaps++ > 0)
            {
                _log?.LogDebug("Relay {Relay} is down again: {Error} ({Flaps} times since it became unsteady)", r.Relay.Name, reason, r.Flaps);
            }
            else if (flap)
            {
                r.FlapsSince = now;
                _log?.LogWarning("Relay {Relay} is down again {Seconds:F0}s after it came back: {Error}; it is unsteady: until it stays up a minute, its downs and ups are counted, not logged one by one",
                    r.Relay.Name, (double)(now - r.UpSince) / _second, reason);
            }
            else
            {
                _log?.LogWarning("Relay {Relay} is down: {Error}; {Where}, and it is tried again in {Backoff:F0}s with backoff",
                    r.Relay.Name, reason, Relays.Count > 1 ? "its copies go to the other relays" : "the copies wait for it (or in retry)", r.Backoff.TotalSeconds);
            }
        }
        else
        {
            _log?.LogDebug("Relay {Relay} still down: {Error}; next try in {Backoff:F0}s", r.Relay.Name, reason, r.Backoff.TotalSeconds);
        }

        PublishLocked(force: true);
    }

    /// <summary>
    /// Under the gate: a transaction begun at <paramref name="started"/> went through
    /// <paramref name="r"/>. It ends a down episode only when it began after the episode did: a
    /// reply read late (pipelined) to a transaction sent before the refusal says nothing new.
    /// </summary>
    internal void MarkUp(RelayState r, int copies, long started, long now)
    {
        if (r.DownUntil != 0 && started >= r.DownSince)
        {
            _log?.Log(r.Flaps > 0 ? LogLevel.Debug : LogLevel.Information, "Relay {Relay} is up again after {Seconds:F0}s down", r.Relay.Name, (double)(now - r.DownSince) / _second);
            r.UpSince = now;
            r.DownUntil = 0;
            r.Backoff = TimeSpan.Zero;
            r.LastError = null;
            r.Refusals = 0;
        }
        else if (r.Flaps > 0 && r.DownUntil == 0 && now - r.UpSince >= (long)(Steady.TotalSeconds * _second))
        {
            _log?.LogInformation("Relay {Relay} is steady again: up a minute after going down {Flaps} times in {Seconds:F0}s", r.Relay.Name, r.Flaps, (double)(r.UpSince - r.FlapsSince) / _second);
            r.Flaps = 0;
        }

        r.Sent += copies;
        r.LastReply = now;
        if (now - r.WindowStart >= _second)
        {
            r.Rate = r.WindowStart == 0 ? 0 : r.WindowCount * (double)_second / (now - r.WindowStart);
            r.WindowStart = now;
            r.WindowCount = 0;
        }

        r.WindowCount += copies;
        PublishLocked(force: false);
    }

    /// <summary>
    /// Refusals alike that are the relay's, not the members' (review 99): a relay that begins or
    /// stops refusing everyone alike (a broken recipient map answering 5.1.1 to all) does so in
    /// the middle of chunks, whose whole-chunk rule (<see cref="Bounces.SmtpRefusals.RefusedAlike"/>)
    /// sees a part only. A chunk's worth of recipients (25) refused alike at once on our
    /// connections to it, each connection's in a row with nothing accepted on it between, is past
    /// what a list of real addresses gives: dead members imported together, a run of dead
    /// domains or one ending each connection's chunk are fewer (review 101: at five, all three
    /// escaped scoring).
    /// </summary>
    internal const int RunLength = 25;

    /// <summary>What `status` shows, now.</summary>
    public IReadOnlyList<RelayStatus> Snapshot()
    {
        lock (Gate)
        {
            return SnapshotLocked();
        }
    }

    /// <summary>Publishes the state (rates decay to 0 when a delivery ends).</summary>
    public void Idle()
    {
        lock (Gate)
        {
            foreach (var r in Relays)
            {
                r.Rate = 0;
                r.WindowStart = 0;
                r.WindowCount = 0;
            }

            PublishLocked(force: true);
        }
    }

    // The window under way once it has run a quarter of a second, else the last full one: a
    // delivery's first second (or a whole short one) showed 0 msg/s while copies went (review 53).
    private double RateAt(RelayState r, long now)
        => r.WindowStart != 0 && r.WindowCount > 0 && now - r.WindowStart >= _second / 4
            ? r.WindowCount * (double)_second / (now - r.WindowStart)
            : r.Rate;

    private List<RelayStatus> SnapshotLocked()
    {
        var now = Time.GetTimestamp();
        return [.. Relays.Select(r => new RelayStatus(
            r.Relay.Name,
            r.Relay.Security.ToString().ToLowerInvariant(),
            r.IsDown ? "down" : "up",
            r.Working,
            r.Relay.Weight,
            r.Sent,
            Math.Round(RateAt(r, now), 1),
            r.IsDown ? Math.Max(0, (double)(r.DownUntil - now) / _second) : null,
            r.LastError))];
    }

    private void PublishLocked(bool force)
    {
        if (_publish is null)
        {
            return;
        }

        var now = Time.GetTimestamp();
        if (!force && now - _published < _second)
        {
            return;
        }

        _published = now;
        _publish(SnapshotLocked());
    }
}

/// <summary>One relay in `mailman status`.</summary>
public sealed record RelayStatus(string Relay, string Security, string State, int Connections, int Weight, long Sent, double Rate, double? RetryInSeconds, string? LastError);
