// outgoing: prepares each decorated post once and delivers it to its recipients. Recipients the
// server deferred go to retry with backoff; bounces are logged per member; on shutdown the
// recipients not yet attempted are put back in out. The entry is deleted only after all of that
// is durably queued.
using Mailman.Delivery;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Queues;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class OutgoingRunner(
    QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, ILogger<OutgoingRunner> logger)
    : QueueRunner(queues, QueueSet.Out, activity, options, time, logger)
{
    private readonly PostDelivery _delivery = new(options.Smtp);

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
    {
        var metadata = entry.Metadata;
        var list = ListName.Parse(metadata.List);
        var post = PreparedPost.Create(entry.Message, metadata.Personalized ? metadata.SlotNonce : null);
        var now = Time.GetUtcNow();
        var cpu = Process_TotalProcessorTime();
        using var report = _delivery.Deliver(post, list, metadata.Personalized, Queue.Recipients(entry), stoppingToken);

        foreach (var (recipient, status, response) in report.Bounced)
        {
            Log.LogWarning("Bounce: {Recipient} of {ListId} refused Message-Id {MessageId}: {SmtpStatus} {SmtpResponse}",
                recipient.Address, list.Fqdn, metadata.MessageId, status, response);
        }

        var deferred = report.Deferred.Select(d => d.Recipient);
        if (report.Stop == DeliveryStop.ServerUnreachable)
        {
            deferred = deferred.Concat(report.Remaining);
            Log.LogWarning("SMTP server unreachable delivering {MessageId} to {ListId}: {Error}", metadata.MessageId, list.Fqdn, report.StopReason);
        }

        var deferredCount = Defer(entry, metadata, deferred, now);
        long putBack = 0;
        if (report.Stop == DeliveryStop.Shutdown)
        {
            var back = metadata.Clone();
            var name = EnqueueIfAny(Queues[QueueSet.Out], back, entry.Message, report.Remaining);
            putBack = back.RecipientCount;
            Log.LogInformation("Shutdown: {Count} recipients of {MessageId} not yet attempted, put back in out as {QueueEntry}", putBack, metadata.MessageId, name);
        }

        Queue.Finish(entry.Claim);
        var seconds = report.Elapsed.TotalSeconds;
        Log.LogInformation(
            "Post {MessageId} to {ListId} delivered: {Recipients} recipients, {Delivered} delivered, {Deferred} deferred, {Bounced} bounced, {PutBack} put back, in {Seconds:F2}s ({Rate:F0} msg/s, {CpuSeconds:F2}s CPU), {Transactions} transactions",
            metadata.MessageId, list.Fqdn, metadata.RecipientCount, report.Delivered, deferredCount, report.Bounced.Count, putBack, seconds,
            seconds > 0 ? report.Transactions / seconds : 0, (Process_TotalProcessorTime() - cpu).TotalSeconds, report.Transactions);
    }

    private long Defer(LoadedEntry entry, EntryMetadata metadata, IEnumerable<Recipient> deferred, DateTimeOffset now)
    {
        var retry = metadata.Clone();
        retry.Attempts++;
        retry.FirstAttempt ??= now;
        var expired = now - retry.FirstAttempt.Value >= Options.Retry.MaximumLifetime;
        if (expired)
        {
            long count = 0;
            foreach (var r in deferred)
            {
                count++;
                Log.LogWarning("Bounce: {Recipient} of {ListId} gave up on Message-Id {MessageId} after {Attempts} attempts since {FirstAttempt}",
                    r.Address, metadata.List, metadata.MessageId, retry.Attempts, retry.FirstAttempt);
            }

            if (count > 0)
            {
                Log.LogWarning("Retry lifetime of {MessageId} to {ListId} expired: {Count} recipients recorded as bounced", metadata.MessageId, metadata.List, count);
            }

            return count;
        }

        retry.NotBefore = now + Options.Retry.DelayFor(retry.Attempts);
        var name = EnqueueIfAny(Queues[QueueSet.Retry], retry, entry.Message, deferred);
        if (name is not null)
        {
            Log.LogWarning("{Count} recipients of {MessageId} to {ListId} deferred to retry as {QueueEntry}, attempt {Attempts}, next at {NotBefore}",
                retry.RecipientCount, metadata.MessageId, metadata.List, name, retry.Attempts, retry.NotBefore);
            return retry.RecipientCount;
        }

        return 0;
    }

    /// <summary>Enqueues only when <paramref name="recipients"/> has at least one element (single pass).</summary>
    private static string? EnqueueIfAny(Switchboard queue, EntryMetadata metadata, byte[] message, IEnumerable<Recipient> recipients)
    {
        using var e = recipients.GetEnumerator();
        if (!e.MoveNext())
        {
            return null;
        }

        return queue.Enqueue(metadata, message, Rest(e));

        static IEnumerable<Recipient> Rest(IEnumerator<Recipient> e)
        {
            do
            {
                yield return e.Current;
            }
            while (e.MoveNext());
        }
    }

    private static TimeSpan Process_TotalProcessorTime()
    {
        using var p = System.Diagnostics.Process.GetCurrentProcess();
        return p.TotalProcessorTime;
    }
}
