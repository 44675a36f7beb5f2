// Starts the metrics export when configured: queue depth gauges always, the Prometheus scrape
// listener only when Mailman:Metrics:PrometheusUrl is set (off by default).
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace Mailman.Hosting;

public sealed class MetricsService(MailmanOptions options, QueueSet queues, Lists.ListStoreFactory lists, ILogger<MetricsService> logger) : IHostedService, IDisposable
{
    private MeterProvider? _provider;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Metrics.ObserveQueues(queues);
        Metrics.ObserveDatabase(lists);
        if (!string.IsNullOrEmpty(options.Metrics.PrometheusUrl))
        {
            _provider = Metrics.StartPrometheus(options.Metrics.PrometheusUrl);
            logger.LogInformation("Prometheus metrics on {Url}metrics", options.Metrics.PrometheusUrl.TrimEnd('/') + "/");
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _provider?.Dispose();
}
