// Runs the real runners against a real temp instance with a fake clock, one RunOnce at a time.
using System.IO.Abstractions;
using Mailman.Bounces;
using Mailman.Dmarc;
using Mailman.Hosting;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Notices;
using Mailman.Pipeline;
using Mailman.Queues;
using Mailman.Requests;
using Mailman.Runners;
using Mailman.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Mailman.Tests.Runners;

internal sealed class RunnerHarness : IDisposable
{
    public RunnerHarness(TempInstance instance, Action<MailmanOptions>? configure = null)
    {
        Instance = instance;
        Options = MailmanConfiguration.Options(MailmanConfiguration.Build(instance.Paths));
        configure?.Invoke(Options);
        Queues = new QueueSet(new FileSystem(), instance.Paths, Time);

        // As serve at its start: the runners open the database, never make it.
        new ListStore(instance.Paths.Database, create: true).Dispose();
        var lists = Lists = new ListStoreFactory(instance.Paths);
        var dmarc = new DmarcServices(new DmarcPolicyLookup(Resolver, NullLogger<DmarcPolicyLookup>.Instance), Options.Dmarc.RemoveDkimHeaders, NullLogger.Instance);
        var catalog = new HandlerCatalog(lists.Members, dmarc, new Mailman.Http.OneClickLinks(Options, new SecretKey(instance.Paths)));
        _loggers = LoggerFactory.Create(b => b.AddProvider(Logs));
        Notices = new NoticeSender(Queues, lists, Time, new Logger<NoticeSender>(_loggers));
        _services = new ServiceCollection()
            .AddSingleton(instance.Paths).AddSingleton(Options).AddSingleton<TimeProvider>(Time).AddSingleton(Queues).AddSingleton(lists).AddSingleton(Notices)
            .AddSingleton(_loggers).AddSingleton(typeof(ILogger<>), typeof(Logger<>))
            .AddRequests()
            .AddSingleton<HeldPosts>()
            .AddSingleton<ModeratorSummary>()
            .AddSingleton<IConfirmationHandler, HeldPostConfirmation>()
            .BuildServiceProvider();
        Held = _services.GetRequiredService<HeldPosts>();
        Chain = new ModerationChain(Options.Moderation.Chain, catalog.All);
        Requests = new RequestRunner(Queues, Activity, Options, Time, _services.GetRequiredService<RequestProcessor>(), _services.GetRequiredService<Membership>(), NullLogger<RequestRunner>.Instance);
        Incoming = new IncomingRunner(Queues, Activity, Options, Time, lists, Chain, Held, Notices, new Logger<IncomingRunner>(_loggers));
        Pipeline = new PipelineRunner(Queues, Activity, Options, Time, lists, catalog, Held, NullLogger<PipelineRunner>.Instance);
        Owner = new OwnerRunner(Queues, Activity, Options, Time, lists, new Logger<OwnerRunner>(_loggers));
        Expiry = new ModerationSweep(Queues, lists, Held, _services.GetRequiredService<ModeratorSummary>(), Time, NullLogger<ModerationSweep>.Instance);
        Processor = new BounceProcessor(lists, Notices, Time, BounceLog);
        Bounces = new BounceRunner(Queues, Activity, Options, Time, Processor, BounceLog.For<BounceRunner>());
        Outgoing = new OutgoingRunner(Queues, Activity, Options, Time, new FileSystem(), instance.Paths, new Logger<OutgoingRunner>(_loggers), Processor);
        Retry = new RetryRunner(Queues, Activity, Options, Time, instance.Paths, NullLogger<RetryRunner>.Instance);
    }

    public TempInstance Instance { get; }

    /// <summary>The DMARC lookups' DNS: scripted per test (Dmarc/FakeTxtResolver).</summary>
    public Tests.Dmarc.FakeTxtResolver Resolver { get; } = new();

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));

    public Activity Activity { get; } = new();

    public MailmanOptions Options { get; }

    public QueueSet Queues { get; }

    public NoticeSender Notices { get; }

    public ListStoreFactory Lists { get; }

    public ModerationChain Chain { get; }

    public HeldPosts Held { get; }

    public OwnerRunner Owner { get; }

    public ModerationSweep Expiry { get; }

    public IncomingRunner Incoming { get; }

    public PipelineRunner Pipeline { get; }

    public OutgoingRunner Outgoing { get; }

    public RetryRunner Retry { get; }

    public RequestRunner Requests { get; }

    /// <summary>Everything the request component, the notice sender and the endpoint logged.</summary>
    public CapturedLogs Logs { get; } = new();

    /// <summary>The request component's services (Membership, Confirmations, ...), as the daemon composes them.</summary>
    public IServiceProvider Services => _services;

    private readonly ServiceProvider _services;
    private readonly ILoggerFactory _loggers;

    public BounceProcessor Processor { get; }

    public BounceRunner Bounces { get; }

    /// <summary>What the bounce processor and runner logged (the bounce log area).</summary>
    public CapturingLogger<BounceProcessor> BounceLog { get; } = new();

    /// <summary>Queues a message as inject does for LIST-bounces[+VERP]@HOST (Postfix's ${recipient} as the destination).</summary>
    public string InjectBounce(string list, string destination, byte[] raw, string? sender = "MAILER-DAEMON")
        => Queues[QueueSet.Bounces].Enqueue(new EntryMetadata { List = list, Received = Time.GetUtcNow(), Destination = destination, Sender = sender }, raw);

    public string Inject(string list, byte[] raw, string? sender = null)
        => Queues[QueueSet.In].Enqueue(new EntryMetadata { List = list, Received = Time.GetUtcNow(), Sender = sender }, raw);

    /// <summary>Queues a mail to one of a list's request addresses (LIST-join@, LIST-confirm+TOKEN@, ...), as inject does.</summary>
    public string InjectRequest(string address, byte[] raw, string? sender)
    {
        ListAddress.TryResolve(address, out var resolved, out _);
        return Queues[QueueSet.Request].Enqueue(new EntryMetadata { List = resolved!.List.Fqdn, Sender = sender, Destination = address, Received = Time.GetUtcNow() }, raw);
    }

    /// <summary>Runs a runner until its queue has nothing it can claim.</summary>
    public static int Drain(QueueRunner runner)
    {
        var n = 0;
        while (runner.RunOnce(CancellationToken.None))
        {
            n++;
        }

        return n;
    }

    public void Dispose()
    {
        Queues.Dispose();
        Incoming.Dispose();
        Pipeline.Dispose();
        Outgoing.Dispose();
        Retry.Dispose();
        Requests.Dispose();
        Owner.Dispose();
        Expiry.Dispose();
        _services.Dispose();
        _loggers.Dispose();
        Bounces.Dispose();
    }
}
