// Runs the real runners against a real temp instance with a fake clock, one RunOnce at a time.
using System.IO.Abstractions;
using Mailman.Bounces;
using Mailman.Dmarc;
using Mailman.Hosting;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Notices;
using Mailman.Pipeline;
using Mailman.Queues;
using Mailman.Runners;
using Mailman.TestSupport;
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
        var lists = new ListStoreFactory(instance.Paths);
        var dmarc = new DmarcServices(new DmarcPolicyLookup(Resolver, NullLogger<DmarcPolicyLookup>.Instance), Options.Dmarc.RemoveDkimHeaders, NullLogger.Instance);
        var catalog = new HandlerCatalog(lists.IsMember, lists.Members, dmarc);
        Notices = new NoticeSender(Queues, lists, Time, NullLogger<NoticeSender>.Instance);
        Incoming = new IncomingRunner(Queues, Activity, Options, Time, lists, catalog, Notices, NullLogger<IncomingRunner>.Instance);
        Pipeline = new PipelineRunner(Queues, Activity, Options, Time, lists, catalog, NullLogger<PipelineRunner>.Instance);
        Processor = new BounceProcessor(lists, Notices, Time, BounceLog);
        Bounces = new BounceRunner(Queues, Activity, Options, Time, Processor, BounceLog.For<BounceRunner>());
        Outgoing = new OutgoingRunner(Queues, Activity, Options, Time, new FileSystem(), instance.Paths, NullLogger<OutgoingRunner>.Instance, Processor);
        Retry = new RetryRunner(Queues, Activity, Options, Time, NullLogger<RetryRunner>.Instance);
    }

    public TempInstance Instance { get; }

    /// <summary>The DMARC lookups' DNS: scripted per test (Dmarc/FakeTxtResolver).</summary>
    public Tests.Dmarc.FakeTxtResolver Resolver { get; } = new();

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));

    public Activity Activity { get; } = new();

    public MailmanOptions Options { get; }

    public QueueSet Queues { get; }

    public NoticeSender Notices { get; }

    public IncomingRunner Incoming { get; }

    public PipelineRunner Pipeline { get; }

    public OutgoingRunner Outgoing { get; }

    public RetryRunner Retry { get; }

    public BounceProcessor Processor { get; }

    public BounceRunner Bounces { get; }

    /// <summary>What the bounce processor and runner logged (the bounce log area).</summary>
    public CapturingLogger<BounceProcessor> BounceLog { get; } = new();

    /// <summary>Queues a message as inject does for LIST-bounces[+VERP]@HOST (Postfix's ${recipient} as the destination).</summary>
    public string InjectBounce(string list, string destination, byte[] raw, string? sender = "MAILER-DAEMON")
        => Queues[QueueSet.Bounces].Enqueue(new EntryMetadata { List = list, Received = Time.GetUtcNow(), Destination = destination, Sender = sender }, raw);

    public string Inject(string list, byte[] raw)
        => Queues[QueueSet.In].Enqueue(new EntryMetadata { List = list, Received = Time.GetUtcNow() }, raw);

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
        Bounces.Dispose();
    }
}
