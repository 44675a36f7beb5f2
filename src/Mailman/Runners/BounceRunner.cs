// bounces: mail returned to LIST-bounces@ and LIST-bounces+VERP@. Claims a batch, classifies
// each message (Bounces/BounceClassifier), hands the batch to the bounce processor (one database
// transaction for every score), then finishes each entry or sets it aside where an operator sees
// it (unrecognized, bad). Also runs the processor's warning sweep at start and every
// Bounces:SweepInterval. It never decides what a bounce means and never writes mail itself.
using Mailman.Bounces;
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Runners;

public sealed class BounceRunner(QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, BounceProcessor processor, ILogger<BounceRunner> logger)
    : QueueRunner(queues, QueueSet.Bounces, activity, options, time, logger)
{
    // Only the first 256 KB are searched for our notice marker: a returned notice shows its
    // headers near the top, and a 20 MB bounce is not read whole for it.
    private const int NoticeMarkerWindow = 256 * 1024;

    protected override int BatchSize => Math.Max(1, Options.Bounces.BatchSize);

    /// <summary>The start-up sweep runs before the host reports started (and before --exit-when-idle looks).</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        Sweep();
        return base.StartAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
        => Task.WhenAll(base.ExecuteAsync(stoppingToken), SweepPeriodically(stoppingToken));

    /// <summary>Warnings and removals that are due now; errors are logged and retried at the next sweep.</summary>
    /// <returns>The steps taken.</returns>
    public int Sweep()
    {
        using var busy = Activity.Begin();
        try
        {
            return processor.Sweep(Time.GetUtcNow());
        }
        catch (Exception e)
        {
            // Never fatal, at start least of all: the daemon delivers posts without its sweep.
            Log.LogError(e, "Bounce sweep failed: {Error}; retried in {Interval}", e.Message, Options.Bounces.SweepInterval);
            return 0;
        }
    }

    // A crash between the processor's transaction and the finishes below replays the batch:
    // every member scored it on the day its bounce arrived already (at most once a day), and
    // each forward or notice has the name it had the first time, so the replay adds nothing.
    protected override void ProcessBatch(IReadOnlyList<EntryHead> heads, CancellationToken stoppingToken)
    {
        var messages = new List<ReturnedMessage>(heads.Count);
        foreach (var head in heads)
        {
            var metadata = head.Metadata;
            messages.Add(new ReturnedMessage(head.Claim.Name, ListOf(metadata), metadata.Destination, Classify(head),
                metadata.Received == default ? Time.GetUtcNow() : metadata.Received)
            {
                IsNoticeBounce = () => ShowsNoticeMarker(head),
                Load = () => Load(head),
            });
        }

        var results = processor.Process(messages);
        for (var i = 0; i < heads.Count; i++)
        {
            var (disposition, reason) = results[i];
            switch (disposition)
            {
                case BounceDisposition.Done:
                    Queue.Finish(heads[i].Claim);
                    break;
                case BounceDisposition.Unrecognized:
                    Queue.SetAside(heads[i].Claim, Queues[QueueSet.Unrecognized], reason);
                    break;
                default:
                    Queue.SetAside(heads[i].Claim, Queues[QueueSet.Bad], reason);
                    break;
            }
        }
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
        => throw new InvalidOperationException("the bounce runner works on batches of entry heads");

    private async Task SweepPeriodically(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Options.Bounces.SweepInterval, Time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Sweep();
        }
    }

    // Parsed in place (MimeKit's persistent mode: part contents stay in the file) and classified;
    // the classifier reads bounded amounts, so a 20 MB bounce costs what a small one does.
    private BounceAnalysis Classify(EntryHead head)
    {
        using var stream = Queue.OpenMessage(head);
        try
        {
            using var message = MimeMessage.Load(stream, persistent: true, CancellationToken.None);
            return BounceClassifier.Classify(message);
        }
        catch (FormatException)
        {
            return BounceAnalysis.Unrecognized;
        }
    }

    private MimeMessage? Load(EntryHead head)
    {
        try
        {
            using var stream = Queue.OpenMessage(head);
            return MimeMessage.Load(stream, CancellationToken.None);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private bool ShowsNoticeMarker(EntryHead head)
    {
        using var stream = Queue.OpenMessage(head);
        var buffer = new byte[(int)Math.Min(NoticeMarkerWindow, head.Metadata.MessageLength)];
        var n = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        return System.Text.Encoding.Latin1.GetString(buffer, 0, n).Contains("X-Mailman-Notice:", StringComparison.OrdinalIgnoreCase);
    }
}
