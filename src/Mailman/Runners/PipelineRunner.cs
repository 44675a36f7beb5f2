// pipeline: runs the list's handlers in their configured order, then flattens the decorated
// post to bytes and queues it for outgoing with its recipients.
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Pipeline;
using Mailman.Queues;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Runners;

public sealed class PipelineRunner(
    QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, ListStoreFactory lists, HandlerCatalog catalog, HeldPosts held, ILogger<PipelineRunner> logger)
    : QueueRunner(queues, QueueSet.Pipeline, activity, options, time, logger)
{
    private readonly IReadOnlyList<IHandler> _handlers = catalog.Resolve(options.Pipeline.Handlers.Count > 0 ? options.Pipeline.Handlers : HandlerCatalog.DefaultPipeline);

    /// <summary>
    /// Runs handlers until one does not continue. A post a moderator approved is not held
    /// again: a hold from a handler is logged and the post goes on.
    /// </summary>
    public static HandlerResult RunHandlers(IEnumerable<IHandler> handlers, PostContext post, ILogger? log = null)
    {
        foreach (var handler in handlers)
        {
            var result = handler.Process(post);
            if (result.Action == HandlerAction.Hold && post.Metadata.Approved)
            {
                log?.LogInformation("Post {MessageId} to {ListId}: {Handler} would hold it ({Reason}); a moderator approved it",
                    post.Metadata.MessageId, post.List.Name.Fqdn, handler.Name, result.Reason);
                continue;
            }

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
        var post = new PostContext(list, message, metadata, metadata.MessageLength) { OpenOriginal = () => Queue.OpenMessage(head) };
        var result = RunHandlers(_handlers, post, Log);
        if (result.Action != HandlerAction.Continue)
        {
            if (result.Action == HandlerAction.Hold)
            {
                // Held like any post (moderators and poster told, approvable): the post as it
                // came from incoming, not as the handlers left it.
                var reason = result.Reason ?? "held";
                var colon = reason.IndexOf(": ", StringComparison.Ordinal);
                var hit = colon > 0 ? new RuleHit(reason[..colon], Verdict.Hold, reason[(colon + 2)..]) : new RuleHit("pipeline", Verdict.Hold, reason);
                using var original = Queue.OpenMessage(head);
                var asReceived = MimeMessage.Load(original, persistent: true, CancellationToken.None);
                held.Put(list, asReceived, head.Metadata, head.Metadata.MessageLength, head.Claim.Name, [hit], m => Queue.Forward(head, Queues[QueueSet.Hold], m));
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
