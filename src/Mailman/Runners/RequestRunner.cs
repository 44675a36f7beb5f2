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
    protected override void Process(LoadedEntry entry, CancellationToken stoppingToken)
    {
        requests.Process(entry.Claim.Name, entry.Metadata, entry.Message);
        Queue.Finish(entry.Claim);
    }
}
