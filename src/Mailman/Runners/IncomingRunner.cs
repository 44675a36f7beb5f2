// incoming: parses each injected post, drops loops, and applies the list's size limit and
// non-member policy before the post enters the pipeline. The raw bytes move on unchanged.
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Notices;
using Mailman.Pipeline;
using Mailman.Queues;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Runners;

public sealed class IncomingRunner(
    QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, ListStoreFactory lists, HandlerCatalog catalog, NoticeSender notices, ILogger<IncomingRunner> logger)
    : QueueRunner(queues, QueueSet.In, activity, options, time, logger)
{
    private readonly IReadOnlyList<IHandler> _checks = catalog.Resolve(HandlerCatalog.IncomingChecks);

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
    {
        var metadata = entry.Metadata;
        var list = lists.FindList(ListOf(metadata))
            ?? throw new InvalidOperationException($"no such list: {metadata.List}");
        var message = PostParser.Parse(entry.Message);
        metadata.MessageId ??= message.MessageId;
        Hosting.Metrics.Received.Add(1, new KeyValuePair<string, object?>("list", list.Name.Fqdn));
        var post = new PostContext(list, message, metadata, entry.Message.Length);
        Log.LogInformation("Post received for {ListId}: Message-Id {MessageId}, from {Sender}, {Size} bytes, entry {QueueEntry}",
            list.Name.Fqdn, metadata.MessageId, message.From.ToString(), entry.Message.Length, entry.Claim.Name);

        var result = PipelineRunner.RunHandlers(_checks, post);
        var next = result.Action switch
        {
            HandlerAction.Continue => QueueSet.Pipeline,
            HandlerAction.Hold => QueueSet.Hold,
            _ => null,
        };
        if (next is not null)
        {
            var moved = metadata.Clone();
            moved.Error = result.Reason;
            var name = Queues[next].Enqueue(moved, entry.Message, name: entry.Claim.Name);
            if (result.Action == HandlerAction.Hold)
            {
                Log.LogWarning("Post {MessageId} to {ListId} held as {QueueEntry}: {Reason}", metadata.MessageId, list.Name.Fqdn, name, result.Reason);
            }
        }
        else
        {
            // Discard and reject are the list's own policy: logged with everything needed to find the post.
            Log.LogWarning("Post {MessageId} to {ListId} {Action} (entry {QueueEntry}): {Reason}",
                metadata.MessageId, list.Name.Fqdn, result.Action.ToString().ToLowerInvariant(), entry.Claim.Name, result.Reason);
            if (result.Action == HandlerAction.Reject)
            {
                Notify(entry.Claim.Name, list, message, metadata, result.Reason ?? "rejected");
            }
        }

        Queue.Finish(entry.Claim);
    }

    // RFC 3834 §4: the answer goes to the envelope sender (the From: address when the MTA gave
    // none); the notice sender applies the never-answer rules and the daily limit.
    private void Notify(string entryName, MailingList list, MimeMessage post, EntryMetadata metadata, string reason)
    {
        var to = metadata.Sender ?? post.From.Mailboxes.FirstOrDefault()?.Address ?? "";
        notices.Send(new Notice(list, NoticeTemplates.Rejected, to.Trim().Trim('<', '>'))
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
