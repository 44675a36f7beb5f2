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
    // Parsed in place and written straight into the out entry: owner mail of any size.
    protected override bool ProcessHead(EntryHead head, CancellationToken stoppingToken)
    {
        var metadata = head.Metadata;
        using var store = lists.Open();
        var list = store.FindList(ListOf(metadata));
        if (list is null)
        {
            Keep(head, $"no such list: {metadata.List}");
            return true;
        }

        using var stream = Queue.OpenMessage(head);
        var message = MimeKit.MimeMessage.Load(stream, persistent: true, CancellationToken.None);
        if (OwnerMail.WhyKeep(store, list, message, metadata.Sender) is { } why)
        {
            Keep(head, why);
            return true;
        }

        // The same owner mail again (one transaction to dev-owner+1@ ... +50@ was fifty
        // forwards, review 110): forwarded once.
        var messageId = metadata.MessageId ?? message.MessageId;
        if (Duplicate(store, list.Name, SeenKind.Owner, messageId, () => Queue.OpenMessage(head), head.Claim.Name) is var (first, key))
        {
            Log.LogInformation("Owner mail {MessageId} for {ListId} from {Sender} discarded, entry {QueueEntry}: a duplicate of entry {First} of {Seen:u}",
                key.Shown, list.Name.Fqdn, metadata.SenderForLog, head.Claim.Name, first.Entry, first.Seen);
            Queue.Finish(head.Claim);
            return true;
        }

        var owners = OwnerMail.Recipients(store, list, Options, out var skipped);
        if (owners.Count == 0)
        {
            // Owners that are all addresses of lists here are named (review 107: "has no owner").
            var none = skipped.Count == 0 ? $"{list.Name.Fqdn} has no owner" : $"{list.Name.Fqdn} has no owner but addresses of lists here ({string.Join(", ", skipped)})";
            Keep(head, Options.SiteOwner.Length == 0
                ? $"{none} and Mailman:SiteOwner is not set"
                : $"{none}, and Mailman:SiteOwner is an address of a list here (mail to it would reach a list, not a person)");
            return true;
        }

        message.Headers.Insert(0, new MimeKit.Header(OwnerMail.TraceHeader, list.Name.OwnerAddress));
        Delivery.WireFormat.EndLastHeaderLine(message);
        var forward = new EntryMetadata
        {
            List = list.Name.Fqdn,
            Sender = metadata.Sender,
            Received = metadata.Received,
            MessageId = messageId,
            Destination = metadata.Destination,
            // Per recipient: the VERP sender names the owner; no slots, so nothing else changes.
            Personalized = true,
            Purpose = "owner forward",
        };
        var recipients = owners.Select(o => new Recipient(o.Address, Member.Sanitize(o.DisplayName))).ToList();
        var name = Queues[QueueSet.Out].Enqueue(forward, s => message.WriteTo(Delivery.WireFormat.Options, s, CancellationToken.None), recipients, head.Claim.Name);
        Queue.Finish(head.Claim);
        Log.LogInformation("Owner mail {MessageId} for {ListId} from {Sender} forwarded to {Count} owners as {QueueEntry}",
            forward.MessageIdForLog, list.Name.Fqdn, Senders.Of(message, metadata.Sender).Summary, recipients.Count, name);
        if (skipped.Count > 0)
        {
            // Owners set before a list of that name was made (lists create warned): named where
            // the operator reads why fewer got it (review 100).
            Log.LogWarning("Owner mail {MessageId} for {ListId} not forwarded to {Skipped}: addresses of lists here (mail to them would reach a list, not a person; mailman lists owners LIST list)",
                forward.MessageIdForLog, list.Name.Fqdn, string.Join(", ", skipped));
        }
        return true;
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
        => throw new InvalidOperationException("the owner runner works on entry heads");

    // Kept where an operator sees it (`mailman queue list bad`), with the reason beside it.
    private void Keep(EntryHead head, string why)
    {
        Queue.SetAside(head.Claim, Queues[QueueSet.Bad], why);
        Log.LogWarning("Owner mail {MessageId} for {ListId} kept in bad as {QueueEntry}, not forwarded: {Reason}", head.Metadata.MessageIdForLog, head.Metadata.List, head.Claim.Name, why);
    }
}
