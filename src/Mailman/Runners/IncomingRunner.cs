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

    // Posts arrive from `inject`, run by the MTA.
    protected override bool WrittenByOtherProcesses => true;

    // Everything happens on the head and a stream over the file: a post over the list's size
    // limit is held without being read, and a post under it is parsed in place (MimeKit's
    // persistent mode keeps part contents on disk), so memory does not grow with the post.
    protected override bool ProcessHead(EntryHead head, CancellationToken stoppingToken)
    {
        var metadata = head.Metadata;
        var list = lists.FindList(ListOf(metadata))
            ?? throw new InvalidOperationException($"no such list: {metadata.List}");
        var size = metadata.MessageLength;
        Hosting.Metrics.Received.Add(1, new KeyValuePair<string, object?>("list", list.Name.Fqdn));
        var limit = (long)list.MaxMessageSizeKb * 1024;
        if (limit > 0 && size > limit)
        {
            Log.LogInformation("Post received for {ListId}: Message-Id {MessageId}, envelope sender {Sender}, {Size} bytes, entry {QueueEntry}",
                list.Name.Fqdn, metadata.MessageId, metadata.Sender, size, head.Claim.Name);
            Move(head, QueueSet.Hold, list, HandlerResult.Hold($"maximum-size: message size {size} bytes exceeds the list's limit of {list.MaxMessageSizeKb} KiB"));
            return true;
        }

        using var stream = Queue.OpenMessage(head);
        var message = MimeMessage.Load(stream, persistent: true, CancellationToken.None);
        metadata.MessageId ??= message.MessageId;
        var post = new PostContext(list, message, metadata, size);
        Log.LogInformation("Post received for {ListId}: Message-Id {MessageId}, from {From}, envelope sender {Sender}, {Size} bytes, entry {QueueEntry}",
            list.Name.Fqdn, metadata.MessageId, Truncated(message.From.ToString()), metadata.Sender, size, head.Claim.Name);

        var result = PipelineRunner.RunHandlers(_checks, post);
        switch (result.Action)
        {
            case HandlerAction.Continue:
                Move(head, QueueSet.Pipeline, list, result);
                break;
            case HandlerAction.Hold:
                Move(head, QueueSet.Hold, list, result);
                break;
            default:
                // Discard and reject are the list's own policy: logged with everything needed to find the post.
                Log.LogWarning("Post {MessageId} to {ListId} {Action} (entry {QueueEntry}): {Reason}",
                    metadata.MessageId, list.Name.Fqdn, result.Action.ToString().ToLowerInvariant(), head.Claim.Name, result.Reason);
                if (result.Action == HandlerAction.Reject)
                {
                    Notify(head.Claim.Name, list, message, metadata, result.Reason ?? "rejected");
                }

                Queue.Finish(head.Claim);
                break;
        }

        return true;
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
        => throw new InvalidOperationException("the incoming runner works on entry heads");

    private void Move(EntryHead head, string next, MailingList list, HandlerResult result)
    {
        var moved = head.Metadata.Clone();
        moved.Error = result.Reason;
        var name = Queue.Forward(head, Queues[next], moved);
        Queue.Finish(head.Claim);
        if (result.Action == HandlerAction.Hold)
        {
            Log.LogWarning("Post {MessageId} to {ListId} held as {QueueEntry}: {Reason}", head.Metadata.MessageId, list.Name.Fqdn, name, result.Reason);
        }
    }

    // A From: with 100,000 addresses must not make a 4 MB log line.
    private static string Truncated(string s) => s.Length <= 300 ? s : s[..300] + "...";

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
