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
        var name = SendBack(Queue, head, Queues[QueueSet.Out]);
        Log.LogInformation("Retry: {MessageId} to {ListId} back to out as {QueueEntry} ({Count} recipients, attempt {Attempts})",
            head.Metadata.MessageIdForLog, head.Metadata.List, name, head.Metadata.RecipientCount, head.Metadata.Attempts + 1);
        return true;
    }

    /// <summary>
    /// Moves a claimed retry entry back to <paramref name="out"/> under its name, its backoff
    /// cleared, and finishes the claim: what this runner does when the backoff has passed, and
    /// what `queue flush` does at once (after a relay outage, say).
    /// </summary>
    public static string SendBack(Switchboard retry, EntryHead head, Switchboard @out)
    {
        var metadata = head.Metadata.Clone();
        metadata.NotBefore = null;
        var name = retry.Forward(head, @out, metadata);
        retry.Finish(head.Claim);
        return name;
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
        => throw new InvalidOperationException("the retry runner works on entry heads");
}
