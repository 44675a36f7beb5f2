// Runs the one-click endpoint in the daemon when Mailman:Http:Url is set (Hosting/DaemonWebServer:
// Kestrel in the daemon), on the one configured address (loopback unless allowed otherwise),
// plain HTTP behind a TLS-terminating proxy. Small limits; nothing but the endpoint is served.
using Mailman.Instance;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Mailman.Http;

public sealed class OneClickServer(MailmanOptions options, InstancePaths paths, OneClickEndpoint endpoint, ILoggerFactory loggers, ILogger<OneClickServer> logger)
    : Hosting.DaemonWebServer
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        var url = new Uri(options.Http.Url);
        await Serve("Mailman:Http:Url", url, paths.Home, "mailman", loggers, limits =>
        {
            limits.MaxRequestBodySize = OneClickEndpoint.MaxBodyBytes;
            limits.MaxRequestLineSize = 4096;
            limits.MaxRequestHeadersTotalSize = 16 * 1024;
            limits.MaxRequestHeaderCount = 50;
            limits.MaxConcurrentConnections = 256;
            // A connection that sends nothing holds one of those for this long (review 78: 300
            // silent connections kept the endpoint from answering for 30 s at a time).
            limits.KeepAliveTimeout = TimeSpan.FromSeconds(10);
        }, app => app.Run(new Microsoft.AspNetCore.Http.RequestDelegate(endpoint.Handle)), cancellationToken);
        logger.LogInformation("One-click unsubscribe endpoint listening on {Url}; links point to {PublicUrl}", url.AbsoluteUri,
            options.Http.PublicUrl.Length > 0 ? options.Http.PublicUrl : "(none: Mailman:Http:PublicUrl is not set)");
    }
}
