// Runs the one-click endpoint in the daemon when Mailman:Http:Url is set: ASP.NET Core's Kestrel
// through the slim builder (Native AOT), on the one configured address (loopback unless allowed
// otherwise), plain HTTP behind a TLS-terminating proxy. Small limits; nothing but the endpoint
// is served; signals stay the daemon's.
using System.Net;
using Mailman.Instance;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Http;

public sealed class OneClickServer(MailmanOptions options, InstancePaths paths, OneClickEndpoint endpoint, ILoggerFactory loggers, ILogger<OneClickServer> logger)
    : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var url = new Uri(options.Http.Url);
        // The empty builder: no configuration sources (no appsettings.json, no ASPNETCORE_URLS),
        // no logging providers of its own, only Kestrel's core.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = paths.Home, ApplicationName = "mailman" });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddSingleton(loggers);
        builder.Services.AddSingleton<IHostLifetime, Hosting.DaemonOwnsSignals>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = OneClickEndpoint.MaxBodyBytes;
            kestrel.Limits.MaxRequestLineSize = 4096;
            kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            kestrel.Limits.MaxRequestHeaderCount = 50;
            kestrel.Limits.MaxConcurrentConnections = 256;
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(30);
            kestrel.Listen(url.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(url.Host.Trim('[', ']')), url.Port);
        });
        _app = builder.Build();
        _app.Run(endpoint.Handle);
        try
        {
            await _app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            // As the LMTP listener: a configuration error (78) naming the setting, not 73
            // (review 28: "Failed to bind to address", exit 73).
            await _app.DisposeAsync();
            _app = null;
            throw new InvalidOperationException($"configuration: Mailman:Http:Url {options.Http.Url}: cannot listen: {e.Message}", e);
        }

        logger.LogInformation("One-click unsubscribe endpoint listening on {Url}; links point to {PublicUrl}", url.AbsoluteUri,
            options.Http.PublicUrl.Length > 0 ? options.Http.PublicUrl : "(none: Mailman:Http:PublicUrl is not set)");
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
    }
}
