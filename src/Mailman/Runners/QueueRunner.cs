// The base loop of every runner (Mailman's Runner): claim the oldest entry, process it, and
// never die. An entry that cannot be read goes to bad; an entry whose processing throws goes to
// shunt with the error beside it. Nothing is deleted that was not processed.
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public abstract class QueueRunner(QueueSet queues, string queueName, Activity activity, MailmanOptions options, TimeProvider time, ILogger logger)
    : BackgroundService
{
    protected QueueSet Queues { get; } = queues;

    protected Switchboard Queue { get; } = queues[queueName];

    protected ILogger Log { get; } = logger;

    protected TimeProvider Time { get; } = time;

    protected MailmanOptions Options { get; } = options;

    protected string RunnerName => GetType().Name;

    /// <summary>Processes one claimed entry; must finish, move or unclaim it.</summary>
    protected abstract void Process(LoadedEntry entry, CancellationToken stoppingToken);

    /// <summary>Which waiting entries may be claimed now (retry: only those due).</summary>
    protected virtual bool IsEligible(string name) => true;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        Log.LogInformation("{Runner} started on queue {Queue}", RunnerName, Queue.Name);
        while (!stoppingToken.IsCancellationRequested)
        {
            var worked = false;
            try
            {
                worked = RunOnce(stoppingToken);
            }
            catch (Exception e)
            {
                // The loop must not die: an error outside any one entry (a full disk while
                // listing, say) is logged and retried after the poll interval.
                Log.LogError(e, "{Runner} loop error on queue {Queue}", RunnerName, Queue.Name);
            }

            if (!worked)
            {
                try
                {
                    await Queue.Signal!.WaitAsync(Options.Queues.PollInterval, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        Log.LogInformation("{Runner} stopped", RunnerName);
    }

    /// <summary>Claims and processes one entry; false when there was none.</summary>
    public bool RunOnce(CancellationToken stoppingToken)
    {
        var claim = Queue.TryClaim(IsEligible);
        if (claim is null)
        {
            return false;
        }

        using var busy = activity.Begin();
        LoadedEntry entry;
        try
        {
            entry = Queue.Load(claim);
        }
        catch (Exception e) when (e is CorruptEntryException or IOException)
        {
            Log.LogError("{Runner}: entry {QueueEntry} in {Queue} is unreadable, moved to bad: {Error}", RunnerName, claim.Name, Queue.Name, e.Message);
            Queue.MoveRaw(claim, Queues[QueueSet.Bad]);
            return true;
        }

        try
        {
            Process(entry, stoppingToken);
        }
        catch (Exception e)
        {
            Shunt(entry, e);
        }

        return true;
    }

    /// <summary>The list an entry names; a name that is not a safe LIST@HOST never goes further.</summary>
    /// <exception cref="InvalidOperationException">The entry names an invalid list.</exception>
    protected static Lists.ListName ListOf(EntryMetadata metadata)
        => Lists.ListName.TryParse(metadata.List, out var name, out var error)
            ? name
            : throw new InvalidOperationException($"the entry names an invalid list: {error}");

    /// <summary>Moves an entry to shunt with the error recorded in its metadata.</summary>
    protected void Shunt(LoadedEntry entry, Exception error)
    {
        var metadata = entry.Metadata.Clone();
        metadata.FromQueue = Queue.Name;
        metadata.Error = error.GetType().Name + ": " + error.Message;
        var name = Queues[QueueSet.Shunt].Enqueue(metadata, entry.Message, entry.Metadata.HasRecipients ? Queue.Recipients(entry) : null, entry.Claim.Name);
        Queue.Finish(entry.Claim);
        Log.LogError(error, "{Runner}: entry {QueueEntry} of {ListId} (Message-Id {MessageId}) shunted as {ShuntEntry}: {Error}",
            RunnerName, entry.Claim.Name, metadata.List, metadata.MessageId, name, metadata.Error);
    }
}
