// What the operator verbs that act on queues and held posts need, composed by hand as the host
// composes the daemon: the queues, the list store, the notice sender and the held posts, with a
// logger whose vette lines go to the same vette-DATE.log as the daemon's, and the queue lock
// that keeps a starting daemon's recovery off the entries they claim.
using System.IO.Abstractions;
using Mailman.Hosting;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Notices;
using Mailman.Queues;
using Mailman.Requests;
using Microsoft.Extensions.Logging;
using Serilog.Extensions.Logging;

namespace Mailman.Cli;

internal sealed class VerbServices : IDisposable
{
    private readonly Serilog.Core.Logger _log;
    private readonly SerilogLoggerFactory _factory;
    private readonly IDisposable _queueLock;
    private readonly AppendFileSink? _vette;

    public VerbServices(InstancePaths paths)
    {
        paths.EnsureCreated();

        // These verbs claim entries: a daemon starting now must not take them for a crash's leftovers.
        _queueLock = QueueLock.Shared(paths, TimeSpan.FromSeconds(60));
        var configuration = MailmanConfiguration.Build(paths);
        Options = MailmanConfiguration.Options(configuration);
        _log = Logging.CreateForVerb(configuration, paths, out _vette);
        if (Logging.WhyUnwritable(configuration, paths) is { } unwritable)
        {
            // What is done here is still done; only its vette line is lost (review 42).
            Console.Error.WriteLine($"mailman: warning: the log files in {paths.LogsDirectory} cannot be written ({unwritable}): what this command does is not recorded in the vette log");
        }
        _factory = new SerilogLoggerFactory(_log);
        var time = TimeProvider.System;
        Queues = new QueueSet(new FileSystem(), paths, time);
        Lists = new ListStoreFactory(paths);
        var notices = new NoticeSender(Queues, Lists, time, _factory.CreateLogger<NoticeSender>());
        var moderators = new ModeratorNotices(notices, Options, time, _factory.CreateLogger<ModeratorNotices>());
        Held = new HeldPosts(Queues, paths, Lists, notices, moderators, new ConfirmationTokens(new SecretKey(paths)), time, _factory.CreateLogger<HeldPosts>());

        // Its category puts its lines in the vette log, beside the held posts' (AreaEnricher).
        Vette = _factory.CreateLogger("Mailman.Moderation.Verbs");
    }

    /// <summary>The vette log, for what a verb does to posts outside moderation (a deleted list's set aside).</summary>
    public ILogger Vette { get; }

    public MailmanOptions Options { get; }

    public QueueSet Queues { get; }

    public ListStoreFactory Lists { get; }

    public HeldPosts Held { get; }

    /// <summary>Who acts from the command line, for the vette log.</summary>
    public static string Actor => "cli:" + Environment.UserName;

    public void Dispose()
    {
        Queues.Dispose();
        _factory.Dispose();
        _log.Dispose();
        if (_vette?.Lost is { Count: > 0 } lost)
        {
            // Review 75: a vette file that could not be opened (a directory at its name) lost
            // the verb's lines without a word; what was done is still done.
            Console.Error.WriteLine($"mailman: warning: {lost.Count} vette log line(s) of this command could not be written ({lost.Why}): what it did is not recorded in the vette log");
        }

        _queueLock.Dispose();
    }
}
