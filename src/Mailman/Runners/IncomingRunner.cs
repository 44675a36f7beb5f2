// incoming: parses each injected post, drops loops, and applies the list's size limit and
// non-member policy before the post enters the pipeline. The raw bytes move on unchanged.
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Pipeline;
using Mailman.Queues;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Runners;

public sealed class IncomingRunner(
    QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, ListStoreFactory lists, HandlerCatalog catalog, ILogger<IncomingRunner> logger)
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

    // The notice takes the post's entry name, like any hop: a crash before the post's claim is
    // finished cannot send the poster a second notice.
    private void Notify(string entryName, MailingList list, MimeMessage post, EntryMetadata metadata, string reason)
    {
        var to = RejectionNotice.Recipient(post, metadata);
        if (to is null)
        {
            Log.LogInformation("No rejection notice for {MessageId}: automatic message or null sender", metadata.MessageId);
            return;
        }

        var notice = new EntryMetadata
        {
            List = list.Name.Fqdn,
            Received = Time.GetUtcNow(),
            MessageId = "rejection of " + metadata.MessageId,
        };
        var name = Queues[QueueSet.Out].Enqueue(notice, RejectionNotice.Build(list, post, to, reason), [new Recipient(to, "")], entryName);
        Log.LogInformation("Rejection notice for {MessageId} to {Recipient} queued as {QueueEntry}", metadata.MessageId, to, name);
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
