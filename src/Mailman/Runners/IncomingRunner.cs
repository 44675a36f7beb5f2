// incoming: parses each injected post and runs the moderation chain over it (Moderation/), with
// one list database connection for the whole chain; then moves it on: to the pipeline, to hold
// (with the moderators and the poster told), or nowhere (rejected with a notice, or discarded).
// The raw bytes move on unchanged unless a rule changed the post (an Approved: password removed).
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
    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
    {
        var metadata = entry.Metadata;
        using var store = lists.Open();
        var list = store.FindList(ListOf(metadata))
            ?? throw new InvalidOperationException($"no such list: {metadata.List}");
        var message = PostParser.Parse(entry.Message);
        metadata.MessageId ??= message.MessageId;
        if (!metadata.Approved)
        {
            Hosting.Metrics.Received.Add(1, new KeyValuePair<string, object?>("list", list.Name.Fqdn));
        }

        var post = new PostContext(list, message, metadata, entry.Message.Length);
        var context = new ModerationContext(post, store);
        Log.LogInformation("Post received for {ListId}: Message-Id {MessageId}, from {Sender}, {Size} bytes, entry {QueueEntry}{Approved}",
            list.Name.Fqdn, metadata.MessageId, context.Senders.Summary, entry.Message.Length, entry.Claim.Name,
            metadata.Approved ? $" (approved by {metadata.ApprovedBy})" : "");

        var decision = chain.Evaluate(context, entry.Claim.Name);
        var bytes = context.Modified ? Delivery.WireFormat.Flatten(message) : entry.Message;
        switch (decision.Verdict)
        {
            case Verdict.Hold:
                held.Put(list, message, metadata, bytes, entry.Claim.Name, decision.Hits, store);
                break;
            case Verdict.Reject:
                Notify(entry.Claim.Name, list, message, metadata, decision.Hits[^1].Reason);
                break;
            case Verdict.Discard:
                break;
            default:
                var next = metadata.Clone();
                next.Error = null;
                Queues[QueueSet.Pipeline].Enqueue(next, bytes, name: entry.Claim.Name);
                break;
        }

        Queue.Finish(entry.Claim);
    }

    // RFC 3834 §4: the answer goes to the envelope sender (the From: address when the MTA gave
    // none); the notice sender applies the never-answer rules and the daily limit.
    private void Notify(string entryName, MailingList list, MimeMessage post, EntryMetadata metadata, string reason)
    {
        notices.Send(new Notice(list, NoticeTemplates.Rejected, HeldPosts.Poster(metadata, post))
        {
            Kind = NoticeKind.Reply,
            Answering = post,
            AnsweringSender = metadata.Sender,
            Values = new Dictionary<string, string> { ["reason"] = reason },
            Attachment = new MessagePart { Message = post },
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
