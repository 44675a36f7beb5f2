// The lifetime of a Kestrel server run inside the daemon (the one-click endpoint, the metrics
// endpoint): SIGTERM and SIGINT belong to the daemon's host, which stops the server with
// everything else.
using Microsoft.Extensions.Hosting;

namespace Mailman.Hosting;

internal sealed class DaemonOwnsSignals : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
