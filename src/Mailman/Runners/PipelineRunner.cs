// pipeline: runs the list's handlers in their configured order, then flattens the decorated
// post to bytes and queues it for outgoing with its recipients.
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Pipeline;
using Mailman.Queues;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Runners;

public sealed class PipelineRunner(
    QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, ListStoreFactory lists, HandlerCatalog catalog, ILogger<PipelineRunner> logger)
    : QueueRunner(queues, QueueSet.Pipeline, activity, options, time, logger)
{
    private readonly IReadOnlyList<IHandler> _handlers = catalog.Resolve(options.Pipeline.Handlers.Count > 0 ? options.Pipeline.Handlers : HandlerCatalog.DefaultPipeline);

    /// <summary>Runs handlers until one does not continue.</summary>
    public static HandlerResult RunHandlers(IEnumerable<IHandler> handlers, PostContext post)
    {
        foreach (var handler in handlers)
        {
            var result = handler.Process(post);
            if (result.Action != HandlerAction.Continue)
            {
                return result with { Reason = $"{handler.Name}: {result.Reason}" };
            }
        }

        return HandlerResult.Continue;
    }

    // Parsed in place (MimeKit's persistent mode) and flattened straight into the out entry's
    // file: the post is never held in memory whole, however large.
    protected override bool ProcessHead(EntryHead head, CancellationToken stoppingToken)
    {
        var metadata = head.Metadata.Clone();
        var list = lists.FindList(ListOf(metadata))
            ?? throw new InvalidOperationException($"no such list: {metadata.List}");
        using var stream = Queue.OpenMessage(head);
        var message = MimeMessage.Load(stream, persistent: true, CancellationToken.None);
        var post = new PostContext(list, message, metadata, metadata.MessageLength);
        var result = RunHandlers(_handlers, post);
        if (result.Action != HandlerAction.Continue)
        {
            if (result.Action == HandlerAction.Hold)
            {
                var held = head.Metadata.Clone();
                held.Error = result.Reason;
                Queue.Forward(head, Queues[QueueSet.Hold], held);
            }

            Log.LogWarning("Post {MessageId} to {ListId} {Action} in the pipeline: {Reason}", metadata.MessageId, list.Name.Fqdn, result.Action, result.Reason);
            Queue.Finish(head.Claim);
            return true;
        }

        var recipients = post.Recipients?.Invoke() ?? [];
        var name = Queues[QueueSet.Out].Enqueue(metadata, s => message.WriteTo(Delivery.WireFormat.Options, s, CancellationToken.None), recipients, head.Claim.Name);
        Queue.Finish(head.Claim);
        Log.LogDebug("Post {MessageId} to {ListId} decorated, queued for delivery as {QueueEntry}", metadata.MessageId, list.Name.Fqdn, name);
        return true;
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
        => throw new InvalidOperationException("the pipeline runner works on entry heads");
}
