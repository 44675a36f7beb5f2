// owner: forwards mail for LIST-owner@ to the list's owners, unchanged apart from a trace header,
// as one out entry under the same name (so a crash between the two is seen at start-up, as for
// every hop). Each owner's copy goes with the list's VERP sender for that owner
// (LIST-bounces+owner=domain@): bounces come back to the list, never to the poster, and name a
// non-member the bounce processor does not forward again. Mail that could loop is kept in bad.
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Queues;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class OwnerRunner(
    QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, ListStoreFactory lists, ILogger<OwnerRunner> logger)
    : QueueRunner(queues, QueueSet.Owner, activity, options, time, logger)
{
    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
    {
        var metadata = entry.Metadata;
        using var store = lists.Open();
        var list = store.FindList(ListOf(metadata));
        if (list is null)
        {
            Keep(entry, $"no such list: {metadata.List}");
            return;
        }

        var message = PostParser.Parse(entry.Message);
        if (OwnerMail.WhyKeep(store, list, message, metadata.Sender) is { } why)
        {
            Keep(entry, why);
            return;
        }

        var owners = OwnerMail.Recipients(store, list, Options);
        if (owners.Count == 0)
        {
            Keep(entry, $"{list.Name.Fqdn} has no owner and Mailman:SiteOwner is not set");
            return;
        }

        message.Headers.Insert(0, new MimeKit.Header(OwnerMail.TraceHeader, list.Name.OwnerAddress));
        var forward = new EntryMetadata
        {
            List = list.Name.Fqdn,
            Sender = metadata.Sender,
            Received = metadata.Received,
            MessageId = metadata.MessageId ?? message.MessageId,
            Destination = metadata.Destination,
            // Per recipient: the VERP sender names the owner; no slots, so nothing else changes.
            Personalized = true,
            Purpose = "owner forward",
        };
        var recipients = owners.Select(o => new Recipient(o.Address, Member.Sanitize(o.DisplayName))).ToList();
        var name = Queues[QueueSet.Out].Enqueue(forward, Delivery.WireFormat.Flatten(message), recipients, entry.Claim.Name);
        Queue.Finish(entry.Claim);
        Log.LogInformation("Owner mail {MessageId} for {ListId} from {Sender} forwarded to {Count} owners as {QueueEntry}",
            forward.MessageId, list.Name.Fqdn, Senders.Of(message, metadata.Sender).Summary, recipients.Count, name);
    }

    // Kept where an operator sees it (`mailman queue list bad`), with the reason.
    private void Keep(LoadedEntry entry, string why)
    {
        var metadata = entry.Metadata.Clone();
        metadata.FromQueue = Queue.Name;
        metadata.Error = why;
        var name = Queues[QueueSet.Bad].Enqueue(metadata, entry.Message, name: entry.Claim.Name);
        Queue.Finish(entry.Claim);
        Log.LogWarning("Owner mail {MessageId} for {ListId} kept in bad as {QueueEntry}, not forwarded: {Reason}", metadata.MessageId, metadata.List, name, why);
    }
}
