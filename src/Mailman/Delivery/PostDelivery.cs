// Delivers one prepared post to a stream of recipients over the relay pool: each relay's
// connections on threads of their own with synchronous sends (cheaper than SendAsync per copy).
// The stream is cut into fixed chunks, a configured destination's recipients into chunks of
// their own; a worker takes a whole chunk and records it when done, so a checkpoint can record
// progress and a resumed delivery skips what is done. A worker whose relay goes down, or whose
// destination must wait, records what it did and hands the rest of its chunk back: one worker
// holds a chunk at a time, so only the chunks in flight are ever unrecorded. Personalized posts
// go one recipient per transaction with a VERP sender; others in batches of MaxRecipients
// grouped by domain. It reports what became of every recipient; it never touches a queue.
using System.Diagnostics;
using Mailman.Delivery.Smtp;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Queues;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Delivery;

public enum DeliveryStop
{
    /// <summary>Every recipient was attempted.</summary>
    Completed,

    /// <summary>The host is stopping: progress is recorded, the rest is for the next run.</summary>
    Shutdown,

    /// <summary>No relay could be reached: recipients not yet attempted wait in retry.</summary>
    ServerUnreachable,

    /// <summary>An unexpected error on a delivery thread (a bug): progress is recorded, the entry is shunted with its checkpoint.</summary>
    Failed,

    /// <summary>
    /// Past the slice, only paced destinations' work was left while another post waited, or
    /// notices and small posts waited behind this one (<see cref="DeliveryReport.ForSmallEntries"/>):
    /// progress is recorded, the rest is for a later run (as after a shutdown).
    /// </summary>
    Yielded,
}

/// <summary>A recipient refused with a 5xx (a permanent failure: not retried), and where in the transaction.</summary>
/// <param name="AtRecipient">In answer to its RCPT TO, or an address the client cannot write; false: at MAIL FROM or after DATA.</param>
/// <param name="Transaction">The transaction's index in its delivery chunk.</param>
/// <param name="TransactionSize">The recipients of that transaction the server answered for good (TransactionResult.Settle: not those deferred without being accepted).</param>
/// <param name="Ours">Refused on our side before it was sent (an address the relay cannot be given), not by the relay.</param>
/// <param name="Run">The relay's run of alike refusals it is part of (at RCPT in a transaction that delivered nothing).</param>
public readonly record struct Refusal(Recipient Recipient, int Status, string Response, bool AtRecipient, int Transaction = 0, int TransactionSize = 1, bool Ours = false, RefusalRun? Run = null)
{
    internal Bounces.SmtpRefusal ToSmtpRefusal() => new(Recipient.Address, Status, Response, AtRecipient, Transaction, TransactionSize, Ours);
}

/// <summary>Where a delivery records and finds its progress (a checkpoint, or nothing).</summary>
public interface IDeliveryProgress
{
    /// <summary>How many transactions of <paramref name="chunk"/> were done in an earlier run.</summary>
    int TransactionsDone(long chunk);

    /// <summary>
    /// The first <paramref name="transactions"/> transactions of <paramref name="chunk"/> are done:
    /// <paramref name="delivered"/> recipients accepted in this run, <paramref name="deferred"/> and
    /// <paramref name="bounced"/> their temporary and permanent failures, <paramref name="unanswered"/>
    /// of the deferred never answered for good (the refused-alike rule leaves them out).
    /// Called from delivery threads; must be durable on return and thread-safe.
    /// </summary>
    void Record(long chunk, int transactions, long delivered, IReadOnlyList<(Recipient Recipient, int Status, string Response)> deferred, IReadOnlyList<Refusal> bounced, long unanswered);

    /// <summary>
    /// <paramref name="recipients"/> more were found done in an earlier run (their chunks, or the
    /// first transactions of one, recorded), as the recipients are read: what a resumed delivery
    /// has behind it.
    /// </summary>
    void Skipped(long recipients)
    {
    }

    /// <summary>The post's Message-Id and queue entry, for the delivery's own log lines (null when there are none).</summary>
    (string? MessageId, string? Entry) Post => (null, null);
}

/// <summary>What became of a post's recipients in this run. Dispose after reading <see cref="Remaining"/>.</summary>
public sealed class DeliveryReport : IDisposable
{
    private Func<IEnumerable<Recipient>>? _rest;
    private Action? _dispose;

    /// <summary>Yielded for the notices and small posts waiting behind it, not for pacing.</summary>
    public bool ForSmallEntries { get; set; }

    public long Delivered { get; set; }

    public long Deferred { get; set; }

    public long Bounced { get; set; }

    /// <summary>Recipients taken from the stream but not attempted.</summary>
    public List<Recipient> NotAttempted { get; } = [];

    /// <summary>
    /// Every recipient not attempted (after a stop): those already taken, then the rest of the
    /// stream, read lazily so a million-member remainder is never held in memory.
    /// </summary>
    public IEnumerable<Recipient> Remaining
    {
        get
        {
            foreach (var r in NotAttempted)
            {
                yield return r;
            }

            if (_rest is not null)
            {
                foreach (var r in _rest())
                {
                    yield return r;
                }
            }
        }
    }

    public DeliveryStop Stop { get; set; }

    /// <summary>The unexpected error that stopped the delivery (<see cref="DeliveryStop.Failed"/>).</summary>
    public Exception? Failure { get; set; }

    internal Timer? AbortTimer { get; set; }

    public string? StopReason { get; set; }

    public TimeSpan Elapsed { get; set; }

    public long Transactions { get; set; }

    internal void KeepRest(Func<IEnumerable<Recipient>> rest, Action dispose)
    {
        _rest = rest;
        _dispose = dispose;
    }

    public void Dispose() => _dispose?.Invoke();
}

/// <summary>A numbered slice of the recipient stream, already cut into its transactions.</summary>
/// <param name="Destination">The configured destination all its recipients belong to, or null for a mixed chunk.</param>
public sealed record Chunk(long Index, List<Recipient[]> Transactions, Destination? Destination = null)
{
    /// <summary>Transactions done in this run before the chunk was handed back (recorded, or not recorded when checkpoints are off).</summary>
    internal int Start { get; set; }

    /// <summary>Under the gate: how many times another worker took it over while the one holding it was still opening its connection, before anything of it was sent.</summary>
    internal int Generation { get; set; }
}

public sealed class PostDelivery
{
    // Chunk indexes: the group (0: mixed; g: the g-th configured destination) in the high bits.
    private const int GroupShift = 40;

    /// <summary>A chunk's index for a log line: "3" in the mixed group, "2/3" for the third chunk of configured destination group 2.</summary>
    public static string ChunkName(long index)
        => (index >> GroupShift) is var g and > 0
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{g}/{index & ((1L << GroupShift) - 1)}")
            : index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    // How long a mixed chunk's transaction waits for its domain's pacing before its recipients
    // are deferred to retry, and a destination's chunk before it is handed back.
    private static readonly TimeSpan MixedWait = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ChunkWait = TimeSpan.FromMilliseconds(250);

    private readonly SmtpOptions options;
    private readonly ILogger? _log;

    public PostDelivery(SmtpOptions options, ILogger? log = null, Action<IReadOnlyList<RelayStatus>>? publish = null, TimeProvider? time = null, MxGroups? mx = null)
        : this(options, options.ResolvedRelays(), log, publish, time, mx)
    {
    }

    /// <param name="time">The clock of relay backoff and destination pacing (the daemon's; a test's fake one).</param>
    /// <param name="mx">With Mailman:Smtp:GroupByMx: the MX lookups pacing groups domains by.</param>
    public PostDelivery(SmtpOptions options, IReadOnlyList<Relay> relays, ILogger? log = null, Action<IReadOnlyList<RelayStatus>>? publish = null, TimeProvider? time = null, MxGroups? mx = null)
    {
        this.options = options;
        _log = log;
        Pool = new RelayPool(relays, log, publish, time);
        Pacer = new Pacer(options, log, time, mx);
    }

    public RelayPool Pool { get; }

    public Pacer Pacer { get; }

    /// <summary>Recipients per checkpoint chunk for a new delivery: at least MaxRecipients for batched posts.</summary>
    public int ChunkSize(bool personalized) => personalized ? options.CheckpointRecipients : Math.Max(options.CheckpointRecipients, options.MaxRecipients);

    /// <summary>
    /// Recipients of a batched post held in partial batches of their domain for a new delivery
    /// of chunks of <paramref name="chunkSize"/>: fifty chunks' worth. A window of one chunk
    /// (deliveries recorded before it was recorded) closed each domain's batch after two to four
    /// recipients where members' domains alternate (review 71: 2,557 transactions for 10,000
    /// members of 50 domains, where 100 carry them).
    /// </summary>
    public static int BatchWindow(int chunkSize) => (int)Math.Min(int.MaxValue / 2, 50L * chunkSize);

    /// <summary>The destination grouping a new delivery is cut with (recorded in its checkpoint).</summary>
    public string Grouping => Pacer.Grouping;

    /// <summary>
    /// Delivers <paramref name="post"/>, cut into chunks of <paramref name="chunkSize"/> and
    /// grouped by <paramref name="grouping"/> (as recorded when the delivery started: a resumed
    /// delivery must cut the same way). Stops taking new transactions when <paramref name="stop"/>
    /// fires, and <paramref name="abortAfter"/> later closes the connections, so a stalled server
    /// cannot hold the shutdown past its timeout. Never throws for what happens on a delivery
    /// thread: an unexpected error stops the delivery and is reported in <see cref="DeliveryReport.Failure"/>.
    /// </summary>
    /// <param name="envelopeSender">MAIL FROM for a post that is not personalized; null: the list's bounces address.</param>
    /// <param name="yieldTo">
    /// Whether another post waits (asked at most once a second): once <paramref name="slice"/> has
    /// passed and every chunk left waits for its destination's pacing, the delivery stops as
    /// <see cref="DeliveryStop.Yielded"/>. Null: never (a delivery without a durable checkpoint).
    /// </param>
    /// <param name="smallWaiting">
    /// Whether notices or small posts wait behind this delivery (asked at most once a second,
    /// under the delivery's lock): once <paramref name="slice"/> has passed, the delivery stops as
    /// <see cref="DeliveryStop.Yielded"/> for them whatever its chunks wait for. Null: never.
    /// </param>
    public DeliveryReport Deliver(
        PreparedPost post, ListName list, bool personalized, IEnumerable<Recipient> recipients, IDeliveryProgress progress, CancellationToken stop,
        string? envelopeSender = null, int? chunkSize = null, TimeSpan? abortAfter = null, Action<string?>? onPause = null, string? grouping = null, int? maxRecipients = null,
        Func<bool>? yieldTo = null, TimeSpan slice = default, int? batchWindow = null, Func<bool>? smallWaiting = null)
    {
        var perTransaction = maxRecipients ?? options.MaxRecipients;
        var plainSender = envelopeSender ?? list.BouncesAddress;
        var size = chunkSize ?? ChunkSize(personalized);
        var window = batchWindow ?? BatchWindow(size);
        var report = new DeliveryReport();
        var watch = Stopwatch.StartNew();
        var gate = Pool.Gate;
        var clock = Pool.Time;
        long Seconds(long ticks) => Math.Max(0, (long)Math.Round(ticks / (double)clock.TimestampFrequency));
        var unreachable = 0;
        string? unreachableReason = null;
        Exception? failure = null;
        var pausedWorkers = 0;
        var inFlight = 0;
        var connections = new List<SmtpConnection>();
        // Under the gate: chunks whose worker is opening its connection; the connections still
        // opening whose chunk a worker of another relay took over; and those of them the end of
        // the delivery cut (their relay is marked down here, not by the worker).
        var opening = new List<(Chunk Chunk, int Generation, long Since, SmtpConnection Connection, RelayState Relay)>();
        var abandoned = new List<(SmtpConnection Connection, RelayState Relay, long Since)>();
        var cut = new HashSet<SmtpConnection>();
        var groups = Groups(recipients, size, personalized, grouping ?? Grouping, progress, perTransaction, window);
        var nextGroup = 0;
        var yielded = 0;
        string? yieldReason = null;
        var yieldAsked = TimeSpan.Zero;
        lock (gate)
        {
            Pool.StartDelivery();
        }

        // Under the gate, as a worker asks for a chunk: past the slice, the notices and small
        // posts waiting behind this delivery go first (review 90: a confirmation, an owner's
        // forward waited for a 200,000-member post's whole delivery, a minute and more).
        var smallAsked = TimeSpan.Zero;
        bool MakeWayNow()
        {
            if (smallWaiting is null || !Due(smallAsked, out var elapsed))
            {
                return false;
            }

            // Nothing left to hand out: the post ends with its chunks in flight (review 92: it
            // made way with every copy sent, and its entry waited behind the notices).
            smallAsked = elapsed;
            if (groups.TrueForAll(g => g.Returned.Count == 0 && !g.Prefetch()) || !smallWaiting())
            {
                return false;
            }

            yieldReason = "notices or small posts wait behind it";
            report.ForSmallEntries = true;
            Volatile.Write(ref yielded, 1);
            Monitor.PulseAll(gate);
            return true;
        }

        // Between a chunk's transactions too (a worker's own thread): a chunk on a slow relay can
        // take longer than the slice itself (review 93: 25 copies at a second each). The lock is
        // taken only when the slice has passed and a second since the last look.
        bool MakeWayBetween() => smallWaiting is not null && Due(smallAsked, out _) && MakeWayLocked();

        bool MakeWayLocked()
        {
            lock (gate)
            {
                return MakeWayNow();
            }
        }

        // Whether to ask whether others wait: past the slice, and a second since it was last asked.
        bool Due(TimeSpan asked, out TimeSpan elapsed)
        {
            elapsed = watch.Elapsed;
            return elapsed >= slice && (asked == TimeSpan.Zero || elapsed - asked >= TimeSpan.FromSeconds(1));
        }

        bool Stopping() => stop.IsCancellationRequested || Volatile.Read(ref unreachable) != 0 || Volatile.Read(ref failure) is not null || Volatile.Read(ref yielded) != 0;

        // Under the gate, when every chunk left waits for pacing: whether to make way for another post.
        bool YieldNow(List<Destination> waiting)
        {
            if (yieldTo is null || !Due(yieldAsked, out var elapsed))
            {
                return false;
            }

            yieldAsked = elapsed;
            if (!yieldTo())
            {
                return false;
            }

            yieldReason = string.Join("; ", waiting.Distinct().Select(Pacer.Why));
            Volatile.Write(ref yielded, 1);
            Monitor.PulseAll(gate);
            return true;
        }

        // After the grace, in-flight transactions are cut: their recipients are deferred, and
        // recorded, so nothing is lost; only the shutdown is not held up.
        using var abort = stop.Register(() =>
        {
            var timer = new Timer(_ =>
            {
                lock (gate)
                {
                    foreach (var c in connections)
                    {
                        c.Abort();
                    }
                }
            }, null, abortAfter ?? TimeSpan.FromSeconds(options.TimeoutSeconds), Timeout.InfiniteTimeSpan);
            lock (gate)
            {
                report.AbortTimer = timer;
                Monitor.PulseAll(gate);
            }
        });

        // The next chunk for a worker of relay r: null when the delivery is over for it.
        Chunk? Next(RelayState r)
        {
            lock (gate)
            {
                while (true)
                {
                    if (Stopping() || MakeWayNow())
                    {
                        return null;
                    }

                    var now = clock.GetTimestamp();
                    if (Pool.AllDown(now) && Pool.WorthWaiting())
                    {
                        if (inFlight == 0 && groups.TrueForAll(g => g.Returned.Count == 0 && !g.Prefetch()))
                        {
                            return null; // nothing is left to wait for
                        }

                        Monitor.Wait(gate, TimeSpan.FromTicks(Math.Clamp((long)((Pool.NextTry() - now) * (double)TimeSpan.TicksPerSecond / clock.TimestampFrequency), TimeSpan.TicksPerMillisecond, 100 * TimeSpan.TicksPerMillisecond)));
                        continue;
                    }

                    if (Pool.AllDown(now))
                    {
                        // What each said when it was marked down, and when it is tried again: a
                        // relay back meanwhile is not seen before then (review 81: the deferrals
                        // read as fresh refusals).
                        unreachableReason ??= string.Join("; ", Pool.Relays.Select(x =>
                            $"{x.Relay.Name}: {x.LastError} (marked down {Seconds(now - x.DownSince)} s ago, tried again in {Seconds(x.DownUntil - now)} s)"));
                        Volatile.Write(ref unreachable, 1);
                        Monitor.PulseAll(gate);
                        return null;
                    }

                    if (!RelayPool.Usable(r, now))
                    {
                        // The other relays may have done everything meanwhile: the delivery is
                        // over, not waiting for this one's backoff.
                        if (inFlight == 0 && groups.TrueForAll(g => g.Returned.Count == 0 && !g.Prefetch()))
                        {
                            return null;
                        }

                        Monitor.Wait(gate, TimeSpan.FromTicks(Math.Clamp((long)((r.DownUntil - now) * (double)TimeSpan.TicksPerSecond / clock.TimestampFrequency), TimeSpan.TicksPerMillisecond, 100 * TimeSpan.TicksPerMillisecond)));
                        continue;
                    }

                    var pending = false;
                    var share = false;
                    List<Destination>? paced = null;
                    var pacedHolders = 0;
                    for (var k = 0; k < groups.Count; k++)
                    {
                        // A group with nothing (left) for this post is skipped before its pace is
                        // asked: a post without a paced destination's members never waits for it.
                        var g = groups[(nextGroup + k) % groups.Count];
                        if (g.Returned.Count == 0 && !g.Prefetch())
                        {
                            continue;
                        }

                        if (g.Destination is { } d && (!Pacer.MayHold(d, g.Holders) || !Pacer.Ready(d)))
                        {
                            pending = true;
                            (paced ??= []).Add(d);
                            pacedHolders += g.Holders;
                            continue;
                        }

                        // There is work: a relay ahead of its weighted share leaves it to the others.
                        if (!Pool.WithinShare(r, now))
                        {
                            pending = true;
                            share = true;
                            break;
                        }

                        var chunk = g.Returned.Count > 0 ? g.Returned.Dequeue() : g.Pull()!;

                        nextGroup = (nextGroup + k + 1) % groups.Count;
                        g.Holders++;
                        r.Taken++;
                        r.Busy++;
                        inFlight++;
                        return chunk;
                    }

                    if (!pending && inFlight == 0)
                    {
                        return null; // every chunk is done
                    }

                    // Nothing to take: a chunk whose worker, of another relay, has been opening
                    // its connection for StallAfter (a relay that took the connection and never
                    // greets) is taken over; nothing of it was sent. Review 53: a silent relay in the pool held
                    // its workers' chunks, and so every post, for Smtp:TimeoutSeconds.
                    if (!pending && TakeOver(r, now) is { } taken)
                    {
                        return taken;
                    }

                    // Only paced destinations' chunks are left, and only theirs are in flight: past
                    // the slice, another post may go first.
                    if (!share && paced is not null && inFlight == pacedHolders && YieldNow(paced))
                    {
                        return null;
                    }

                    Monitor.Wait(gate, 50);
                }
            }
        }

        // Under the gate: a chunk a worker of another relay has been opening a connection for
        // since StallAfter, for a worker of relay r to send instead (it is in flight still: the
        // count of its group's holders stays; the relays' shares move). Never one of r's own: a
        // worker of the same relay would open a session to the same slow server (review 55: a
        // sole slow relay took longer, with twice the connections).
        Chunk? TakeOver(RelayState r, long now)
        {
            var stall = (long)(RelayPool.StallAfter.TotalSeconds * clock.TimestampFrequency);
            var i = opening.FindIndex(o => o.Relay != r && now - o.Since > stall);
            if (i < 0)
            {
                return null;
            }

            var (chunk, _, since, connection, owner) = opening[i];
            opening.RemoveAt(i);
            abandoned.Add((connection, owner, since));
            chunk.Generation++;
            r.Taken++;
            r.Busy++;
            return chunk;
        }

        var workers = new List<Thread>();
        foreach (var relay in Pool.Relays)
        {
            for (var i = 0; i < relay.Working; i++)
            {
                var thread = new Thread(() =>
                {
                    var run = new ConnectionRefusals(relay); // this connection's run of refusals alike (InARun)
                    try
                    {
                        using var connection = new SmtpConnection(relay.Relay, options)
                        {
                            SessionsChanged = change =>
                            {
                                lock (gate)
                                {
                                    relay.Open += change;
                                    Monitor.PulseAll(gate);
                                }
                            },
                            AttemptsChanged = change =>
                            {
                                lock (gate)
                                {
                                    relay.Connecting += change;
                                    Monitor.PulseAll(gate);
                                }
                            },
                            PlainFallback = why => Pool.PlainFallback(relay, why),
                        };
                        lock (gate)
                        {
                            connections.Add(connection);
                        }

                        Work(relay, connection, run);
                    }
                    catch (Exception e)
                    {
                        // A bug must stop this delivery, never the process: the entry is shunted
                        // with its checkpoint and resumes after a fix.
                        Interlocked.CompareExchange(ref failure, e, null);
                        lock (gate)
                        {
                            Monitor.PulseAll(gate);
                        }
                    }
                    finally
                    {
                        lock (gate)
                        {
                            run.End();
                        }
                    }
                })
                {
                    IsBackground = true,
                    Name = $"smtp-{relay.Index}-{i}",
                };
                workers.Add(thread);
            }
        }

        void Work(RelayState relay, SmtpConnection connection, ConnectionRefusals run)
        {
            var carrier = new Carrier(post);
            var scratch = RecipientValues.NewScratch();

            // Two results: with pipelining, one transaction's outcome is read while the next is
            // sent (TransactionResult.Pending until then).
            TransactionResult[] results = [new(), new()];
            var retire = false;
            var busyRefusals = 0; // 421s to this worker's new connections in a row while others were open
            var hadSession = false;

            // A connection of this worker refused before any transaction was sent on it: the
            // relay is down, or at its limit of connections from us (then this worker pauses
            // once, or retires).
            void Refused(SmtpConnectException e, ref bool pause)
            {
                lock (gate)
                {
                    // A 421 while another of ours is still connecting to this relay:
                    // whether that one gets in tells a limit from a relay that is down.
                    while (e.Busy && relay.Open == 0 && relay.Connecting > 0 && !Stopping())
                    {
                        Monitor.Wait(gate, 100);
                    }

                    if (stop.IsCancellationRequested)
                    {
                        // Cut by the shutdown (Abort): the relay said nothing.
                    }
                    else if (!RelayPool.AtLimit(relay, e.Busy))
                    {
                        Pool.MarkDown(relay, e.Message, clock.GetTimestamp(), answered: e.Answered);
                    }
                    else if (hadSession && ++busyRefusals < 2)
                    {
                        // A reconnect (after MaxSessionsPerConnection, or a connection
                        // the server closed) may meet its own last session not yet
                        // counted out by the server: pause, then try once more. A
                        // worker that never got in retires at once.
                        pause = true;
                    }
                    else
                    {
                        Pool.Retire(relay, e.Message, clock.GetTimestamp());
                        retire = true;
                    }
                }
            }
            while (!retire && Next(relay) is { } chunk)
            {
                var pause = false;
                var transactions = chunk.Transactions;
                var done = Math.Max(chunk.Start, progress.TransactionsDone(chunk.Index));
                var deferred = new List<(Recipient, int, string)>();
                var bounced = new List<Refusal>();
                long delivered = 0, sent = 0;
                long unanswered = 0; // deferred recipients the server never answered for good (TransactionResult.Unanswered)
                var handBack = false;
                TransactionResult? pending = null;
                Destination? pendingDestination = null;
                var pendingOwnsSlot = false; // false once the next transaction took its destination slot over
                var brokeOff = false; // the relay broke a connection in the middle of a transaction: the chunk goes back

                void Account(TransactionResult result, Destination destination, bool release = true)
                {
                    Pacer.Done(destination, result.Delivered.Count, result.Throttled, release);

                    // Only a reply says the relay is up: a transaction whose connection broke
                    // (deferred with no status) must not end the down episode another
                    // connection to the same relay just began (it would be logged twice), nor
                    // may the late reply of one sent before that episode began.
                    if (result.TimedOut)
                    {
                        // No reply within the timeout: the relay stalls; its work goes to the others.
                        lock (gate)
                        {
                            Pool.MarkDown(relay, $"no reply within {options.TimeoutSeconds} s", clock.GetTimestamp());
                        }
                    }
                    else if (result.Broken)
                    {
                        brokeOff = true;
                        // Review 67: a relay that closed the connection in the middle of a
                        // transaction (after the data, before its reply) was never marked down,
                        // and every member got the post again at each retry. Down, it gets at
                        // most one transaction per connection of ours until it answers again:
                        // the duplicate bound of a crash. It took the session: a sole relay is
                        // waited for once, as after a 421 in a session, so one reset does not
                        // send the rest of the post to retry.
                        lock (gate)
                        {
                            Pool.MarkDown(relay, $"the connection broke in the middle of a transaction, before its reply ({result.Deferred.FirstOrDefault().Response ?? "connection lost"})", clock.GetTimestamp(), answered: true);
                        }
                    }
                    else if (result.Deferred.Find(d => SmtpConnection.IsRelayClosing(d.Status, d.Response)) is { Response: not null } closing)
                    {
                        // 421 4.3.x/4.4.x: the relay itself is going away, not the destination slowing us down.
                        lock (gate)
                        {
                            Pool.MarkDown(relay, $"{closing.Status} {closing.Response}", clock.GetTimestamp(), answered: true);
                        }
                    }
                    else if (result.Delivered.Count > 0 || result.Bounced.Count > 0 || result.Deferred.Exists(d => d.Status != 0))
                    {
                        // Refusals at RCPT of a transaction that delivered nothing join this
                        // connection's run of alike refusals (InARun reads it); a copy accepted
                        // ends it.
                        var replies = result.Delivered.Count == 0 && result.Bounced.Exists(b => b.AtRecipient && !b.Ours)
                            ? result.Bounced.ConvertAll(b => b.AtRecipient && !b.Ours ? Bounces.SmtpRefusals.Normalized(b.ToSmtpRefusal()) : null)
                            : null;
                        lock (gate)
                        {
                            // A transaction counts once: a batched one's recipients of one domain
                            // share its wording (dead members of a dead domain).
                            var now = clock.GetTimestamp();
                            RefusalRun? joined = null;
                            for (var i = 0; replies is not null && i < replies.Count; i++)
                            {
                                if (replies[i] is { } reply)
                                {
                                    joined = joined?.Reply == reply ? joined : run.Refused(reply);
                                    result.Bounced[i] = result.Bounced[i] with { Run = joined };
                                }
                            }

                            if (result.Delivered.Count > 0)
                            {
                                run.End();
                            }

                            Pool.MarkUp(relay, result.Delivered.Count, result.Started, now);
                        }
                    }

                    sent += 1 + result.FollowUps;
                    delivered += result.Delivered.Count;
                    deferred.AddRange(result.Deferred);
                    result.Settle();
                    unanswered += result.Unanswered;
                    bounced.AddRange(result.Bounced); // each stamped with its transaction by the connection
                }

                void Settle()
                {
                    if (pending is { Pending: false })
                    {
                        Account(pending, pendingDestination!, pendingOwnsSlot);
                        pending = null;
                    }
                }

                var t = done;
                var skip = false;
                if (!connection.IsOpen && !Stopping())
                {
                    // Opened before any transaction, where another worker may take the chunk
                    // over if it takes too long (TakeOver): nothing of it is sent yet.
                    int generation;
                    lock (gate)
                    {
                        generation = chunk.Generation;
                        opening.Add((chunk, generation, clock.GetTimestamp(), connection, relay));
                    }

                    SmtpConnectException? refused = null;
                    try
                    {
                        connection.Open();
                    }
                    catch (SmtpConnectException e)
                    {
                        refused = e;
                    }

                    bool takenOver;
                    var wasCut = false;
                    lock (gate)
                    {
                        takenOver = chunk.Generation != generation;
                        if (takenOver)
                        {
                            // The other worker has it now: this one only leaves it.
                            abandoned.RemoveAll(a => ReferenceEquals(a.Connection, connection));
                            wasCut = cut.Remove(connection);
                            relay.Busy--;
                            Monitor.PulseAll(gate);
                        }
                        else
                        {
                            opening.RemoveAll(o => ReferenceEquals(o.Connection, connection));
                        }
                    }

                    if (takenOver)
                    {
                        // Cut by the end of the delivery, which marked the relay down itself.
                        if (refused is not null && !wasCut)
                        {
                            Refused(refused, ref pause);
                        }

                        if (pause)
                        {
                            stop.WaitHandle.WaitOne(TimeSpan.FromSeconds(1));
                        }

                        continue;
                    }

                    if (refused is not null)
                    {
                        // As at the first transaction: the chunk goes to another worker.
                        Refused(refused, ref pause);
                        handBack = true;
                        skip = true;
                    }
                }

                for (; !skip && t < transactions.Count; t++)
                {
                    if (MakeWayBetween() || Stopping())
                    {
                        break;
                    }

                    if (brokeOff || (relay.IsDown && HandOver(relay)))
                    {
                        // A relay that broke a connection in the middle of a transaction gets no
                        // more of this chunk (its next one, on a new connection, would be lost the
                        // same way): another relay takes the rest, or it waits in retry.
                        // The relay went down during this chunk (a 421 or a timeout, seen by this
                        // connection or another) and another relay is up: the rest goes there
                        // now. Review 29: a relay that answered 421 at RCPT and took the next
                        // connection again had each of its chunks' copies deferred to retry.
                        handBack = true;
                        break;
                    }

                    var batch = transactions[t];
                    var destination = chunk.Destination ?? Pacer.Of(batch[0].Domain);

                    // The connection keeps one slot of a destination: a transaction after a
                    // pipelined one to the same destination, whose reply is still to be read,
                    // takes its slot over (only a token of a rate is taken anew). Else eight
                    // connections would want sixteen slots, and a mixed chunk's copies be
                    // deferred for our own overlap.
                    var inherited = pending is not null && pendingOwnsSlot && ReferenceEquals(pendingDestination, destination);
                    var slot = Pacer.TryAcquire(destination, out _, slotHeld: inherited);
                    if (slot && inherited)
                    {
                        pendingOwnsSlot = false;
                    }
                    else
                    {
                        inherited = false;
                    }

                    if (!slot && pending is not null)
                    {
                        // This worker's own transaction whose reply is still to be read may hold
                        // a slot (another destination's, or this one's when only a token of its
                        // rate is missing): read it first.
                        connection.Complete();
                        Settle();
                    }

                    if (!slot && !Acquire(destination, chunk.Destination is null ? MixedWait : ChunkWait))
                    {
                        if (chunk.Destination is not null)
                        {
                            handBack = true; // this destination must wait; the worker does other work
                            break;
                        }

                        // A mixed chunk never waits long for one domain: its recipients wait in retry.
                        var why = Pacer.Why(destination);
                        foreach (var r in batch)
                        {
                            deferred.Add((r, 0, why));
                        }

                        unanswered += batch.Length;

                        sent++;
                        continue;
                    }

                    var result = results[0] == pending ? results[1] : results[0];
                    result.Clear();
                    result.Transaction = (t, batch.Length);
                    result.Started = clock.GetTimestamp();
                    string sender;
                    try
                    {
                        if (personalized)
                        {
                            carrier.SetRecipient(RecipientValues.For(batch[0], scratch));
                            sender = Verp.Encode(list, batch[0].Address);
                        }
                        else
                        {
                            carrier.SetRecipient(null);
                            sender = plainSender;
                        }
                    }
                    catch (Exception e) when (e is ParseException or FormatException or ArgumentException)
                    {
                        // A member address or name the client cannot write: a permanent
                        // failure of these recipients alone; the delivery goes on. A slot
                        // taken over goes back to the transaction still in flight.
                        if (inherited)
                        {
                            pendingOwnsSlot = true;
                        }
                        else
                        {
                            Pacer.Done(destination, 0, false);
                        }

                        foreach (var r in batch)
                        {
                            bounced.Add(new Refusal(r, 553, "cannot address this recipient: " + e.Message, AtRecipient: true, t, batch.Length, Ours: true));
                        }

                        sent++;
                        continue;
                    }

                    try
                    {
                        var started = Stopwatch.GetTimestamp();
                        connection.Send(carrier.Message, sender, batch, result);
                        busyRefusals = 0;
                        hadSession = true;
                        Hosting.Metrics.TransactionSeconds.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
                    }
                    catch (SmtpConnectException e)
                    {
                        // Nothing of this transaction was sent: the rest of the chunk goes to
                        // another worker (this relay's, when it only refused one connection too
                        // many and this worker retires; else another relay's, or retry when
                        // every relay is down).
                        Pacer.Done(destination, 0, false);
                        Settle();
                        Refused(e, ref pause);

                        handBack = true;
                        break;
                    }

                    Settle();
                    if (result.Pending)
                    {
                        pending = result;
                        pendingDestination = destination;
                        pendingOwnsSlot = true;
                    }
                    else
                    {
                        Account(result, destination);
                    }
                }

                // Every transaction counted as done must have its outcome before it is recorded.
                connection.Complete();
                Settle();
                if (bounced.Count > 0)
                {
                    RelayRefusals(relay, bounced, deferred, delivered, unanswered);
                }

                if (t > done)
                {
                    RecordDurably(chunk.Index, t, delivered, deferred, bounced, unanswered);
                }

                lock (gate)
                {
                    chunk.Start = t;
                    inFlight--;
                    relay.Busy--;
                    groups[(int)(chunk.Index >> GroupShift)].Holders--;
                    if (handBack && t < transactions.Count && !Stopping())
                    {
                        groups[(int)(chunk.Index >> GroupShift)].Returned.Enqueue(chunk);
                    }
                    else
                    {
                        for (var rest = t; rest < transactions.Count; rest++)
                        {
                            report.NotAttempted.AddRange(transactions[rest]);
                        }
                    }

                    report.Transactions += sent;
                    report.Delivered += delivered;
                    report.Deferred += deferred.Count;
                    report.Bounced += bounced.Count;
                    Monitor.PulseAll(gate);
                }

                if (pause)
                {
                    stop.WaitHandle.WaitOne(TimeSpan.FromSeconds(1));
                }
            }
        }

        // Whether a worker of relay r, which went down, gives its chunk back: only while r is in
        // its backoff and another relay may be tried, or r refuses every transaction (then, with
        // no other relay up, Next ends the delivery). Once the backoff is over the next
        // transaction is the try that can mark it up again; a sole relay goes on as it would
        // after a reconnect (every relay down is settled in Next: waited for once, or the end).
        bool HandOver(RelayState r)
        {
            lock (gate)
            {
                var now = clock.GetTimestamp();
                return !RelayPool.Usable(r, now) && (!Pool.AllDown(now) || r.RefusesAll);
            }
        }

        // Recipients the relay refused for itself (alike, or for its policy or quota) wait in
        // retry, not lost as bounces: one line per chunk.
        void RelayRefusals(RelayState relay, List<Refusal> bounced, List<(Recipient, int, string)> deferred, long delivered, long unanswered)
        {
            var attempted = delivered + deferred.Count + bounced.Count;
            var answered = attempted - unanswered;
            var forRelay = Bounces.SmtpRefusals.ForTheRelay(bounced.ConvertAll(b => b.ToSmtpRefusal()), answered);
            lock (gate)
            {
                InARun(bounced, forRelay);
            }

            if (forRelay.Count == 0)
            {
                return;
            }

            var moved = forRelay.ConvertAll(i => bounced[i]);
            for (var k = forRelay.Count - 1; k >= 0; k--)
            {
                bounced.RemoveAt(forRelay[k]);
            }

            deferred.AddRange(moved.Select(b => (b.Recipient, b.Status, b.Response)));
            _log?.LogError("Relay {Relay} refused {Count} of {Attempted} recipients to {ListId} for itself, not for the members: {SmtpStatus} {SmtpResponse}{Others}; they wait in retry (check the relay: its configuration, its state or its sending quota); Message-Id {MessageId}, queue entry {QueueEntry}",
                relay.Relay.Name, moved.Count, attempted, list.Fqdn, moved[0].Status, moved[0].Response, moved.Count > 1 ? " (the first of them)" : "",
                progress.Post.MessageId ?? "-", progress.Post.Entry ?? "-");
        }

        // Review 99: a relay that began refusing everyone alike in the middle of this chunk (or
        // stopped in it) refused its last (or first) recipients only, which the chunk's own
        // rule does not see: what is part of RelayPool.RunLength alike at once on our
        // connections to it (by the chunk's end) is the relay's too. Nothing is waited for: a
        // wait for the run to grow let workers that all reached a chunk's end at once add their
        // dead members up to a run (review 101).
        static void InARun(List<Refusal> bounced, List<int> forRelay)
        {
            var added = false;
            for (var i = 0; i < bounced.Count; i++)
            {
                if (bounced[i].Run is { Peak: >= RelayPool.RunLength } && !forRelay.Contains(i))
                {
                    forRelay.Add(i);
                    added = true;
                }
            }

            if (added)
            {
                forRelay.Sort();
            }
        }

        // A slot for one transaction to d, waiting at most `patience` (and never past a stop).
        bool Acquire(Destination d, TimeSpan patience)
        {
            var waited = TimeSpan.Zero;
            while (true)
            {
                if (Pacer.TryAcquire(d, out var wait))
                {
                    return true;
                }

                if (waited + wait > patience || Stopping())
                {
                    return false;
                }

                stop.WaitHandle.WaitOne(wait);
                waited += wait;
            }
        }

        // A full disk pauses the delivery here until the record can be written: onPause hears
        // the reason when the first worker pauses and null when the last one resumes. A shutdown
        // meanwhile gives up on the record: that chunk is sent again on resume.
        void RecordDurably(long chunk, int transactions, long delivered, List<(Recipient, int, string)> deferred, List<Refusal> bounced, long unanswered)
        {
            var wait = TimeSpan.FromSeconds(1);
            var paused = false;
            while (true)
            {
                try
                {
                    progress.Record(chunk, transactions, delivered, deferred, bounced, unanswered);
                    if (paused && Interlocked.Decrement(ref pausedWorkers) == 0)
                    {
                        onPause?.Invoke(null);
                    }

                    return;
                }
                catch (IOException e) when (Runners.QueueRunner.IsTransient(e))
                {
                    if (!paused)
                    {
                        paused = true;
                        if (Interlocked.Increment(ref pausedWorkers) == 1)
                        {
                            onPause?.Invoke(e.Message);
                        }
                    }

                    if (stop.WaitHandle.WaitOne(wait))
                    {
                        Interlocked.Decrement(ref pausedWorkers);
                        return;
                    }

                    wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                }
            }
        }

        // A thread that cannot be started (a thread or address-space limit) stops the delivery
        // as a failure does, and the ones started are waited for: they record what they sent
        // (review 102: they kept sending while the entry was shunted, and unshunt sent it all
        // again). The failure is transient: the entry goes back and resumes.
        var running = new List<Thread>(workers.Count);
        foreach (var w in workers)
        {
            try
            {
                w.Start();
                running.Add(w);
            }
            catch (Exception e) when (e is OutOfMemoryException or ThreadStartException)
            {
                Interlocked.CompareExchange(ref failure, new ResourceExhaustedException($"no thread could be started for connection {w.Name} ({e.Message}): a thread, memory or address-space limit", e), null);
                lock (gate)
                {
                    Monitor.PulseAll(gate);
                }

                break;
            }
        }

        foreach (var w in running)
        {
            while (!w.Join(100))
            {
                // The connections still opening whose chunks others took over hold nothing: once
                // the delivery is over, those opening for twice StallAfter are cut, not waited
                // for, and their relay is marked down (it took the connection and answered
                // nothing: logged once, and the next posts do not wait for it during its
                // backoff); a slower greeting is waited for, so that a server counting our
                // connections against a limit sees this one end (review 55).
                lock (gate)
                {
                    var stopping = Stopping();
                    if (abandoned.Count > 0 && (stopping || (inFlight == 0 && groups.TrueForAll(g => g.Returned.Count == 0 && !g.Prefetch()))))
                    {
                        var now = clock.GetTimestamp();
                        var patience = (long)(2 * RelayPool.StallAfter.TotalSeconds * clock.TimestampFrequency);
                        foreach (var (connection, owner, since) in abandoned.Where(a => stopping || now - a.Since > patience).ToList())
                        {
                            abandoned.RemoveAll(a => ReferenceEquals(a.Connection, connection));
                            cut.Add(connection);
                            connection.Abort();
                            if (!stopping)
                            {
                                Pool.MarkDown(owner, $"SMTP server {owner.Relay.Name} took the connection but did not finish its greeting, EHLO, STARTTLS and AUTH within {2 * RelayPool.StallAfter.TotalSeconds:F0} s, while the other relays sent the post", now);
                            }
                        }
                    }
                }
            }
        }

        lock (gate)
        {
            report.AbortTimer?.Dispose();
        }

        Pool.Idle();
        report.Failure = failure;
        report.Stop = failure is not null ? DeliveryStop.Failed
            : stop.IsCancellationRequested ? DeliveryStop.Shutdown
            : unreachable != 0 ? DeliveryStop.ServerUnreachable
            : yielded != 0 ? DeliveryStop.Yielded
            : DeliveryStop.Completed;
        report.StopReason = failure?.Message ?? unreachableReason ?? (yielded != 0 ? yieldReason : null);
        report.Elapsed = watch.Elapsed;
        report.KeepRest(() => groups.SelectMany(g => g.Rest()), () => groups.ForEach(g => g.Dispose()));
        return report;
    }

    // The recipient stream split into its groups: the mixed one, then one per configured
    // destination of the grouping, each read lazily from the stream with its own filter.
    private List<Group> Groups(IEnumerable<Recipient> recipients, int size, bool personalized, string grouping, IDeliveryProgress progress, int maxRecipients, int window)
    {
        var byDomain = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var names = new List<string>();
        var entries = grouping.Split(';', StringSplitOptions.RemoveEmptyEntries);
        var aLabels = entries.Length > 0 && entries[0] == Pacer.ALabels;
        foreach (var entry in aLabels ? entries[1..] : entries)
        {
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? entry : entry[..eq];
            names.Add(name);
            foreach (var domain in (eq < 0 ? name : entry[(eq + 1)..]).Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                byDomain[domain] = names.Count;
            }
        }

        var result = new List<Group>();
        for (var g = 0; g <= names.Count; g++)
        {
            var id = g;
            var destination = g == 0 ? null : Pacer.Of(names[g - 1]);
            var source = byDomain.Count == 0 ? recipients : recipients.Where(r => byDomain.GetValueOrDefault(aLabels ? SmtpOptions.RecipientDomainKey(r.Domain) : r.Domain) == id);
            result.Add(new Group(Chunks(source, size, personalized, (long)g << GroupShift, destination, maxRecipients, window), destination, progress));
        }

        return result;
    }

    /// <summary>One group's chunks: read lazily, the ones handed back first.</summary>
    private sealed class Group(IEnumerable<Chunk> chunks, Destination? destination, IDeliveryProgress progress) : IDisposable
    {
        private readonly IEnumerator<Chunk> _source = chunks.GetEnumerator();

        public Destination? Destination { get; } = destination;

        public Queue<Chunk> Returned { get; } = new();

        public bool Exhausted { get; private set; }

        public int Holders { get; set; }

        private Chunk? _next;

        /// <summary>Reads the next chunk not done in an earlier run, if any, without taking it.</summary>
        public bool Prefetch() => (_next ??= Read()) is not null;

        /// <summary>The next chunk not done in an earlier run, or null at the end.</summary>
        public Chunk? Pull()
        {
            var chunk = _next ?? Read();
            _next = null;
            return chunk;
        }

        private Chunk? Read()
        {
            while (!Exhausted && _source.MoveNext())
            {
                var chunk = _source.Current;
                if (DoneBefore(chunk) < chunk.Transactions.Count)
                {
                    return chunk;
                }
            }

            Exhausted = true;
            return null;
        }

        // How many transactions of a chunk read from the stream an earlier run did, counted once
        // as the resumed delivery's "done before" (IDeliveryProgress.Skipped).
        private int DoneBefore(Chunk chunk)
        {
            var done = progress.TransactionsDone(chunk.Index);
            if (done > 0)
            {
                progress.Skipped(chunk.Transactions.Take(done).Sum(t => (long)t.Length));
            }

            return done;
        }

        /// <summary>Every recipient not done: chunks handed back, then the rest of the stream.</summary>
        public IEnumerable<Recipient> Rest()
        {
            while (Returned.Count > 0)
            {
                var chunk = Returned.Dequeue();
                foreach (var r in chunk.Transactions.Skip(Math.Max(chunk.Start, progress.TransactionsDone(chunk.Index))).SelectMany(b => b))
                {
                    yield return r;
                }
            }

            if (_next is { } prefetched)
            {
                _next = null;
                foreach (var r in prefetched.Transactions.Skip(progress.TransactionsDone(prefetched.Index)).SelectMany(b => b))
                {
                    yield return r;
                }
            }

            while (!Exhausted && _source.MoveNext())
            {
                // Never read in this run: what an earlier run did of it counts as in Read().
                var chunk = _source.Current;
                foreach (var r in chunk.Transactions.Skip(DoneBefore(chunk)).SelectMany(b => b))
                {
                    yield return r;
                }
            }
        }

        public void Dispose() => _source.Dispose();
    }

    // Deterministic (a resumed run must cut the same way) and streaming. Personalized: one
    // recipient per transaction, `size` per chunk. Batched: transactions of up to MaxRecipients
    // recipients of one domain, a chunk closed once it holds `size` recipients of whole
    // transactions; a domain's partial batch is carried into the next chunk rather than cut
    // short (up to `window` recipients of them, the oldest batch closed first past it), so a
    // chunk boundary does not add transactions.
    private IEnumerable<Chunk> Chunks(IEnumerable<Recipient> recipients, int size, bool personalized, long first, Destination? destination, int maxRecipients, int window)
    {
        var index = first;
        if (personalized)
        {
            var chunk = new List<Recipient[]>(size);
            foreach (var r in recipients)
            {
                chunk.Add([r]);
                if (chunk.Count == size)
                {
                    yield return new Chunk(index++, chunk, destination);
                    chunk = new List<Recipient[]>(size);
                }
            }

            if (chunk.Count > 0)
            {
                yield return new Chunk(index, chunk, destination);
            }

            yield break;
        }

        // Open batches by first appearance (a linked list: closing one anywhere is O(1) among
        // the thousands of domains a window may hold).
        var open = new Dictionary<string, (List<Recipient> Batch, LinkedListNode<string> Node)>(StringComparer.OrdinalIgnoreCase);
        var order = new LinkedList<string>();
        var openCount = 0;
        var transactions = new List<Recipient[]>();
        var count = 0;
        foreach (var r in recipients)
        {
            if (!open.TryGetValue(r.Domain, out var slot))
            {
                open[r.Domain] = slot = ([], order.AddLast(r.Domain));
            }

            slot.Batch.Add(r);
            openCount++;
            if (slot.Batch.Count == maxRecipients)
            {
                Close(r.Domain);
            }

            // Bounded memory: the oldest partial batches go out once more than `window` wait.
            while (openCount > window)
            {
                Close(order.First!.Value);
            }

            if (count >= size)
            {
                yield return new Chunk(index++, transactions, destination);
                transactions = [];
                count = 0;
            }
        }

        // The batches still open at the end, in chunks of `size` too: one last chunk of a whole
        // window would put fifty chunks' worth in flight past the crash bound.
        while (order.Count > 0)
        {
            Close(order.First!.Value);
            if (count >= size)
            {
                yield return new Chunk(index++, transactions, destination);
                transactions = [];
                count = 0;
            }
        }

        if (transactions.Count > 0)
        {
            yield return new Chunk(index, transactions, destination);
        }

        void Close(string domain)
        {
            var (batch, node) = open[domain];
            open.Remove(domain);
            order.Remove(node);
            openCount -= batch.Count;
            transactions.Add([.. batch]);
            count += batch.Count;
        }
    }
}
