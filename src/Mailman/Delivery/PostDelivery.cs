// Delivers one prepared post to a stream of recipients over N parallel SMTP connections, each on
// its own thread with synchronous sends (cheaper than SendAsync per copy). The stream is cut into
// fixed chunks; a worker takes a whole chunk and reports it when done, so a checkpoint can record
// progress and a resumed delivery skips what is done. Personalized posts go one recipient per
// transaction with a VERP sender; others in batches of MaxRecipients grouped by domain. It
// reports what became of every recipient; it never touches a queue.
using System.Collections.Concurrent;
using System.Diagnostics;
using Mailman.Delivery.Smtp;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Queues;
using MimeKit;

namespace Mailman.Delivery;

public enum DeliveryStop
{
    /// <summary>Every recipient was attempted.</summary>
    Completed,

    /// <summary>The host is stopping: progress is recorded, the rest is for the next run.</summary>
    Shutdown,

    /// <summary>The server could not be reached: recipients not yet attempted wait in retry.</summary>
    ServerUnreachable,

    /// <summary>An unexpected error on a delivery thread (a bug): progress is recorded, the entry is shunted with its checkpoint.</summary>
    Failed,
}

/// <summary>A recipient refused with a 5xx (a permanent failure: not retried), and where in the transaction.</summary>
/// <param name="AtRecipient">In answer to its RCPT TO, or an address the client cannot write; false: at MAIL FROM or after DATA.</param>
/// <param name="Transaction">The transaction's index in its delivery chunk.</param>
/// <param name="TransactionSize">The recipients of that transaction.</param>
public readonly record struct Refusal(Recipient Recipient, int Status, string Response, bool AtRecipient, int Transaction = 0, int TransactionSize = 1);

/// <summary>Where a delivery records and finds its progress (a checkpoint, or nothing).</summary>
public interface IDeliveryProgress
{
    /// <summary>How many transactions of <paramref name="chunk"/> were done in an earlier run.</summary>
    int TransactionsDone(long chunk);

    /// <summary>
    /// The first <paramref name="transactions"/> transactions of <paramref name="chunk"/> are done:
    /// <paramref name="delivered"/> recipients accepted in this run, <paramref name="deferred"/> and
    /// <paramref name="bounced"/> their temporary and permanent failures.
    /// Called from delivery threads; must be durable on return and thread-safe.
    /// </summary>
    void Record(long chunk, int transactions, long delivered, IReadOnlyList<(Recipient Recipient, int Status, string Response)> deferred, IReadOnlyList<Refusal> bounced);
}

/// <summary>What became of a post's recipients in this run. Dispose after reading <see cref="Remaining"/>.</summary>
public sealed class DeliveryReport : IDisposable
{
    private IEnumerator<Chunk>? _rest;
    private Func<Chunk, IEnumerable<Recipient>>? _pending;

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

            while (_rest is not null && _pending is not null && _rest.MoveNext())
            {
                foreach (var r in _pending(_rest.Current))
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

    internal void KeepRest(IEnumerator<Chunk> rest, Func<Chunk, IEnumerable<Recipient>> pending)
    {
        _rest = rest;
        _pending = pending;
    }

    public void Dispose() => _rest?.Dispose();
}

/// <summary>A numbered slice of the recipient stream, already cut into its transactions.</summary>
public sealed record Chunk(long Index, List<Recipient[]> Transactions);

public sealed class PostDelivery(SmtpOptions options)
{
    /// <summary>Recipients per checkpoint chunk for a new delivery: at least MaxRecipients for batched posts.</summary>
    public int ChunkSize(bool personalized) => personalized ? options.CheckpointRecipients : Math.Max(options.CheckpointRecipients, options.MaxRecipients);

    /// <summary>
    /// Delivers <paramref name="post"/>, cut into chunks of <paramref name="chunkSize"/> (the size
    /// recorded when the delivery started: a resumed delivery must cut the same way). Stops
    /// taking new transactions when <paramref name="stop"/> fires, and <paramref name="abortAfter"/>
    /// later closes the connections, so a stalled server cannot hold the shutdown past its timeout.
    /// Never throws for what happens on a delivery thread: an unexpected error stops the
    /// delivery and is reported in <see cref="DeliveryReport.Failure"/>.
    /// </summary>
    /// <param name="envelopeSender">MAIL FROM for a post that is not personalized; null: the list's bounces address.</param>
    public DeliveryReport Deliver(
        PreparedPost post, ListName list, bool personalized, IEnumerable<Recipient> recipients, IDeliveryProgress progress, CancellationToken stop,
        string? envelopeSender = null, int? chunkSize = null, TimeSpan? abortAfter = null, Action<string?>? onPause = null, int? maxRecipients = null)
    {
        var perTransaction = maxRecipients ?? options.MaxRecipients;
        var plainSender = envelopeSender ?? list.BouncesAddress;
        var report = new DeliveryReport();
        var watch = Stopwatch.StartNew();
        using var work = new BlockingCollection<Chunk>(options.Connections * 2);
        var gate = new object();
        var unreachable = 0;
        string? unreachableReason = null;
        Exception? failure = null;
        var pausedWorkers = 0;
        var connections = new List<SmtpConnection>();

        bool Stopping() => stop.IsCancellationRequested || Volatile.Read(ref unreachable) != 0 || Volatile.Read(ref failure) is not null;

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
            }
        });

        var workers = new Thread[options.Connections];
        for (var i = 0; i < workers.Length; i++)
        {
            workers[i] = new Thread(() =>
            {
                try
                {
                    using var connection = new SmtpConnection(options);
                    lock (gate)
                    {
                        connections.Add(connection);
                    }

                    Work(connection);
                }
                catch (Exception e)
                {
                    // A bug must stop this delivery, never the process: the entry is shunted
                    // with its checkpoint and resumes after a fix.
                    Interlocked.CompareExchange(ref failure, e, null);
                    foreach (var _ in work.GetConsumingEnumerable())
                    {
                        // Drain, so the producer is never blocked on a full queue.
                    }
                }
            })
            {
                IsBackground = true,
                Name = $"smtp-{i}",
            };
            workers[i].Start();
        }

        void Work(SmtpConnection connection)
        {
            var carrier = new Carrier(post);
            var scratch = RecipientValues.NewScratch();
            var result = new TransactionResult();
            foreach (var chunk in work.GetConsumingEnumerable())
            {
                var transactions = chunk.Transactions;
                var done = progress.TransactionsDone(chunk.Index);
                var deferred = new List<(Recipient, int, string)>();
                var bounced = new List<Refusal>();
                long delivered = 0, sent = 0;
                var t = done;
                for (; t < transactions.Count; t++)
                {
                    if (Stopping())
                    {
                        break;
                    }

                    var batch = transactions[t];
                    result.Clear();
                    try
                    {
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
                            // failure of these recipients alone; the delivery goes on.
                            foreach (var r in batch)
                            {
                                result.Bounced.Add(new(r, 553, "cannot address this recipient: " + e.Message, AtRecipient: true));
                            }

                            bounced.AddRange(result.Bounced.Select(b => b with { Transaction = t, TransactionSize = batch.Length }));
                            sent++;
                            continue;
                        }

                        var started = Stopwatch.GetTimestamp();
                        connection.Send(carrier.Message, sender, batch, result);
                        Hosting.Metrics.TransactionSeconds.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
                    }
                    catch (SmtpConnectException e)
                    {
                        lock (gate)
                        {
                            unreachableReason ??= e.Message;
                        }

                        Volatile.Write(ref unreachable, 1);
                        break;
                    }

                    sent++;
                    delivered += result.Delivered.Count;
                    deferred.AddRange(result.Deferred);
                    foreach (var b in result.Bounced)
                    {
                        bounced.Add(b with { Transaction = t, TransactionSize = batch.Length });
                    }
                }

                if (t > done)
                {
                    RecordDurably(chunk.Index, t, delivered, deferred, bounced);
                }

                lock (gate)
                {
                    for (var rest = t; rest < transactions.Count; rest++)
                    {
                        report.NotAttempted.AddRange(transactions[rest]);
                    }

                    report.Transactions += sent;
                    report.Delivered += delivered;
                    report.Deferred += deferred.Count;
                    report.Bounced += bounced.Count;
                }
            }
        }

        // A full disk pauses the delivery here until the record can be written: onPause hears
        // the reason when the first worker pauses and null when the last one resumes. A shutdown
        // meanwhile gives up on the record: that chunk is sent again on resume.
        void RecordDurably(long chunk, int transactions, long delivered, List<(Recipient, int, string)> deferred, List<Refusal> bounced)
        {
            var wait = TimeSpan.FromSeconds(1);
            var paused = false;
            while (true)
            {
                try
                {
                    progress.Record(chunk, transactions, delivered, deferred, bounced);
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

        var chunks = Chunks(recipients, chunkSize ?? ChunkSize(personalized), personalized, perTransaction).GetEnumerator();
        try
        {
            while (!Stopping() && chunks.MoveNext())
            {
                var chunk = chunks.Current;
                if (progress.TransactionsDone(chunk.Index) >= chunk.Transactions.Count)
                {
                    continue; // done in an earlier run
                }

                work.Add(chunk, CancellationToken.None);
            }
        }
        finally
        {
            work.CompleteAdding();
            foreach (var w in workers)
            {
                w.Join();
            }

            lock (gate)
            {
                report.AbortTimer?.Dispose();
            }
        }

        report.Failure = failure;
        report.Stop = failure is not null ? DeliveryStop.Failed
            : stop.IsCancellationRequested ? DeliveryStop.Shutdown
            : unreachable != 0 ? DeliveryStop.ServerUnreachable
            : DeliveryStop.Completed;
        report.StopReason = failure?.Message ?? unreachableReason;
        report.Elapsed = watch.Elapsed;
        report.KeepRest(chunks, chunk => chunk.Transactions.Skip(progress.TransactionsDone(chunk.Index)).SelectMany(b => b));
        return report;
    }

    private static IEnumerable<Chunk> Chunks(IEnumerable<Recipient> recipients, int size, bool personalized, int maxRecipients)
    {
        long index = 0;
        var buffer = new List<Recipient>(size);
        foreach (var r in recipients)
        {
            buffer.Add(r);
            if (buffer.Count == size)
            {
                yield return new Chunk(index++, Transactions(buffer, personalized, maxRecipients));
                buffer.Clear();
            }
        }

        if (buffer.Count > 0)
        {
            yield return new Chunk(index, Transactions(buffer, personalized, maxRecipients));
        }
    }

    /// <summary>
    /// The transactions of a chunk, in a deterministic order (a resumed run must cut the same
    /// way): one per recipient when personalized, else batches of MaxRecipients per domain in
    /// order of first appearance.
    /// </summary>
    private static List<Recipient[]> Transactions(List<Recipient> chunk, bool personalized, int maxRecipients)
    {
        var result = new List<Recipient[]>(personalized ? chunk.Count : 4);
        if (personalized)
        {
            foreach (var r in chunk)
            {
                result.Add([r]);
            }

            return result;
        }

        var groups = new Dictionary<string, List<Recipient>>(StringComparer.OrdinalIgnoreCase);
        var order = new List<List<Recipient>>();
        foreach (var r in chunk)
        {
            if (!groups.TryGetValue(r.Domain, out var group))
            {
                groups[r.Domain] = group = [];
                order.Add(group);
            }

            group.Add(r);
        }

        foreach (var group in order)
        {
            for (var i = 0; i < group.Count; i += maxRecipients)
            {
                result.Add([.. group.Skip(i).Take(maxRecipients)]);
            }
        }

        return result;
    }
}
