// bounces: mail returned to LIST-bounces@ and LIST-bounces+VERP@. Claims a batch, classifies
// each message (Bounces/BounceClassifier), hands the batch to the bounce processor (one database
// transaction for every score), then finishes each entry or sets it aside where an operator sees
// it (unrecognized, bad). Also runs the processor's warning sweep at start and every
// Bounces:SweepInterval, and deletes what waited in unrecognized longer than
// Bounces:UnrecognizedKeepDays. It never decides what a bounce means and never writes mail itself.
using System.Globalization;
using Mailman.Bounces;
using Mailman.Delivery;
using Mailman.Instance;
using Mailman.Notices;
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

    /// <summary>
    /// A bounce larger than this is never read whole: the owners get its headers and at most
    /// this much of its start (real DSNs are a few KB; the largest of Mailman 2.1's corpus is 8 KB;
    /// what makes a bounce large is the original it returns).
    /// </summary>
    public const int ForwardLimit = 1024 * 1024;

    /// <summary>
    /// How much of a bounce the classifier parses (in place, part contents left in the file): the
    /// classifier's own limit on a delivery-status part, so a DSN naming 10,000 recipients is read
    /// whole, and a multi-GB bounce is never scanned to its end.
    /// </summary>
    public const long ClassifyWindow = 16L * 1024 * 1024;

    /// <summary>After a sweep that failed (a full disk, a locked database), the next one comes this soon, not an interval later.</summary>
    public static readonly TimeSpan SweepRetry = TimeSpan.FromMinutes(1);

    private volatile bool _sweepFailed;

    protected override int BatchSize => Math.Max(1, Options.Bounces.BatchSize);

    /// <summary>The start-up sweep runs before the host reports started (and before --exit-when-idle looks).</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        Sweep();
        return base.StartAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
        => Task.WhenAll(base.ExecuteAsync(stoppingToken), SweepPeriodically(stoppingToken));

    /// <summary>The wait before the next sweep: the interval, or <see cref="SweepRetry"/> after a failed one.</summary>
    public TimeSpan NextSweepDelay => _sweepFailed && SweepRetry < Options.Bounces.SweepInterval ? SweepRetry : Options.Bounces.SweepInterval;

    /// <summary>
    /// Warnings and removals that are due now, then the expiry of <c>unrecognized</c>; errors
    /// are logged and the sweep is tried again after <see cref="SweepRetry"/>.
    /// </summary>
    /// <returns>The warning and removal steps taken.</returns>
    public int Sweep()
    {
        using var busy = Activity.Begin();
        var steps = 0;
        var failed = false;
        try
        {
            steps = processor.Sweep(Time.GetUtcNow());
        }
        catch (Exception e)
        {
            // Never fatal, at start least of all: the daemon delivers posts without its sweep.
            failed = true;
            Log.LogError(e, "Bounce sweep failed: {Error}; retried in {Interval}", e.Message, SweepRetry < Options.Bounces.SweepInterval ? SweepRetry : Options.Bounces.SweepInterval);
        }

        try
        {
            ExpireUnrecognized();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            failed = true;
            Log.LogError(e, "Expiry of the unrecognized queue failed: {Error}; retried at the next sweep", e.Message);
        }

        _sweepFailed = failed;
        return steps;
    }

    /// <summary>
    /// Deletes the entries of <c>unrecognized</c> that arrived more than
    /// Bounces:UnrecognizedKeepDays ago (a forged VERP local part, an owner's notice that
    /// bounced, a list without owners nobody fixed), one log line each.
    /// </summary>
    /// <returns>How many were deleted.</returns>
    public int ExpireUnrecognized()
    {
        var days = Options.Bounces.UnrecognizedKeepDays;
        if (days <= 0)
        {
            return 0;
        }

        var queue = Queues[QueueSet.Unrecognized];
        var now = Time.GetUtcNow();
        var expired = 0;
        foreach (var name in queue.Pending())
        {
            EntryMetadata metadata;
            try
            {
                metadata = queue.ReadMetadata(name);
            }
            catch (Exception e) when (e is CorruptEntryException or IOException or UnauthorizedAccessException)
            {
                continue; // unshunted meanwhile, or unreadable: left for the operator
            }

            var arrived = metadata.Received != default ? metadata.Received : NameTime(name);
            if (arrived is null || now - arrived.Value < TimeSpan.FromDays(days) || TryClaim(queue, name) is not { } claim)
            {
                continue;
            }

            string reason;
            try
            {
                reason = queue.ReadState(name)?.Error ?? "unknown";
            }
            catch (EntryLockedException)
            {
                reason = "not known (its state file is locked by another process)";
            }

            queue.Finish(claim);
            expired++;
            Log.LogWarning("Bounce: entry {QueueEntry} of {ListId} kept in unrecognized since {Received} deleted after {Days} days (Bounces:UnrecognizedKeepDays); it was kept because: {Reason}",
                name, metadata.List, arrived.Value, days, reason);
        }

        return expired;
    }

    // A directory or link where its claim goes (review 46): left for the operator, as an
    // unreadable one is; the sweep (and the runner's idle) goes on.
    private static ClaimedEntry? TryClaim(Switchboard queue, string name)
    {
        try
        {
            return queue.Claim(name);
        }
        catch (EntryBlockedException)
        {
            return null;
        }
    }

    // Entry names start with the enqueue time in microseconds since the epoch (17 digits).
    private static DateTimeOffset? NameTime(string name)
        => name.Length >= 17 && long.TryParse(name.AsSpan(0, 17), NumberStyles.None, CultureInfo.InvariantCulture, out var micros)
            ? DateTimeOffset.UnixEpoch.AddTicks(micros * 10) : null;

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
                Load = () => ForOwners(head),
                Replayed = metadata.Recoveries > 0,
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
                await Task.Delay(NextSweepDelay, Time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Sweep();
        }
    }

    // Parsed in place (MimeKit's persistent mode: part contents stay in the file), at most its
    // first ClassifyWindow bytes, and classified; the classifier reads bounded amounts, so a
    // 20 MB bounce costs what a small one does, and a 5 GB one is not scanned to its end.
    private BounceAnalysis Classify(EntryHead head)
    {
        using var file = Queue.OpenMessage(head);
        using var stream = head.Metadata.MessageLength > ClassifyWindow ? new MimeKit.IO.BoundStream(file, 0, ClassifyWindow, leaveOpen: true) : file;
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

    // What the owners get attached: the message whole (message/rfc822) up to ForwardLimit;
    // above it, only its first ForwardLimit bytes are read, and the owners get a note, the
    // headers (text/rfc822-headers) and the first part as far as it got.
    private MimeEntity? ForOwners(EntryHead head)
    {
        try
        {
            using var stream = Queue.OpenMessage(head);
            var length = head.Metadata.MessageLength;
            if (length <= ForwardLimit)
            {
                // Its headers alone when a line is longer than a relay need take (review 75).
                return NoticeAttachments.Post(MimeMessage.Load(stream, CancellationToken.None), length);
            }

            var prefix = new byte[ForwardLimit];
            var n = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
            var start = MimeMessage.Load(new MemoryStream(prefix, 0, n, writable: false), CancellationToken.None);
            var shortened = new Multipart("mixed")
            {
                new TextPart("plain")
                {
                    Text = string.Create(CultureInfo.InvariantCulture,
                        $"This bounce is {length} bytes, too large to forward whole (over {ForwardLimit / 1024} KB): its headers and the start of its first part follow; the rest was not read.\n"),
                },
                NoticeAttachments.HeadersOf(start),
            };
            if ((start.Body is Multipart { Count: > 0 } multipart ? multipart[0] : start.Body) is { } first)
            {
                shortened.Add(first);
            }

            return shortened;
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
