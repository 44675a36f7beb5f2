// The daemon works on its instance by path. An operator who moves the home away and puts a copy
// in its place while the daemon runs (mv, then cp -a) leaves the serve lock on the old directory:
// a second daemon locks the copy and both deliver from one tree (review 29: 35 of 40 members got
// a post twice). The home's device and inode are noted at start and compared every few seconds;
// when the path names another directory, or none, the daemon stops, with one critical line.
using Mailman.Instance;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Hosting;

public sealed class InstanceWatch(InstancePaths paths, TimeProvider time, IHostApplicationLifetime lifetime, ILogger<InstanceWatch> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var home = FileOwner.Identity(paths.Home);
        if (home is null)
        {
            return;
        }

        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(Interval, time, stoppingToken);
                if (FileOwner.Identity(paths.Home) != home)
                {
                    logger.LogCritical("The instance's home {Home} is no longer the directory this daemon started on (moved or replaced while it ran): stopping, so that two daemons never deliver from one tree; start it again on the instance as it is now",
                        paths.Home);
                    lifetime.StopApplication();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
