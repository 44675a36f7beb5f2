// Composes the daemon: configuration, logging, queues, the list store and one hosted service per
// runner. `serve` runs it; tests run it in-process with a fake clock.
using System.IO.Abstractions;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Pipeline;
using Mailman.Queues;
using Mailman.Requests;
using Mailman.Runners;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serilog;

namespace Mailman.Hosting;

public static class DaemonHost
{
    /// <summary>The default of Mailman:StopTimeout: how long in-flight work may take to finish or be put back on SIGTERM.</summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(90);

    public static IHost Build(InstancePaths paths, bool exitWhenIdle, TimeProvider? time = null, IEnumerable<KeyValuePair<string, string?>>? overrides = null)
    {
        paths.EnsureCreated();
        var configuration = MailmanConfiguration.Build(paths, overrides);
        var options = MailmanConfiguration.Options(configuration);
        var logger = Logging.Create(configuration, paths);

        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddConfiguration(configuration);
        builder.Services.AddSerilog(logger, dispose: true);
        builder.Services.Configure<HostOptions>(o =>
        {
            o.ShutdownTimeout = options.StopTimeout;
            o.ServicesStartConcurrently = false;
            o.ServicesStopConcurrently = true;
            o.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.StopHost;
        });
        builder.Services.AddSystemd();
        builder.Services.AddSingleton(paths);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(time ?? TimeProvider.System);
        builder.Services.AddSingleton<IFileSystem, FileSystem>();
        builder.Services.AddSingleton<QueueSet>();
        builder.Services.AddSingleton<Activity>();
        builder.Services.AddSingleton<ListStoreFactory>();
        builder.Services.AddSingleton<Notices.NoticeSender>();
        builder.Services.AddSingleton<SecretKey>();
        builder.Services.AddSingleton<Http.OneClickLinks>();
        builder.Services.AddSingleton(sp =>
        {
            var lists = sp.GetRequiredService<ListStoreFactory>();
            var dmarc = Dmarc.DmarcServices.Create(options, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>());
            return new HandlerCatalog(lists.IsMember, lists.Members, dmarc, sp.GetRequiredService<Http.OneClickLinks>());
        });
        builder.Services.AddRequests();
        builder.Services.AddSingleton<Http.OneClickEndpoint>();

        // Registration order is start order: recovery finishes before any runner claims.
        builder.Services.AddHostedService<StartupRecovery>();
        builder.Services.AddHostedService<LifecycleLog>();
        builder.Services.AddHostedService<HangupHandler>();
        builder.Services.AddHostedService<MetricsService>();
        builder.Services.AddHostedService<IncomingRunner>();
        builder.Services.AddHostedService<PipelineRunner>();
        builder.Services.AddHostedService<OutgoingRunner>();
        builder.Services.AddHostedService<RetryRunner>();
        builder.Services.AddHostedService<RequestRunner>();
        builder.Services.AddHostedService<ClaimWatchdog>();
        if (options.Http.Url.Length > 0)
        {
            builder.Services.AddHostedService<Http.OneClickServer>();
        }

        // After the runners, so an entry LMTP accepts wakes a runner that is already waiting.
        if (options.Lmtp.Url.Length > 0)
        {
            builder.Services.AddHostedService<Lmtp.LmtpServer>();
        }

        if (exitWhenIdle)
        {
            builder.Services.AddHostedService<IdleMonitor>();
        }

        return builder.Build();
    }
}
