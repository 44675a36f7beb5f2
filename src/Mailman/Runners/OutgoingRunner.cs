// outgoing: prepares each decorated post once and delivers it to its recipients, recording
// progress in the entry's checkpoint as it goes. Recipients the server deferred go to retry with
// backoff; recipients refused with a 5xx are not retried, and those refusals that are about the
// address are scored as bounces (Bounces/BounceProcessor, the same code as mailed bounces) and
// logged per member; on shutdown the entry goes back to the queue with its
// checkpoint, so the next run resumes where this one stopped. The entry is deleted only after
// every outcome is durably queued.
using System.IO.Abstractions;
using Mailman.Bounces;
using Mailman.Delivery;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Queues;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class OutgoingRunner(
    QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, IFileSystem fs, InstancePaths paths, ILogger<OutgoingRunner> logger,
    BounceProcessor? bounces = null)
    : QueueRunner(queues, QueueSet.Out, activity, options, time, logger)
{
    // Relay backoff and pacing run on the system clock, not `time`: their waits are real (a
    // delivery thread sleeps until a token is due), and a fake clock that a component test never
    // moves would never refill the bucket the thread waits on. The daemon's `time` is the system's.
    // relays.json: the pool throttles it (a change of state at once, the counts once a second);
    // the writer only says once that it cannot be written.
    private readonly PostDelivery _delivery = new(options.Smtp, logger, new ThrottledFileWriter<IReadOnlyList<Delivery.RelayStatus>>(
            RelaysFile.PathOf(paths), TimeProvider.System, TimeSpan.Zero, relays => RelaysFile.Write(paths, relays), logger).Offer,
        mx: options.Smtp.GroupByMx ? new MxGroups(Dmarc.DnsTxtResolver.FromOptions(options.Dns).PrimaryMxAsync, time) : null);
    private readonly InstancePaths _paths = paths;

    /// <summary>The relay pool (its backoff is on the system clock, see above).</summary>
    internal RelayPool Relays => _delivery.Pool;

    // `status` shows the relays from the start, not only once a post has gone out.
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _delivery.Pool.Idle();
        return base.StartAsync(cancellationToken);
    }

    // Entries that made way for others (DeliveryStop.Yielded), in the order they did: claimed
    // again only when no other entry waits (or, after making way for small entries, once those
    // that waited then are sent), the longest waiting first. Lost with the process, which only
    // changes the order.
    private readonly List<string> _yielded = [];

    // Whether each waiting entry is a small one (a notice, a reply, a post to few members: one
    // transaction's worth), read once from its metadata: a long delivery makes way for them.
    private readonly Dictionary<string, bool> _small = new(StringComparer.Ordinal);

    private const int SmallEntry = 100;

    // After making way for small entries: how many more small entries go before the post that
    // made way resumes (those that waited when it did), so a stream of notices arriving as fast
    // as they go cannot hold it back for good (review 92), nor a bigger post that came meanwhile
    // go first. Null: no such turn is under way.
    private int? _makeWayBudget;

    // How often each entry made way: after the first turn, its "makes way" and "Resuming" lines
    // go to Debug (several posts waiting on one paced destination take turns every slice).
    private readonly Dictionary<string, int> _turns = [];

    protected override ClaimedEntry? ClaimNext()
    {
        if (_yielded.Count == 0)
        {
            return Queue.TryClaim();
        }

        if (_makeWayBudget is > 0 && Queue.TryClaim(IsSmall) is { } small)
        {
            _makeWayBudget--;
            return small;
        }

        if (_makeWayBudget is null && Queue.TryClaim(name => !_yielded.Contains(name)) is { } claim)
        {
            return claim;
        }

        _makeWayBudget = null;
        while (_yielded.Count > 0)
        {
            var name = _yielded[0];
            _yielded.RemoveAt(0);
            if (Queue.Claim(name) is { } again)
            {
                return again;
            }
        }

        return null;
    }

    private bool IsSmall(string name) => !_yielded.Contains(name) && _small.GetValueOrDefault(name);

    // Under the delivery's lock, at most once a second past the slice, while this runner's
    // thread waits in the delivery: the first small entry waiting that has not made way itself.
    private bool SmallEntryWaits()
    {
        var read = 0;
        foreach (var name in Queue.Waiting())
        {
            if (_yielded.Contains(name))
            {
                continue;
            }

            if (!_small.ContainsKey(name) && read++ == 64)
            {
                break; // the rest at the next look
            }

            if (Small(name))
            {
                return true;
            }
        }

        return false;
    }

    // Whether a waiting entry is small, read once from its metadata.
    private bool Small(string name)
    {
        if (!_small.TryGetValue(name, out var small))
        {
            try
            {
                small = Queue.ReadMetadata(name).RecipientCount <= SmallEntry;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CorruptEntryException)
            {
                return false; // claimed meanwhile, or for the runner to set aside
            }

            _small[name] = small;
        }

        return small;
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
    {
        if (_small.Count > 100_000)
        {
            _small.Clear(); // names of entries long gone
        }

        _small.Remove(entry.Claim.Name);
        var metadata = entry.Metadata;
        var list = ListOf(metadata);
        using var checkpoint = DeliveryCheckpoint.Open(fs, Queue, entry.Claim);
        if (checkpoint.Final)
        {
            // A crash came after every outcome was queued and before the delete.
            Queue.Finish(entry.Claim);
            return;
        }

        if (checkpoint.TornRecords > 0)
        {
            Log.LogWarning("Checkpoint of {QueueEntry} had {Torn} torn records (a crash or a full disk mid-write); they were dropped and their chunks are sent again",
                entry.Claim.Name, checkpoint.TornRecords);
        }

        if (checkpoint.FoundEmpty)
        {
            // Review 71: an emptied log only had the generic recovery line.
            Log.LogWarning("Checkpoint of {QueueEntry} ({MessageId} to {ListId}) is empty (a crash before its first record, or truncated): no progress is known, so the delivery starts from the first member (the copies sent before go again)",
                entry.Claim.Name, metadata.MessageIdForLog, list.Fqdn);
        }

        if (checkpoint.PlacesLost > 0)
        {
            Log.LogError("Checkpoint of {QueueEntry} ({MessageId} to {ListId}) has lost its first record, how the recipients were cut (damaged on disk, or edited): the {Chunks} chunks it records as done cannot be placed, so the post goes again to every member (duplicates, rather than members skipped)",
                entry.Claim.Name, metadata.MessageIdForLog, list.Fqdn, checkpoint.PlacesLost);
        }

        if (checkpoint.ChunksRecorded > 0)
        {
            Log.Log(_turns.GetValueOrDefault(entry.Claim.Name) > 1 ? LogLevel.Debug : LogLevel.Information, "Resuming delivery of {MessageId} to {ListId} ({QueueEntry}) after {Chunks} recorded chunks of {ChunkSize}",
                metadata.MessageIdForLog, list.Fqdn, entry.Claim.Name, checkpoint.ChunksRecorded, checkpoint.ChunkSize);
        }

        if (metadata.Flushed == true && _delivery.Pool.TryAgainNow() is { Count: > 0 } ended)
        {
            Log.LogInformation("Relay {Relays} tried again now, before its backoff ends: `queue flush` asked for {QueueEntry}",
                string.Join(", ", ended), entry.Claim.Name);
        }

        // The chunk size is the one the delivery started with: cutting the recipients another
        // way on resume would skip or repeat members.
        var size = _delivery.ChunkSize(metadata.Personalized);
        if (Options.Smtp.Checkpoint)
        {
            checkpoint.Start(size, Options.Smtp.MaxRecipients, _delivery.Grouping, PostDelivery.BatchWindow(size));
        }

        var chunkSize = checkpoint.ChunkSize ?? size;
        var grouping = checkpoint.Grouping ?? _delivery.Grouping;
        var post = PreparedPost.Create(entry.Message, metadata.Personalized ? metadata.SlotNonce : null);
        var now = Time.GetUtcNow();
        var cpu = CpuTime();
        // Done in earlier runs: counted as the recorded chunks are read past (IDeliveryProgress.Skipped).
        var progress = new CheckpointProgress(checkpoint, Options.Smtp.Checkpoint, this, list, metadata, new DeliveryProgressSnapshot(
            Environment.ProcessId, list.Fqdn, metadata.MessageId, entry.Claim.Name, metadata.RecipientCount, 0, 0, 0, 0, now, now));
        // `lists delete` under a delivery stops it as a shutdown would (review 37: the rest of
        // the deleted list got the post); its entry goes to bad below.
        using var deletion = new ListDeletionWatch(fs, _paths.DeletedListMarker(list), entry.Claim.Path, () =>
        {
            using var store = new ListStore(_paths.Database);
            return store.FindList(list) is null;
        }, stoppingToken);
        DeliveryReport report;
        try
        {
            report = _delivery.Deliver(post, list, metadata.Personalized, Queue.Recipients(entry), progress, deletion.Token, metadata.EnvelopeSender, chunkSize,
                Options.StopGrace, reason =>
                {
                    if (reason is null)
                    {
                        Log.LogInformation("Delivery of {MessageId} to {ListId} ({QueueEntry}) records its progress again and goes on", metadata.MessageIdForLog, list.Fqdn, entry.Claim.Name);
                    }
                    else
                    {
                        Log.LogError("Delivery of {MessageId} to {ListId} ({QueueEntry}) cannot record its progress: {Error}; paused until it can",
                            metadata.MessageIdForLog, list.Fqdn, entry.Claim.Name, reason);
                    }
                }, grouping, checkpoint.MaxRecipients,
                Options.Smtp.Checkpoint ? Queue.HasWaiting : null, TimeSpan.FromSeconds(Options.Smtp.YieldAfterSeconds), checkpoint.BatchWindow,
                Options.Smtp.Checkpoint && metadata.RecipientCount > SmallEntry ? SmallEntryWaits : null);
        }
        finally
        {
            progress.Dispose();
            ProgressFile.Clear(_paths);
        }

        using var _ = report;

        if (report.Stop == DeliveryStop.Failed)
        {
            _turns.Remove(entry.Claim.Name);
            // Shunted by the base loop with its checkpoint: `mailman unshunt` resumes it.
            throw new InvalidOperationException($"delivery stopped by an unexpected error after {report.Delivered} copies: {report.Failure!.Message}", report.Failure);
        }

        // A look once more after the delivery: one that ended (every relay down, or with
        // deferrals) in the second after the delete would otherwise write a retry entry newer
        // than the mark, and the retry would deliver the deleted list's post (review 38).
        if (!stoppingToken.IsCancellationRequested && report.Stop != DeliveryStop.Yielded
            && deletion.Deleted
            && (report.Stop != DeliveryStop.Completed || report.Deferred > 0 || checkpoint.Deferred().Any()))
        {
            _turns.Remove(entry.Claim.Name);
            Queue.SetAside(entry.Claim, Queues[QueueSet.Bad], $"the list {list.Fqdn} was deleted during its delivery, after {report.Delivered} copies; the rest not delivered");
            Log.LogWarning("Delivery of {MessageId} to {ListId} ({QueueEntry}) stopped after {Delivered} copies: the list was deleted; the entry is in bad with its checkpoint",
                metadata.MessageIdForLog, list.Fqdn, entry.Claim.Name, report.Delivered);
            return;
        }

        if (report.Stop == DeliveryStop.Shutdown)
        {
            Queue.Unclaim(entry.Claim);
            Log.LogInformation("Shutdown: delivery of {MessageId} to {ListId} stopped after {Delivered} copies; {QueueEntry} stays in out with its checkpoint",
                metadata.MessageIdForLog, list.Fqdn, report.Delivered, entry.Claim.Name);
            return;
        }

        if (report.Stop == DeliveryStop.Yielded)
        {
            Queue.Unclaim(entry.Claim);
            _yielded.Add(entry.Claim.Name);
            var turns = _turns[entry.Claim.Name] = _turns.GetValueOrDefault(entry.Claim.Name) + 1;
            if (report.ForSmallEntries)
            {
                _makeWayBudget = Queue.Waiting().Count(n => !_yielded.Contains(n) && Small(n));
                Log.Log(turns > 1 ? LogLevel.Debug : LogLevel.Information, "Delivery of {MessageId} to {ListId} ({QueueEntry}) makes way for the notices and small posts waiting behind it after {Delivered} copies in {Seconds:F0}s, and goes on after them",
                    metadata.MessageIdForLog, list.Fqdn, entry.Claim.Name, report.Delivered, report.Elapsed.TotalSeconds);
                return;
            }

            Log.Log(turns > 1 ? LogLevel.Debug : LogLevel.Information, "Delivery of {MessageId} to {ListId} ({QueueEntry}) makes way for the posts waiting after {Delivered} copies in {Seconds:F0}s; the rest waits for its paced destinations ({Reason}) and goes on after them",
                metadata.MessageIdForLog, list.Fqdn, entry.Claim.Name, report.Delivered, report.Elapsed.TotalSeconds, report.StopReason);
            return;
        }

        // Every recipient deferred in any run goes to retry; the summary counts this run's.
        var deferred = checkpoint.Deferred();
        var thisRun = report.Deferred;
        if (report.Stop == DeliveryStop.ServerUnreachable)
        {
            deferred = deferred.Concat(report.Remaining.Select(r =>
            {
                thisRun++;
                return r;
            }));
            Log.LogWarning("SMTP server unreachable (every relay is marked down) delivering {MessageId} to {ListId}: {Error}", metadata.MessageIdForLog, list.Fqdn, report.StopReason);
        }

        // Counted as they go to retry: those of earlier runs (review 133: a resumed run's summary
        // said "0 deferred" beside a retry entry holding the recipient an earlier run deferred).
        long allDeferred = 0;
        var givenUp = Defer(entry, metadata, deferred.Select(r =>
        {
            allDeferred++;
            return r;
        }), now);
        var deferredEarlier = allDeferred - thisRun;
        checkpoint.MarkFinal();
        Queue.Finish(entry.Claim);
        _turns.Remove(entry.Claim.Name, out var madeWay);
        var seconds = report.Elapsed.TotalSeconds;
        var earlier = progress.Earlier;
        Log.LogInformation(
            "{What} {MessageId} to {ListId} delivered: {Recipients} recipients, {Delivered} delivered, {Deferred} deferred, {Bounced} bounced, in {Seconds:F2}s ({Rate:F0} msg/s, {CpuSeconds:F2}s CPU), {Transactions} transactions{Resumed}{GivenUp}",
            What(metadata), metadata.MessageIdForLog, list.Fqdn, metadata.RecipientCount, report.Delivered, thisRun, report.Bounced, seconds,
            seconds > 0 && report.Delivered > 0 ? report.Transactions / seconds : 0, (CpuTime() - cpu).TotalSeconds, report.Transactions,
            (earlier > 0 ? $"; resumed: {earlier} recipients were handled in earlier runs (delivered, deferred or refused there{(deferredEarlier > 0 ? $"; {deferredEarlier} deferred, with this run's" : "")})" : "") + (madeWay > 0 ? $"; made way for other posts {(madeWay == 1 ? "once" : $"{madeWay} times")}" : ""),
            givenUp > 0 ? $"; the retry lifetime expired: {givenUp} deferred recipients given up, none sent to retry" : "");
    }

    // A post, or what the server sends by itself ("Notice welcome", "Owner forward"; review 121:
    // every one was logged as a post).
    private static string What(EntryMetadata metadata) => metadata.Purpose switch
    {
        null or "" => "Post",
        var p when p.StartsWith("notice ", StringComparison.Ordinal) => "Notice " + p["notice ".Length..],
        var p => char.ToUpperInvariant(p[0]) + p[1..],
    };

    // The first attempt is when this delivery began; the backoff counts from its end, so a
    // delivery longer than the delay does not give a retry that is due already. The lifetime is
    // over when the clock says so and the backoffs waited add up to it too: a clock stepped
    // forward (a VM restored from a snapshot, a board without a clock before NTP) gave up every
    // recipient in retry at its next failure (review 42). A first attempt ahead of now was
    // stamped by a clock that was ahead: the backoffs waited alone count then (review 43).
    // Returns how many were given up (the lifetime expired): none went to retry then.
    private long Defer(LoadedEntry entry, EntryMetadata metadata, IEnumerable<Recipient> deferred, DateTimeOffset started)
    {
        var retry = metadata.Clone();
        retry.Flushed = null;
        retry.Parent = entry.Claim.Name;
        retry.Attempts++;
        retry.FirstAttempt ??= started;
        var now = Time.GetUtcNow();
        var elapsed = now - retry.FirstAttempt.Value;
        if ((elapsed >= Options.Retry.MaximumLifetime || elapsed < TimeSpan.Zero) && Options.Retry.Waited(retry.Attempts) >= Options.Retry.MaximumLifetime)
        {
            long count = 0;
            foreach (var r in deferred)
            {
                count++;
                Log.LogWarning("Bounce: {Recipient} of {ListId} gave up on Message-Id {MessageId} after {Attempts} attempts since {FirstAttempt:yyyy-MM-ddTHH:mm:sszzz}",
                    r.Address, metadata.List, metadata.MessageIdForLog, retry.Attempts, retry.FirstAttempt);
            }

            if (count > 0)
            {
                Log.LogWarning("Retry lifetime of {MessageId} to {ListId} expired: {Count} recipients given up (each named above; not scored against them: their failures were temporary)", metadata.MessageIdForLog, metadata.List, count);
            }

            return count;
        }

        retry.NotBefore = now + Options.Retry.DelayFor(retry.Attempts);

        // The retry entry's name derives from this one: after a crash before the checkpoint's
        // final mark, the same deferral finds its entry written and writes nothing twice, and
        // start-up recovery sees from the name that this entry's work is done.
        var name = EnqueueIfAny(Queues[QueueSet.Retry], retry, entry.Message, deferred, RetryName(entry.Claim.Name));
        if (name is null)
        {
            return 0;
        }

        // Numbered as `queue list retry` numbers them (review 109: "attempt 1" here was its "attempt 2").
        Log.LogWarning("{Count} recipients of {MessageId} to {ListId} deferred to retry as {QueueEntry} after attempt {Attempts}, attempt {Next} at {NotBefore:yyyy-MM-ddTHH:mm:sszzz}",
            retry.RecipientCount, metadata.MessageIdForLog, metadata.List, name, retry.Attempts, retry.Attempts + 1, retry.NotBefore);
        return 0;
    }

    /// <summary>The name of the retry entry that takes the deferred recipients of out entry <paramref name="name"/>.</summary>
    public static string RetryName(string name) => Switchboard.DerivedName(name, "retry");

    /// <summary>Enqueues only when <paramref name="recipients"/> has at least one element (single pass).</summary>
    private static string? EnqueueIfAny(Switchboard queue, EntryMetadata metadata, byte[] message, IEnumerable<Recipient> recipients, string name)
    {
        using var e = recipients.GetEnumerator();
        if (!e.MoveNext())
        {
            return null;
        }

        return queue.Enqueue(metadata, message, Rest(e), name);

        static IEnumerable<Recipient> Rest(IEnumerator<Recipient> e)
        {
            do
            {
                yield return e.Current;
            }
            while (e.MoveNext());
        }
    }

    // Once per chunk that had refusals, never per delivered copy. Scoring must not stop a
    // delivery: if the database cannot take it, the refusal is still logged.
    // `attempted`: the chunk's recipients the server answered for good (SmtpRefusals.RefusedAlike).
    private void Refused(ListName list, EntryMetadata metadata, IReadOnlyList<Refusal> bounced, long attempted)
    {
        if (bounces is not null)
        {
            try
            {
                bounces.ProcessRefusals(list, metadata.MessageId,
                    bounced.Select(b => b.ToSmtpRefusal()).ToList(), attempted);
                return;
            }
            catch (Exception e)
            {
                Log.LogError(e, "Bounces refused by the SMTP server for {ListId} could not be scored: {Error}", list.Fqdn, e.Message);
            }
        }

        foreach (var (recipient, status, response, _, _, _, _, _) in bounced)
        {
            Log.LogWarning("Bounce: {Recipient} of {ListId} refused Message-Id {MessageId}: {SmtpStatus} {SmtpResponse}",
                recipient.Address, list.Fqdn, metadata.MessageIdForLog, status, response);
        }
    }

    private static TimeSpan CpuTime()
    {
        using var p = System.Diagnostics.Process.GetCurrentProcess();
        return p.TotalProcessorTime;
    }

    /// <summary>Records chunk progress durably and logs bounces as they happen.</summary>
    private sealed class CheckpointProgress(DeliveryCheckpoint checkpoint, bool durable, OutgoingRunner runner, ListName list, EntryMetadata metadata, DeliveryProgressSnapshot start)
        : IDeliveryProgress, IDisposable
    {
        private readonly object _gate = new();
        private readonly string _entry = start.Entry;
        private DeliveryProgressSnapshot _snapshot = start;

        // `mailman status` shows it: at most once a second, and the last of a burst a second later.
        private readonly ThrottledFileWriter<DeliveryProgressSnapshot> _file = new(ProgressFile.PathOf(runner._paths), runner.Time, TimeSpan.FromSeconds(1),
            snapshot => ProgressFile.Write(runner._paths, snapshot), runner.Log);

        public void Dispose() => _file.Dispose();

        public int TransactionsDone(long chunk) => checkpoint.TransactionsDone(chunk);

        public (string? MessageId, string? Entry) Post => (metadata.MessageId, _entry);

        /// <summary>Recipients found done in earlier runs so far.</summary>
        public long Earlier
        {
            get
            {
                lock (_gate)
                {
                    return _snapshot.ResumedAt;
                }
            }
        }

        public void Skipped(long recipients)
        {
            lock (_gate)
            {
                _snapshot = _snapshot with { Done = _snapshot.Done + recipients, ResumedAt = _snapshot.ResumedAt + recipients };
            }
        }

        public void Record(long chunk, int transactions, long delivered, IReadOnlyList<(Recipient Recipient, int Status, string Response)> deferred, IReadOnlyList<Refusal> bounced, long unanswered)
        {
            var tags = new KeyValuePair<string, object?>("list", list.Fqdn);
            Hosting.Metrics.Delivered.Add(delivered, tags);
            Hosting.Metrics.Deferred.Add(deferred.Count, tags);
            Hosting.Metrics.Bounced.Add(bounced.Count, tags);
            Publish(delivered, deferred.Count, bounced.Count);

            // Scored before the chunk is recorded: a crash in between sends the chunk again and
            // its refusals score again on the same day, which counts once.
            if (bounced.Count > 0)
            {
                runner.Refused(list, metadata, bounced, delivered + deferred.Count + bounced.Count - unanswered);
            }

            if (deferred.Count > 0)
            {
                // Once per chunk, with why: the retry entry keeps the recipients, not the replies.
                runner.Log.LogWarning("{Count} recipients of {MessageId} to {ListId} deferred ({QueueEntry}, chunk {Chunk}): {Reasons}",
                    deferred.Count, metadata.MessageIdForLog, list.Fqdn, _entry, PostDelivery.ChunkName(chunk), Reasons(deferred));
            }

            if (durable || deferred.Count > 0)
            {
                // Deferred recipients are always recorded: the log is where retry finds them.
                checkpoint.Record(chunk, transactions, deferred.Select(d => d.Recipient));
            }
        }

        // The distinct replies (at most three), each with how many recipients it deferred.
        private static string Reasons(IReadOnlyList<(Recipient Recipient, int Status, string Response)> deferred)
        {
            var groups = deferred.GroupBy(d => d.Status == 0 ? d.Response : $"{d.Status} {d.Response}").ToList();
            var shown = groups.Take(3).Select(g => g.Count() == 1 ? g.Key : $"{g.Key} ({g.Count()})");
            return string.Join("; ", shown) + (groups.Count > 3 ? $"; {groups.Count - 3} more" : "");
        }

        private void Publish(long delivered, long deferred, long bounced)
        {
            var now = runner.Time.GetUtcNow();
            lock (_gate)
            {
                _snapshot = _snapshot with
                {
                    Delivered = _snapshot.Delivered + delivered,
                    Deferred = _snapshot.Deferred + deferred,
                    Bounced = _snapshot.Bounced + bounced,
                    Done = _snapshot.Done + delivered + deferred + bounced,
                    Updated = now,
                };

                // Offered under the gate: snapshots reach the file in the order they were made.
                _file.Offer(_snapshot);
            }
        }
    }
}
