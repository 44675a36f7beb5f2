// A Kestrel server run inside the daemon (the one-click endpoint, the metrics endpoint): the
// slim builder (Native AOT) with no configuration sources, no logging providers of its own and
// only Kestrel's core; one address; small limits every such server shares (no Server header,
// request headers within 10 s, idle keep-alive 30 s) plus its own; signals stay the daemon's host's,
// which stops the server with everything else. A port that cannot be bound is a configuration
// error (78) naming the setting, as for the LMTP listener (review 28: not 73).
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Hosting;

public abstract class DaemonWebServer : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    public abstract Task StartAsync(CancellationToken cancellationToken);

    /// <summary>Builds and starts the server on <paramref name="url"/> (the value of <paramref name="setting"/>).</summary>
    /// <exception cref="InvalidOperationException">The address cannot be listened on: a configuration error.</exception>
    protected async Task Serve(string setting, Uri url, string home, string name, ILoggerFactory loggers, Action<KestrelServerLimits> limits, Action<WebApplication> routes, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = home, ApplicationName = name });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddSingleton<ILoggerFactory>(new WithoutHostLines(loggers));
        builder.Services.AddSingleton<IHostLifetime, DaemonOwnsSignals>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(30);
            limits(kestrel.Limits);
            kestrel.Listen(url.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(url.Host.Trim('[', ']')), url.Port);
        });
        var app = builder.Build();
        routes(app);
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new InvalidOperationException($"configuration: {setting} {url.OriginalString}: cannot listen: {e.Message}", e);
        }

        _app = app;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken);
        }
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    // The server's own host would log its "Hosting failed to start" before the daemon's host logs
    // the same words for the same failure: its lines are left to the daemon's host (review 87).
    private sealed class WithoutHostLines(ILoggerFactory daemon) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName)
            => categoryName.StartsWith("Microsoft.Extensions.Hosting", StringComparison.Ordinal) ? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance : daemon.CreateLogger(categoryName);

        public void AddProvider(ILoggerProvider provider) => daemon.AddProvider(provider);

        public void Dispose()
        {
            // The daemon's factory: the daemon disposes it.
        }
    }

    private sealed class DaemonOwnsSignals : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
