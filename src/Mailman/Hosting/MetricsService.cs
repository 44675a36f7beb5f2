// Starts the metrics export when configured: queue depth gauges always, the Prometheus scrape
// endpoint only when Mailman:Metrics:PrometheusUrl is set (off by default). The endpoint is
// Kestrel's, with the one-click endpoint's kind of limits (review 37: the HttpListener exporter
// had no connection limit and no header timeout; a local user holding 20,000 connections, a
// header line every 5 s, paused every runner on "Too many open files" and then aborted the
// daemon). Only GET /metrics is served.
using System.Net;
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace Mailman.Hosting;

public sealed class MetricsService(MailmanOptions options, QueueSet queues, Lists.ListStoreFactory lists, InstancePaths paths, ILoggerFactory loggers, ILogger<MetricsService> logger)
    : IHostedService, IAsyncDisposable
{
    /// <summary>Scrapers served at once (Prometheus uses one; a few for people with curl).</summary>
    public const int MaxConnections = 16;

    private MeterProvider? _provider;
    private WebApplication? _app;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Metrics.ObserveQueues(queues);
        Metrics.ObserveDatabase(lists);
        if (string.IsNullOrEmpty(options.Metrics.PrometheusUrl))
        {
            return;
        }

        (_provider, var url) = Metrics.StartPrometheus(options.Metrics.PrometheusUrl);
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = paths.Home, ApplicationName = "mailman-metrics" });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddSingleton(loggers);
        builder.Services.AddSingleton<IHostLifetime, DaemonOwnsSignals>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = 0;
            kestrel.Limits.MaxRequestLineSize = 1024;
            kestrel.Limits.MaxRequestHeadersTotalSize = 8 * 1024;
            kestrel.Limits.MaxRequestHeaderCount = 30;
            kestrel.Limits.MaxConcurrentConnections = MaxConnections;
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(30);
            kestrel.Listen(url.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(url.Host.Trim('[', ']')), url.Port);
        });
        _app = builder.Build();

        // A page in a browser on this machine may reach loopback under its own name (DNS
        // rebinding): only loopback names are answered, as the HttpListener exporter did.
        _app.Use((context, next) =>
        {
            var host = context.Request.Host.Host.Trim('[', ']');
            if (host is "localhost" or "127.0.0.1" or "::1" || host == url.Host.Trim('[', ']'))
            {
                return next(context);
            }

            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        });
        _app.UseOpenTelemetryPrometheusScrapingEndpoint(_provider, predicate: null, path: "/metrics", configureBranchedPipeline: null, optionsName: null);
        _app.Run(context =>
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        });
        try
        {
            await _app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            await _app.DisposeAsync();
            _app = null;
            throw new InvalidOperationException($"configuration: Mailman:Metrics:PrometheusUrl {options.Metrics.PrometheusUrl}: cannot listen: {e.Message}", e);
        }

        logger.LogInformation("Prometheus metrics on {Url}metrics", options.Metrics.PrometheusUrl.TrimEnd('/') + "/");
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        _provider?.Dispose();
    }
}
