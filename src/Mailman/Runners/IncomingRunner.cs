// incoming: runs the moderation chain (Moderation/) over each injected post, with one list
// database connection for the whole chain, then moves it on: to the pipeline, to hold (the
// moderators and the poster told), or nowhere (rejected with a notice, or discarded). The post
// is parsed in place and moves on byte for byte unless a rule changed it (an Approved: password
// removed); a post over the size limit is held without being read past its header block.
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Notices;
using Mailman.Pipeline;
using Mailman.Queues;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Runners;

public sealed class IncomingRunner(
    QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, ListStoreFactory lists, ModerationChain chain, HeldPosts held,
    NoticeSender notices, ILogger<IncomingRunner> logger)
    : QueueRunner(queues, QueueSet.In, activity, options, time, logger)
{
    /// <summary>
    /// The largest post the outgoing runner can deliver: it holds the flattened post in one array
    /// (a little more than the post, with its list headers and footer). Larger ones are held
    /// whatever the list's limit.
    /// </summary>
    public const long MaxDeliverable = 2_000_000_000;

    private long _sweptAt = long.MinValue;

    // The temporaries of injects killed while the daemon runs (Postfix's time limit on a pipe)
    // went only at the next start (review 28): swept when idle, at most every ten minutes; in
    // every queue, for the empty one a daemon killed mid-hop leaves and its start, right after,
    // takes for a writer about to lock it (see Switchboard.RemoveStaleTemporaries).
    protected override void Idle()
    {
        var now = Time.GetTimestamp();
        if (_sweptAt != long.MinValue && Time.GetElapsedTime(_sweptAt, now) < TimeSpan.FromMinutes(10))
        {
            return;
        }

        _sweptAt = now;
        foreach (var queue in Queues.All)
        {
            try
            {
                // An hour: longer than Postfix's pipe time limit (1000 s) lets an inject live, and a
                // live one's writes keep its file younger.
                queue.RemoveStaleTemporaries(TimeSpan.FromHours(1));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.LogDebug("Sweeping the temporary files in {Queue}: {Error}", queue.Name, e.Message);
            }
        }
    }

    // The entries whose "Post received" line this process wrote and which are not finished yet.
    private readonly HashSet<string> _received = new(StringComparer.Ordinal);

    // Posts arrive from `inject`, run by the MTA.
    protected override bool WrittenByOtherProcesses => true;

    // Everything happens on the head and a stream over the file: a post over the list's size
    // limit is held without being read, and a post under it is parsed in place (MimeKit's
    // persistent mode keeps part contents on disk), so memory does not grow with the post.
    protected override bool ProcessHead(EntryHead head, CancellationToken stoppingToken)
    {
        var metadata = head.Metadata;
        using var store = lists.Open();
        var list = store.FindList(ListOf(metadata))
            ?? throw new NoSuchListException($"no such list: {metadata.List}");
        var size = metadata.MessageLength;
        if (!metadata.Approved && !_received.Contains(head.Claim.Name))
        {
            Hosting.Metrics.Received.Add(1, new KeyValuePair<string, object?>("list", list.Name.Fqdn));
        }

        // A Message-ID the list took in from another entry this week (without one, the same
        // content this hour): the same post again (one transaction to dev+1@ ... dev+30@, the
        // MTA's retry of an inject it thought failed, a cross-post reaching a list also through
        // an umbrella list). An approved post is one the list took in already.
        if (!metadata.Approved && Duplicate(store, list.Name, SeenKind.Post, metadata.MessageId, () => Queue.OpenMessage(head), head.Claim.Name) is var (first, key))
        {
            Log.LogInformation("Post {MessageId} to {ListId} from {Sender} discarded, entry {QueueEntry}: a duplicate of entry {First} of {Seen:u}",
                key.Shown, list.Name.Fqdn, metadata.SenderForLog, head.Claim.Name, first.Entry, first.Seen);
            Queue.Finish(head.Claim);
            _received.Remove(head.Claim.Name);
            return true;
        }

        using var stream = Queue.OpenMessage(head);
        var limit = (long)list.MaxMessageSizeKb * 1024;
        var tooLarge = size > MaxDeliverable ? $"message size {size} bytes is more than the {MaxDeliverable} bytes a post can be delivered with"
            : limit > 0 && size > limit && !metadata.Approved ? $"message size {size} bytes exceeds the list's limit of {list.MaxMessageSizeKb} KiB"
            : null;
        if (tooLarge is not null)
        {
            // Held at once (before the other rules: reading it is what the limit spares), the
            // moderators shown its header block.
            var headers = HeadersOnly(stream);
            LogReceived(list, metadata, Senders.Of(headers, metadata.Sender), size, head.Claim.Name);
            if (metadata.Approved)
            {
                throw new InvalidOperationException($"approved, but {tooLarge}");
            }

            held.Put(list, headers, metadata, size, head.Claim.Name, [new RuleHit("maximum-size", Verdict.Hold, tooLarge)],
                (m, told) => Queue.Forward(head, Queues[QueueSet.Hold], m, told), store);
            Queue.Finish(head.Claim);
            _received.Remove(head.Claim.Name);
            return true;
        }

        var message = MimeMessage.Load(stream, persistent: true, CancellationToken.None);
        metadata.MessageId ??= message.MessageId;
        var post = new PostContext(list, message, metadata, size);
        var context = new ModerationContext(post, store);
        LogReceived(list, metadata, context.Senders, size, head.Claim.Name);

        var decision = chain.Evaluate(context, head.Claim.Name);

        // Byte for byte, unless a rule changed the post: then it is written as it is now.
        string Move(EntryMetadata next, string queue, Action? beforePlacing = null) => context.Modified
            ? Queues[queue].Enqueue(next, s => message.WriteTo(Delivery.WireFormat.Options, s, CancellationToken.None), null, head.Claim.Name, beforePlacing: beforePlacing)
            : Queue.Forward(head, Queues[queue], next, beforePlacing);

        switch (decision.Verdict)
        {
            case Verdict.Hold:
                held.Put(list, message, metadata, size, head.Claim.Name, decision.Hits, (m, told) => Move(m, QueueSet.Hold, told), store);
                break;
            case Verdict.Reject:
                Notify(head.Claim.Name, list, message, metadata, size, decision.Hits[^1].Reason);
                break;
            case Verdict.Discard:
                break;
            default:
                var next = metadata.Clone();
                next.Error = null;
                Move(next, QueueSet.Pipeline);
                break;
        }

        Queue.Finish(head.Claim);
        _received.Remove(head.Claim.Name);
        return true;
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
        => throw new InvalidOperationException("the incoming runner works on entry heads");

    // Once per post: a hop that cannot be written (a full disk) takes the post again and again
    // until it can, and each try logged "Post received" anew (review 28).
    private void LogReceived(MailingList list, EntryMetadata metadata, Senders senders, long size, string entry)
    {
        if (_received.Count > 10_000)
        {
            _received.Clear(); // names of posts shunted or taken by another process: bounded
        }

        if (_received.Add(entry))
        {
            Log.LogInformation("Post received for {ListId}: Message-Id {MessageId}, from {From}, envelope sender {Sender}, {Size} bytes, entry {QueueEntry}{Approved}",
                list.Name.Fqdn, metadata.MessageIdForLog, senders.Summary, metadata.SenderForLog, size, entry, metadata.Approved ? $" (approved by {metadata.ApprovedBy})" : "");
        }
    }

    // The header block only (a post too large to read whole).
    private static MimeMessage HeadersOnly(Stream stream)
    {
        var message = new MimeMessage();
        message.Headers.Clear();
        try
        {
            foreach (var header in HeaderList.Load(stream))
            {
                message.Headers.Add(header);
            }
        }
        catch (FormatException)
        {
        }

        return message;
    }

    // RFC 3834 §4: the answer goes to the envelope sender (the From: address when the MTA gave
    // none); the notice sender applies the never-answer rules and the daily limit.
    private void Notify(string entryName, MailingList list, MimeMessage post, EntryMetadata metadata, long size, string reason)
    {
        notices.Send(new Notice(list, NoticeTemplates.Rejected, HeldPosts.Poster(metadata, post))
        {
            Kind = NoticeKind.Reply,
            Answering = post,
            AnsweringSender = metadata.Sender,
            Values = new Dictionary<string, string> { ["reason"] = Member.OneLine(reason) },
            Attachment = NoticeAttachments.Post(post, size),
        }, entryName, "rejected");
    }
}

/// <summary>Parses raw post bytes with MimeKit.</summary>
public static class PostParser
{
    public static MimeMessage Parse(byte[] raw)
    {
        using var stream = new MemoryStream(raw, writable: false);
        return MimeMessage.Load(stream);
    }
}
