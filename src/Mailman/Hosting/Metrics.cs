// The daemon's metrics (System.Diagnostics.Metrics, meter "Mailman"), exported for scraping by
// OpenTelemetry's Prometheus listener when Mailman:Metrics:PrometheusUrl names a loopback URL.
using System.Diagnostics.Metrics;
using Mailman.Queues;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Mailman.Hosting;

public static class Metrics
{
    public const string MeterName = "Mailman";

    private static readonly Meter Meter = new(MeterName, "1.0");

    public static readonly Counter<long> Received = Meter.CreateCounter<long>("mailman.messages.received", "{message}", "posts taken from the in queue");

    public static readonly Counter<long> Delivered = Meter.CreateCounter<long>("mailman.copies.delivered", "{copy}", "recipients the SMTP server accepted");

    public static readonly Counter<long> Deferred = Meter.CreateCounter<long>("mailman.copies.deferred", "{copy}", "recipients sent to retry");

    public static readonly Counter<long> Bounced = Meter.CreateCounter<long>("mailman.copies.bounced", "{copy}", "recipients refused permanently");

    public static readonly Histogram<double> TransactionSeconds = Meter.CreateHistogram<double>("mailman.smtp.transaction.duration", "s", "one SMTP transaction, MAIL FROM to the reply after the data");

    /// <summary>Observes the depth of every queue (entries waiting or claimed).</summary>
    public static void ObserveQueues(QueueSet queues)
        => Meter.CreateObservableGauge("mailman.queue.depth", () => queues.All.Select(q =>
            new Measurement<long>(q.Pending().Count + q.Claimed().Count, new KeyValuePair<string, object?>("queue", q.Name))), "{entry}", "entries in each queue");

    /// <summary>Observes how many database connections the daemon opened (one per post is the budget).</summary>
    public static void ObserveDatabase(Lists.ListStoreFactory lists)
        => Meter.CreateObservableCounter("mailman.db.connections.opened", () => lists.Opened, "{connection}", "list database connections opened");

    /// <summary>
    /// The meter provider the Prometheus scrape endpoint reads (served by <see cref="MetricsService"/>
    /// on <paramref name="url"/>'s loopback address); the URL is checked here.
    /// </summary>
    /// <exception cref="InvalidOperationException">The URL is not an http URL on a loopback address.</exception>
    public static (MeterProvider Provider, Uri Url) StartPrometheus(string url)
    {
        var uri = Instance.MetricsOptions.ParseUrl(url) ?? throw new InvalidOperationException("configuration: " + Instance.MetricsOptions.UrlError(url));

        var provider = Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(r => r.AddService("mailman"))
            .AddMeter(MeterName)
            .AddPrometheusExporter(o => o.ScopeInfoEnabled = false)
            .Build();
        return (provider, uri);
    }
}
