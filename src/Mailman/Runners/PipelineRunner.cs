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
                    post.Metadata.MessageIdForLog, post.List.Name.Fqdn, handler.Name, result.Reason);
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
            ?? throw new NoSuchListException($"no such list: {metadata.List}");
        using var stream = Queue.OpenMessage(head);
        var message = MimeMessage.Load(stream, persistent: true, CancellationToken.None);
        Complete(message, metadata, head.Claim.Name, list.Name.Domain);
        var post = new PostContext(list, message, metadata, metadata.MessageLength) { OpenOriginal = () => Queue.OpenMessage(head) };
        var result = RunHandlers(_handlers, post, Log);
        if (result.Action != HandlerAction.Continue)
        {
            if (result.Action == HandlerAction.Hold)
            {
                var reason = result.Reason ?? "held";
                var colon = reason.IndexOf(": ", StringComparison.Ordinal);
                Hold(list, head, colon > 0 ? new RuleHit(reason[..colon], Verdict.Hold, reason[(colon + 2)..]) : new RuleHit("pipeline", Verdict.Hold, reason));
            }

            Log.LogWarning("Post {MessageId} to {ListId} {Action} in the pipeline: {Reason}", metadata.MessageIdForLog, list.Name.Fqdn, result.Action, result.Reason);
            Queue.Finish(head.Claim);
            return true;
        }

        var recipients = post.Recipients?.Invoke() ?? [];
        string name;
        try
        {
            name = Queues[QueueSet.Out].Enqueue(metadata, s => WriteChecked(message, s), recipients, head.Claim.Name);
        }
        catch (IntakeException e)
        {
            // Intake counted the post as it came; a field the handlers rewrote can come out
            // folded over thousands of lines (a 1 MB Subject, prefixed, is 17,000 encoded words:
            // 11 s of CPU for each of the outgoing runner's parses). Nothing went to out.
            var why = $"the post as the list rewrites it (subject prefix, DMARC From or wrapper, Reply-To, header and footer) is beyond what can be delivered in time: {e.Message.Replace(": not taken", "", StringComparison.Ordinal)}";
            if (metadata.Approved)
            {
                throw new InvalidOperationException(why + "; a moderator approved it, and it cannot be sent as it is", e);
            }

            Hold(list, head, new RuleHit("pipeline", Verdict.Hold, why));
            Log.LogWarning("Post {MessageId} to {ListId} Hold in the pipeline: {Reason}", metadata.MessageIdForLog, list.Name.Fqdn, why);
            Queue.Finish(head.Claim);
            return true;
        }

        Queue.Finish(head.Claim);
        Log.LogDebug("Post {MessageId} to {ListId} decorated, queued for delivery as {QueueEntry}", metadata.MessageIdForLog, list.Name.Fqdn, name);
        return true;
    }

    /// <summary>
    /// A post without a Message-ID or a Date goes out with them, as Postfix's cleanup and Mailman
    /// 3's inject add them (review 56: through a smarthost that adds neither, copies went without,
    /// and the logs said "Post null"). The id is the entry's, the same if a crash repeats the run.
    /// </summary>
    internal void Complete(MimeMessage message, EntryMetadata metadata, string entry, string domain)
    {
        if (string.IsNullOrEmpty(message.MessageId))
        {
            message.MessageId = $"{entry}.mailman@{domain}";
            metadata.MessageId = message.MessageId;
        }

        if (!message.Headers.Contains(MimeKit.HeaderId.Date))
        {
            message.Date = metadata.Received != default ? metadata.Received : Time.GetUtcNow();
        }

        // RFC 5322 3.6 allows one of each; a second Message-ID, Date or Subject went out to
        // every member as it came (review 58), and Gmail refuses such a message as not RFC 5322
        // compliant, for every member there. The first is the one every reader and our logs take.
        foreach (var id in (ReadOnlySpan<MimeKit.HeaderId>)[MimeKit.HeaderId.MessageId, MimeKit.HeaderId.Date, MimeKit.HeaderId.Subject, MimeKit.HeaderId.From, MimeKit.HeaderId.Sender, MimeKit.HeaderId.MimeVersion])
        {
            RemoveAllButFirst(message.Headers, id);
        }

        // A second Reply-To, To or Cc (review 140: a client reading the last Reply-To replied to
        // it alone) is made one field with the first, their values joined by commas as written
        // (review 142: rewritten from MimeKit's parse, what it could not read was lost, an
        // Outlook "a; b" list included).
        foreach (var id in (ReadOnlySpan<MimeKit.HeaderId>)[MimeKit.HeaderId.ReplyTo, MimeKit.HeaderId.To, MimeKit.HeaderId.Cc])
        {
            OneField(message.Headers, id);
        }

        // A line in the header block that is no field (no colon, or a name with a space): a
        // relay takes it for the end of the header block, and the list's fields after it for the
        // body (review 79). Dropped.
        for (var i = message.Headers.Count - 1; i >= 0; i--)
        {
            if (!IsFieldName(message.Headers[i].Field))
            {
                message.Headers.RemoveAt(i);
            }
        }

        // What Postfix's cleanup drops (drop_headers): a Return-Path is the final delivery's to
        // add (the pipe's flag R wrote the poster's, which every member's copy then carried), a
        // Bcc or Resent-Bcc names whom the poster kept from the others, a Content-Length is
        // wrong once the list changes the post (review 79). The poster's Errors-To (obsolete, RFC
        // 2076) would send an old MTA's bounces of members' copies to the poster rather than to
        // our VERP address: dropped, as Mailman 2.1 and 3 drop it. The poster's Sender stays (it
        // names the poster's agent truthfully, and their DKIM signature may cover it).
        foreach (var id in (ReadOnlySpan<MimeKit.HeaderId>)[MimeKit.HeaderId.ReturnPath, MimeKit.HeaderId.Bcc, MimeKit.HeaderId.ResentBcc, MimeKit.HeaderId.ContentLength])
        {
            message.Headers.RemoveAll(id);
        }

        message.Headers.RemoveAll("Errors-To");

        // A second Content-Type or Content-Transfer-Encoding of the post itself: MimeKit read the
        // first, a reader taking the second saw another structure (review 79). The encoding is
        // set again from the first, which the removal would have reset.
        if (message.Body is { } body)
        {
            RemoveAllButFirst(body.Headers, MimeKit.HeaderId.ContentType);
            if (body is MimePart part && part.Headers.IndexOf(MimeKit.HeaderId.ContentTransferEncoding) is var cte and >= 0)
            {
                var encoding = part.ContentTransferEncoding;
                RemoveAllButFirst(part.Headers, MimeKit.HeaderId.ContentTransferEncoding);
                if (part.Headers.IndexOf(MimeKit.HeaderId.ContentTransferEncoding) == cte)
                {
                    part.ContentTransferEncoding = encoding;
                }
            }
        }

        // RFC 5322 3.6: From: is required and names a mailbox. A post without one (or with a
        // group, "undisclosed:;", or "foo" without a domain) went out so, and providers that
        // check refuse every copy (review 79, 82). It is the envelope sender's, as Postfix's
        // cleanup adds it, when that is an address (not the null sender's MAILER-DAEMON); what
        // it replaces is kept as X-Original-From.
        if (!message.From.Mailboxes.Any(m => m.Address.Contains('@', StringComparison.Ordinal)) && !string.IsNullOrEmpty(metadata.Sender)
            && MimeKit.MailboxAddress.TryParse(metadata.Sender, out var sender) && sender.Address.Contains('@', StringComparison.Ordinal))
        {
            if (message.Headers[MimeKit.HeaderId.From] is { } empty && empty.Trim().Length > 0)
            {
                message.Headers.Add("X-Original-From", empty.Trim());
            }

            message.Headers.RemoveAll(MimeKit.HeaderId.From);
            message.From.Add(new MimeKit.MailboxAddress("", sender.Address));

            // The incoming DMARC look was at the From: that is gone: the dmarc handler looks
            // again, at this one (a p=reject domain's is munged like any).
            metadata.Dmarc = null;
        }

        // Binary parts and lines over 998 cannot cross SMTP as they are (review 79).
        Delivery.WireFormat.MakeTransportable(message);
    }

    // RFC 5322 3.6.8: printable US-ASCII but the colon, at least one (white space before the
    // colon is obsolete syntax, 4.5.3, and still a field).
    private static bool IsFieldName(string field)
        => field.TrimEnd(' ', '\t') is { Length: > 0 } name && !name.AsSpan().ContainsAnyExceptInRange('!', '~') && !name.Contains(':', StringComparison.Ordinal);

    private static void OneField(MimeKit.HeaderList headers, MimeKit.HeaderId id)
    {
        var first = headers.IndexOf(id);
        if (first < 0 || headers.Count(h => h.Id == id) < 2)
        {
            return;
        }

        // Each raw value without its line end, the empty ones left out, joined by commas; the
        // first's line end closes the field.
        var head = headers[first].RawValue;
        var end = head.AsSpan().Length - head.AsSpan().TrimEnd("\r\n"u8).Length;
        var joined = new List<byte>();
        for (var i = first; i < headers.Count; i++)
        {
            if (headers[i].Id != id)
            {
                continue;
            }

            var value = headers[i].RawValue.AsSpan().TrimEnd("\r\n"u8);
            if (value.Trim(" \t\r\n"u8).IsEmpty)
            {
                continue;
            }

            if (joined.Count > 0)
            {
                joined.Add((byte)',');
            }

            joined.AddRange(value);
        }

        joined.AddRange(head.AsSpan(head.Length - end));
        for (var i = headers.Count - 1; i > first; i--)
        {
            if (headers[i].Id == id)
            {
                headers.RemoveAt(i);
            }
        }

        headers[first].SetRawValue([.. joined]);
    }

    private static void RemoveAllButFirst(MimeKit.HeaderList headers, MimeKit.HeaderId id)
    {
        var first = headers.IndexOf(id);
        for (var i = headers.Count - 1; first >= 0 && i > first; i--)
        {
            if (headers[i].Id == id)
            {
                headers.RemoveAt(i);
            }
        }
    }

    // Held like any post (moderators and poster told, approvable): the post as it came from
    // incoming, not as the handlers left it.
    private void Hold(MailingList list, EntryHead head, RuleHit hit)
    {
        using var original = Queue.OpenMessage(head);
        var asReceived = MimeMessage.Load(original, persistent: true, CancellationToken.None);
        held.Put(list, asReceived, head.Metadata, head.Metadata.MessageLength, head.Claim.Name, [hit], (m, told) => Queue.Forward(head, Queues[QueueSet.Hold], m, told));
    }

    // Flattened under intake's limits (MimeShape), with room for what decoration adds: what every
    // later parse of the post can take.
    private static void WriteChecked(MimeMessage message, Stream s)
    {
        var shape = MimeShape.ForDecorated();
        message.WriteTo(Delivery.WireFormat.Options, shape.Watch(s), CancellationToken.None);
        shape.End();
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
        => throw new InvalidOperationException("the pipeline runner works on entry heads");
}
