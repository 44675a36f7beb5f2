// retry: moves entries back to out once their backoff has passed, or at once when `queue flush`
// asked for them (its requests in var/flush/).
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class RetryRunner(QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, InstancePaths paths, ILogger<RetryRunner> logger)
    : QueueRunner(queues, QueueSet.Retry, activity, options, time, logger)
{
    /// <summary>The extension of a complete request (written as a temporary, then renamed).</summary>
    public const string FlushExtension = ".req";

    // The ids asked for by the requests read so far, and those requests' files: deleted once
    // nothing they ask for waits any more.
    private readonly HashSet<string> _asked = new(StringComparer.Ordinal);
    private readonly HashSet<string> _requests = new(StringComparer.Ordinal);

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
        catch (EntryLockedException)
        {
            return false; // another process holds it: not now (passed over a while)
        }
    }

    protected override bool IsEligible(string name) => _asked.Contains(name) || IsDue(Queue, name, Time.GetUtcNow(), Options.Retry.MaximumDelay);

    // The verb only asks: the move is this runner's, under its own claim, so a verb killed
    // half-way strands nothing (review 63: a claim it left was settled only at the next start).
    protected override ClaimedEntry? ClaimNext()
    {
        ReadFlushRequests();
        var claim = Queue.TryClaim(IsEligible);
        if (claim is null && _requests.Count > 0)
        {
            // Nothing asked for waits any more: the requests are done.
            foreach (var request in _requests)
            {
                try
                {
                    File.Delete(request);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Log.LogWarning("Retry: the flush request {Path} cannot be removed: {Error}; it is read again at the next start", request, e.Message);
                }
            }

            _requests.Clear();
            _asked.Clear();
        }

        return claim;
    }

    /// <summary>The largest request read: 100,000 ids and more (larger ones are set aside unread, with a line).</summary>
    public const long MaxFlushRequestBytes = 4 << 20;

    // Each request on its own: one that cannot be read does not keep those after it unread
    // (review 64), and is read again at the next round (a line each time it fails).
    private void ReadFlushRequests()
    {
        List<string> requests;
        try
        {
            requests = FlushRequests(paths);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.LogWarning("Retry: the flush requests in {Directory} cannot be listed: {Error}; entries wait for their backoff", paths.FlushRequests, e.Message);
            return;
        }

        foreach (var request in requests)
        {
            if (_requests.Contains(request) || Switchboard.NotWrittenHere(new System.IO.Abstractions.FileSystem(), request) is not null)
            {
                continue;
            }

            try
            {
                // Bounded: a request is ids, 27 bytes a line; a huge file (only the instance's
                // user can write var/) cost gigabytes never given back (review 64).
                var length = new FileInfo(request).Length;
                var ids = length > MaxFlushRequestBytes ? [] : ReadIds(request);
                if (length > MaxFlushRequestBytes)
                {
                    Log.LogWarning("Retry: the flush request {Path} is {Length} bytes, over {Max}: not read, removed", Path.GetFileName(request), length, MaxFlushRequestBytes);
                }

                _asked.UnionWith(ids);
                _requests.Add(request);
                Log.LogInformation("Retry: queue flush asks for {Count} entries now ({Path})", ids.Count, Path.GetFileName(request));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.LogWarning("Retry: the flush request {Path} cannot be read: {Error}; its entries wait for their backoff", request, e.Message);
            }
        }
    }

    /// <summary>The complete `queue flush` requests waiting in var/flush/ (none when it does not exist).</summary>
    /// <exception cref="IOException">It cannot be listed.</exception>
    /// <exception cref="UnauthorizedAccessException">It cannot be listed by this user.</exception>
    public static List<string> FlushRequests(InstancePaths paths)
        => Directory.Exists(paths.FlushRequests) ? [.. Directory.EnumerateFiles(paths.FlushRequests, "*" + FlushExtension)] : [];

    // The valid entry names in a request, a line each (it is at most MaxFlushRequestBytes).
    private static List<string> ReadIds(string request)
        => File.ReadLines(request).Select(l => l.Trim()).Where(Switchboard.IsValidEntryName).ToList();

    // The entry keeps its name back in out (streamed, not loaded): a crash between the two
    // steps is seen at start-up, as for every hop.
    protected override bool ProcessHead(EntryHead head, CancellationToken stoppingToken)
    {
        var name = SendBack(Queue, head, Queues[QueueSet.Out], flushed: _asked.Contains(head.Claim.Name));
        Log.LogInformation("Retry: {MessageId} to {ListId} back to out as {QueueEntry} ({Count} recipients, attempt {Attempts}{Flushed})",
            head.Metadata.MessageIdForLog, head.Metadata.List, name, head.Metadata.RecipientCount, head.Metadata.Attempts + 1,
            _asked.Contains(head.Claim.Name) ? "; asked for by queue flush" : "");
        return true;
    }

    // Moves a claimed retry entry back to `out` under its name, its backoff cleared, and finishes
    // the claim.
    private static string SendBack(Switchboard retry, EntryHead head, Switchboard @out, bool flushed = false)
    {
        var metadata = head.Metadata.Clone();
        metadata.NotBefore = null;
        metadata.Flushed = flushed ? true : null;
        var name = retry.Forward(head, @out, metadata);
        retry.Finish(head.Claim);
        return name;
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
        => throw new InvalidOperationException("the retry runner works on entry heads");
}
