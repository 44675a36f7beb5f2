// retry: moves entries back to out once their backoff has passed.
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class RetryRunner(QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, ILogger<RetryRunner> logger)
    : QueueRunner(queues, QueueSet.Retry, activity, options, time, logger)
{
    /// <summary>True when the waiting entry's backoff has passed (unreadable ones are claimed, to go to bad).</summary>
    public static bool IsDue(Switchboard retry, string name, DateTimeOffset now)
    {
        try
        {
            var metadata = retry.ReadMetadata(name);
            return metadata.NotBefore is null || metadata.NotBefore <= now;
        }
        catch (CorruptEntryException)
        {
            return true;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
    }

    protected override bool IsEligible(string name) => IsDue(Queue, name, Time.GetUtcNow());

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
    {
        var metadata = entry.Metadata.Clone();
        metadata.NotBefore = null;
        var name = Queues[QueueSet.Out].Enqueue(metadata, entry.Message, Queue.Recipients(entry));
        Queue.Finish(entry.Claim);
        Log.LogInformation("Retry: {MessageId} to {ListId} back to out as {QueueEntry} ({Count} recipients, attempt {Attempts})",
            metadata.MessageId, metadata.List, name, metadata.RecipientCount, metadata.Attempts + 1);
    }
}
