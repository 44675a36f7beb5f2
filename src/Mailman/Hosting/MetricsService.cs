// Starts the metrics export when configured: queue depth gauges always, the Prometheus scrape
// endpoint only when Mailman:Metrics:PrometheusUrl is set (off by default). The endpoint is
// Kestrel's, with the one-click endpoint's kind of limits (review 37: the HttpListener exporter
// had no connection limit and no header timeout; a local user holding 20,000 connections, a
// header line every 5 s, paused every runner on "Too many open files" and then aborted the
// daemon). Only GET /metrics is served.
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace Mailman.Hosting;

public sealed class MetricsService(MailmanOptions options, QueueSet queues, Lists.ListStoreFactory lists, InstancePaths paths, ILoggerFactory loggers, ILogger<MetricsService> logger)
    : DaemonWebServer
{
    /// <summary>Scrapers served at once (Prometheus uses one; a few for people with curl).</summary>
    public const int MaxConnections = 16;

    private MeterProvider? _provider;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        Metrics.ObserveQueues(queues);
        Metrics.ObserveDatabase(lists);
        if (string.IsNullOrEmpty(options.Metrics.PrometheusUrl))
        {
            return;
        }

        (_provider, var url) = Metrics.StartPrometheus(options.Metrics.PrometheusUrl);
        await Serve("Mailman:Metrics:PrometheusUrl", url, paths.Home, "mailman-metrics", loggers, limits =>
        {
            limits.MaxRequestBodySize = 0;
            limits.MaxRequestLineSize = 1024;
            limits.MaxRequestHeadersTotalSize = 8 * 1024;
            limits.MaxRequestHeaderCount = 30;
            limits.MaxConcurrentConnections = MaxConnections;
        }, app =>
        {
            // A page in a browser on this machine may reach loopback under its own name (DNS
            // rebinding): only loopback names are answered, as the HttpListener exporter did.
            app.Use((context, next) =>
            {
                var host = context.Request.Host.Host.Trim('[', ']');
                if (!(host is "localhost" or "127.0.0.1" or "::1" || host == url.Host.Trim('[', ']')))
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return Task.CompletedTask;
                }

                // A scrape reads (review 95: POST, DELETE and OPTIONS were answered with the metrics).
                if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
                {
                    context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                    context.Response.Headers.Allow = "GET, HEAD";
                    return Task.CompletedTask;
                }

                return next(context);
            });
            app.UseOpenTelemetryPrometheusScrapingEndpoint(_provider, predicate: null, path: "/metrics", configureBranchedPipeline: null, optionsName: null);
            app.Run(context =>
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            });
        }, cancellationToken);
        logger.LogInformation("Prometheus metrics on {Url}metrics", options.Metrics.PrometheusUrl.TrimEnd('/') + "/");
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _provider?.Dispose();
    }
}
