// The services of the daemon that a verb needs to confirm, approve or welcome (notices, the
// request component), composed as the daemon composes them; logging goes to the instance's log
// files only, so a verb's own output stays its own.
using System.IO.Abstractions;
using Mailman.Hosting;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Notices;
using Mailman.Queues;
using Mailman.Requests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serilog;

namespace Mailman.Cli;

internal static class CliServices
{
    public static ServiceProvider Build(InstancePaths paths)
    {
        paths.EnsureCreated();
        var configuration = MailmanConfiguration.Build(paths, [new("Logging:Console", "false")]);
        var services = new ServiceCollection()
            .AddSingleton(paths)
            .AddSingleton(MailmanConfiguration.Options(configuration))
            .AddSingleton(TimeProvider.System)
            .AddSingleton<IFileSystem, FileSystem>()
            .AddSingleton<QueueSet>()
            .AddSingleton<ListStoreFactory>()
            .AddSingleton<NoticeSender>()
            .AddLogging()
            .AddSerilog(Logging.Create(configuration, paths), dispose: true)
            .AddRequests();
        return services.BuildServiceProvider();
    }
}
