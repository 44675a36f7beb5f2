// Delivers one prepared post to a stream of recipients over N parallel SMTP connections, each on
// its own thread with synchronous sends (cheaper than SendAsync per copy). Personalized posts go
// one recipient per transaction with a VERP sender; others in batches of MaxRecipients grouped
// by domain. It reports what became of every recipient; it never touches a queue.
using System.Collections.Concurrent;
using System.Diagnostics;
using Mailman.Delivery.Smtp;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Queues;

namespace Mailman.Delivery;

public enum DeliveryStop
{
    /// <summary>Every recipient was attempted.</summary>
    Completed,

    /// <summary>The host is stopping: recipients not yet attempted must be put back.</summary>
    Shutdown,

    /// <summary>The server could not be reached: recipients not yet attempted wait in retry.</summary>
    ServerUnreachable,
}

/// <summary>What became of a post's recipients. Dispose after reading <see cref="Remaining"/>.</summary>
public sealed class DeliveryReport : IDisposable
{
    private IEnumerator<Recipient[]>? _rest;

    public long Delivered { get; set; }

    public List<(Recipient Recipient, int Status, string Response)> Deferred { get; } = [];

    public List<(Recipient Recipient, int Status, string Response)> Bounced { get; } = [];

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

            while (_rest is not null && _rest.MoveNext())
            {
                foreach (var r in _rest.Current)
                {
                    yield return r;
                }
            }
        }
    }

    public bool HasRemaining => NotAttempted.Count > 0 || Stop != DeliveryStop.Completed;

    public DeliveryStop Stop { get; set; }

    public string? StopReason { get; set; }

    public TimeSpan Elapsed { get; set; }

    public long Transactions { get; set; }

    internal void KeepRest(IEnumerator<Recipient[]> rest) => _rest = rest;

    public void Dispose() => _rest?.Dispose();
}

public sealed class PostDelivery(SmtpOptions options)
{
    /// <summary>Delivers <paramref name="post"/>; stops taking new recipients when <paramref name="stop"/> fires.</summary>
    public DeliveryReport Deliver(PreparedPost post, ListName list, bool personalized, IEnumerable<Recipient> recipients, CancellationToken stop)
    {
        var report = new DeliveryReport();
        var watch = Stopwatch.StartNew();
        using var work = new BlockingCollection<Recipient[]>(options.Connections * 4);
        var gate = new object();
        var unreachable = 0;
        string? unreachableReason = null;

        var workers = new Thread[options.Connections];
        for (var i = 0; i < workers.Length; i++)
        {
            workers[i] = new Thread(() =>
            {
                using var connection = new SmtpConnection(options);
                var carrier = new Carrier(post);
                var scratch = RecipientValues.NewScratch();
                var result = new TransactionResult();
                foreach (var batch in work.GetConsumingEnumerable())
                {
                    if (stop.IsCancellationRequested || Volatile.Read(ref unreachable) != 0)
                    {
                        lock (gate)
                        {
                            report.NotAttempted.AddRange(batch);
                        }

                        continue;
                    }

                    result.Clear();
                    try
                    {
                        string sender;
                        if (personalized)
                        {
                            carrier.SetRecipient(RecipientValues.For(batch[0], scratch));
                            sender = Verp.Encode(list, batch[0].Address);
                        }
                        else
                        {
                            carrier.SetRecipient(null);
                            sender = list.BouncesAddress;
                        }

                        connection.Send(carrier.Message, sender, batch, result);
                    }
                    catch (SmtpConnectException e)
                    {
                        lock (gate)
                        {
                            unreachableReason ??= e.Message;
                            report.NotAttempted.AddRange(batch);
                        }

                        Volatile.Write(ref unreachable, 1);
                        continue;
                    }

                    lock (gate)
                    {
                        report.Transactions++;
                        report.Delivered += result.Delivered.Count;
                        report.Deferred.AddRange(result.Deferred);
                        report.Bounced.AddRange(result.Bounced);
                    }
                }
            })
            {
                IsBackground = true,
                Name = $"smtp-{i}",
            };
            workers[i].Start();
        }

        var batches = Batches(recipients, personalized).GetEnumerator();
        try
        {
            while (batches.MoveNext())
            {
                var batch = batches.Current;
                if (stop.IsCancellationRequested || Volatile.Read(ref unreachable) != 0)
                {
                    lock (gate)
                    {
                        report.NotAttempted.AddRange(batch);
                    }

                    break;
                }

                work.Add(batch, CancellationToken.None);
            }
        }
        finally
        {
            work.CompleteAdding();
            foreach (var w in workers)
            {
                w.Join();
            }
        }

        report.Stop = stop.IsCancellationRequested ? DeliveryStop.Shutdown
            : unreachable != 0 ? DeliveryStop.ServerUnreachable
            : DeliveryStop.Completed;
        report.StopReason = unreachableReason;
        report.KeepRest(batches);
        report.Elapsed = watch.Elapsed;
        return report;
    }

    /// <summary>Personalized: one recipient each. Otherwise: up to MaxRecipients of one domain.</summary>
    private IEnumerable<Recipient[]> Batches(IEnumerable<Recipient> recipients, bool personalized)
    {
        if (personalized)
        {
            foreach (var r in recipients)
            {
                yield return [r];
            }

            yield break;
        }

        // Group by domain within a bounded window, so memory does not grow with the list.
        var window = new Dictionary<string, List<Recipient>>(StringComparer.OrdinalIgnoreCase);
        var pending = 0;
        var windowSize = Math.Max(options.MaxRecipients * 20, 10_000);
        foreach (var r in recipients)
        {
            if (!window.TryGetValue(r.Domain, out var group))
            {
                window[r.Domain] = group = [];
            }

            group.Add(r);
            pending++;
            if (group.Count == options.MaxRecipients)
            {
                yield return [.. group];
                pending -= group.Count;
                group.Clear();
            }

            if (pending >= windowSize)
            {
                foreach (var batch in Flush(window))
                {
                    yield return batch;
                }

                pending = 0;
            }
        }

        foreach (var batch in Flush(window))
        {
            yield return batch;
        }
    }

    private static IEnumerable<Recipient[]> Flush(Dictionary<string, List<Recipient>> window)
    {
        foreach (var group in window.Values)
        {
            if (group.Count > 0)
            {
                yield return [.. group];
            }
        }

        window.Clear();
    }
}
