// Composes the daemon: configuration, logging, queues, the list store and one hosted service per
// runner. `serve` runs it; tests run it in-process with a fake clock.
using System.IO.Abstractions;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Moderation;
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

        // Passwords and CA files are read once, here: a bad one refuses the start with one line.
        options.Smtp.ResolvedRelays();

        // So is a list database that cannot be used (empty, not SQLite, damaged): not a start that shunts every post.
        using (var store = new ListStore(paths.Database, create: true))
        {
            store.CheckIntact();
        }

        var logger = Logging.Create(configuration, paths, out var logFiles);
        if (Logging.WhyUnwritable(configuration, paths) is { } unwritable)
        {
            // To the console (the journal), which has every line the files lose.
            logger.Warning("The log files in {LogsDirectory} cannot be written ({Error}): their lines are lost until that is mended (the console and the journal have them); they are written again once there is room, and SIGHUP opens them again",
                paths.LogsDirectory, unwritable);
        }

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
        builder.Services.AddSingleton(logFiles);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(time ?? TimeProvider.System);
        builder.Services.AddSingleton<IFileSystem, FileSystem>();
        builder.Services.AddSingleton<QueueSet>();
        builder.Services.AddSingleton<Activity>();
        builder.Services.AddSingleton<ListStoreFactory>();
        builder.Services.AddSingleton<Notices.NoticeSender>();
        builder.Services.AddSingleton<SecretKey>();
        builder.Services.AddSingleton<Http.OneClickLinks>();
        builder.Services.AddSingleton<Bounces.BounceProcessor>();
        builder.Services.AddSingleton(sp =>
        {
            var lists = sp.GetRequiredService<ListStoreFactory>();
            var dmarc = Dmarc.DmarcServices.Create(options, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>());
            return new HandlerCatalog(lists.Members, dmarc, sp.GetRequiredService<Http.OneClickLinks>());
        });
        builder.Services.AddRequests();
        builder.Services.AddSingleton<Http.OneClickEndpoint>();
        builder.Services.AddSingleton(sp => new ModerationChain(options.Moderation.Chain, sp.GetRequiredService<HandlerCatalog>().All.Where(h => HandlerCatalog.Checks.Contains(h.Name)), sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<ModerationChain>>()));
        builder.Services.AddSingleton<HeldPosts>();
        builder.Services.AddSingleton<ModeratorSummary>();
        builder.Services.AddSingleton<ModerationSweep>();
        // The request runner hands a moderator's reply to LIST-confirm+TOKEN@ to the handler of its kind.
        builder.Services.AddSingleton<Requests.IConfirmationHandler, HeldPostConfirmation>();

        // Registration order is start order: recovery finishes before any runner claims; the
        // listeners bind before the start line says they listen and before any runner takes
        // work, so a port already in use stops the start with nothing begun (an entry they
        // accept before the runners wait is found by the runners' first scan).
        builder.Services.AddHostedService<StartupRecovery>();
        if (options.Lmtp.Url.Length > 0)
        {
            builder.Services.AddHostedService<Lmtp.LmtpServer>();
        }

        if (options.Http.Url.Length > 0)
        {
            builder.Services.AddHostedService<Http.OneClickServer>();
        }

        builder.Services.AddHostedService<LifecycleLog>();
        builder.Services.AddHostedService<HangupHandler>();
        builder.Services.AddHostedService<InstanceWatch>();
        builder.Services.AddHostedService<MetricsService>();
        builder.Services.AddHostedService<IncomingRunner>();
        builder.Services.AddHostedService<PipelineRunner>();
        builder.Services.AddHostedService<OutgoingRunner>();
        builder.Services.AddHostedService<RetryRunner>();
        builder.Services.AddHostedService<RequestRunner>();
        builder.Services.AddHostedService<BounceRunner>();
        builder.Services.AddHostedService<OwnerRunner>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ModerationSweep>());
        builder.Services.AddHostedService<ClaimWatchdog>();

        if (exitWhenIdle)
        {
            builder.Services.AddHostedService<IdleMonitor>();
        }

        return builder.Build();
    }

    /// <summary>Runs the host until it stops; returns how many runners stopped on an unexpected error.</summary>
    public static int RunCountingFailures(IHost host)
    {
        // Taken before Run, which disposes the services on its way out.
        var runners = host.Services.GetServices<IHostedService>().OfType<BackgroundService>().ToList();
        host.Run();
        return runners.Count(r => r.ExecuteTask is { IsFaulted: true });
    }
}
