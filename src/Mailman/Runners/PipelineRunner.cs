// pipeline: runs the list's handlers in their configured order, then flattens the decorated
// post to bytes and queues it for outgoing with its recipients.
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Pipeline;
using Mailman.Queues;
using Microsoft.Extensions.Logging;

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
    public HandlerResult RunHandlers(IEnumerable<IHandler> handlers, PostContext post)
    {
        foreach (var handler in handlers)
        {
            var result = handler.Process(post);
            if (result.Action == HandlerAction.Hold && post.Metadata.Approved)
            {
                Log.LogInformation("Post {MessageId} to {ListId}: {Handler} would hold it ({Reason}); a moderator approved it",
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

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
    {
        var metadata = entry.Metadata.Clone();
        var list = lists.FindList(ListOf(metadata))
            ?? throw new InvalidOperationException($"no such list: {metadata.List}");
        var message = PostParser.Parse(entry.Message);
        var post = new PostContext(list, message, metadata, entry.Message.Length);
        var result = RunHandlers(_handlers, post);
        if (result.Action != HandlerAction.Continue)
        {
            if (result.Action == HandlerAction.Hold)
            {
                // Held like any post: moderators and poster told, approvable; the raw post, not the decorated one.
                var reason = result.Reason ?? "held";
                var colon = reason.IndexOf(": ", StringComparison.Ordinal);
                var hit = colon > 0 ? new RuleHit(reason[..colon], Verdict.Hold, reason[(colon + 2)..]) : new RuleHit("pipeline", Verdict.Hold, reason);
                held.Put(list, PostParser.Parse(entry.Message), metadata, entry.Message, entry.Claim.Name, [hit]);
            }

            Log.LogWarning("Post {MessageId} to {ListId} {Action} in the pipeline: {Reason}", metadata.MessageId, list.Name.Fqdn, result.Action, result.Reason);
            Queue.Finish(entry.Claim);
            return;
        }

        using var flat = new MemoryStream(entry.Message.Length + 4096);
        message.WriteTo(Delivery.WireFormat.Options, flat, CancellationToken.None);
        var recipients = post.Recipients?.Invoke() ?? [];
        var name = Queues[QueueSet.Out].Enqueue(metadata, flat.GetBuffer().AsSpan(0, (int)flat.Length), recipients, entry.Claim.Name);
        Queue.Finish(entry.Claim);
        Log.LogDebug("Post {MessageId} to {ListId} decorated, queued for delivery as {QueueEntry}", metadata.MessageId, list.Name.Fqdn, name);
    }
}
