// SIGHUP (systemctl reload): logged and absorbed, so a reload never kills the daemon. Nothing
// needs reloading: list settings and members are read from the database for every post, and
// Serilog's file sink rolls to a new file each day by itself.
using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Hosting;

public sealed class HangupHandler(ILogger<HangupHandler> logger) : IHostedService, IDisposable
{
    private PosixSignalRegistration? _registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _registration = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            logger.LogInformation("SIGHUP received: list settings are read per post and logs roll daily; nothing to reload");
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _registration?.Dispose();
}
