// request: each mail to a list's -request, -join, -leave, -subscribe, -unsubscribe or
// -confirm+TOKEN address is handed to Requests/ (commands, policies, confirmations), then finished.
using Mailman.Instance;
using Mailman.Queues;
using Mailman.Requests;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public sealed class RequestRunner(QueueSet queues, Activity activity, MailmanOptions options, TimeProvider time, RequestProcessor requests, ILogger<RequestRunner> logger)
    : QueueRunner(queues, QueueSet.Request, activity, options, time, logger)
{
    // Parsed in place from the entry's file: a 100 MB mail to -request costs what the commands
    // read of it (the first lines of its first text part), not its size.
    protected override bool ProcessHead(EntryHead head, CancellationToken stoppingToken)
    {
        using (var message = Queue.OpenMessage(head))
        {
            requests.Process(head.Claim.Name, head.Metadata, message);
        }

        Queue.Finish(head.Claim);
        return true;
    }

    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
    {
        requests.Process(entry.Claim.Name, entry.Metadata, entry.Message);
        Queue.Finish(entry.Claim);
    }
}
