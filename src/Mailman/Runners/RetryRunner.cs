// retry: moves entries back to out once their backoff has passed.
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class RetryRunner(QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, ILogger<RetryRunner> logger)
    : QueueRunner(queues, QueueSet.Retry, activity, options, time, logger)
{
    /// <summary>
    /// True when the waiting entry's backoff has passed (unreadable ones are claimed, to go to
    /// bad), or when it is due further ahead than any backoff (<paramref name="longestWait"/>,
    /// Retry:MaximumDelay): set by a clock that was ahead and has been stepped back, it would
    /// wait that much longer (a year, review 42).
    /// </summary>
    public static bool IsDue(Switchboard retry, string name, DateTimeOffset now, TimeSpan longestWait)
    {
        try
        {
            return retry.NotBefore(name) is not { } at || at <= now || at - now > longestWait;
        }
        catch (Exception e) when (e is CorruptEntryException or UnauthorizedAccessException)
        {
            return true;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
    }

    protected override bool IsEligible(string name) => IsDue(Queue, name, Time.GetUtcNow(), Options.Retry.MaximumDelay);

    // The entry keeps its name back in out (streamed, not loaded): a crash between the two
    // steps is seen at start-up, as for every hop.
    protected override bool ProcessHead(EntryHead head, CancellationToken stoppingToken)
    {
        var metadata = head.Metadata.Clone();
        metadata.NotBefore = null;
        var name = Queue.Forward(head, Queues[QueueSet.Out], metadata);
        Queue.Finish(head.Claim);
        Log.LogInformation("Retry: {MessageId} to {ListId} back to out as {QueueEntry} ({Count} recipients, attempt {Attempts})",
            metadata.MessageIdForLog, metadata.List, name, metadata.RecipientCount, metadata.Attempts + 1);
        return true;
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
        => throw new InvalidOperationException("the retry runner works on entry heads");
}
