// A runner that dies of an unexpected error stops the host; `serve` must then exit non-zero, or
// systemd's Restart=on-failure leaves the daemon down (the hold-expiry sweep did so with exit 0).
using Mailman.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Tests.Hosting;

public sealed class RunnerFailureTests
{
    private sealed class Failing : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            await Task.Yield();
            throw new OverflowException("what nobody expected");
        }
    }

    private sealed class Quiet : BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Delay(Timeout.Infinite, stoppingToken);
    }

    private sealed class Stopper(IHostApplicationLifetime lifetime) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            await Task.Yield();
            lifetime.StopApplication();
        }
    }

    private static IHost Host(Action<IServiceCollection> add)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.StopHost);
        builder.Services.AddHostedService<Quiet>();
        add(builder.Services);
        return builder.Build();
    }

    [Fact]
    public void A_runner_that_throws_is_counted_as_a_failure_and_a_clean_stop_is_not()
    {
        using (var failing = Host(s => s.AddHostedService<Failing>()))
        {
            Assert.Equal(1, DaemonHost.RunCountingFailures(failing));
        }

        using var clean = Host(s => s.AddHostedService<Stopper>());
        Assert.Equal(0, DaemonHost.RunCountingFailures(clean));
    }
}
