// Runs the real runners against a real temp instance with a fake clock, one RunOnce at a time.
using System.IO.Abstractions;
using Mailman.Hosting;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Moderation;
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
        Lists = new ListStoreFactory(instance.Paths);
        var catalog = new HandlerCatalog(Lists.Members);
        Notices = new NoticeSender(Queues, Lists, Time, NullLogger<NoticeSender>.Instance);
        Chain = new ModerationChain(Options.Moderation.Chain, catalog.All);
        Held = new HeldPosts(Queues, Lists, Notices, new HeldTokens(instance.Paths), Options, Time, NullLogger<HeldPosts>.Instance);
        Incoming = new IncomingRunner(Queues, Activity, Options, Time, Lists, Chain, Held, Notices, NullLogger<IncomingRunner>.Instance);
        Pipeline = new PipelineRunner(Queues, Activity, Options, Time, Lists, catalog, Held, NullLogger<PipelineRunner>.Instance);
        Owner = new OwnerRunner(Queues, Activity, Options, Time, Lists, NullLogger<OwnerRunner>.Instance);
        Expiry = new HoldExpiry(Queues, Lists, Held, Time, NullLogger<HoldExpiry>.Instance);
        Outgoing = new OutgoingRunner(Queues, Activity, Options, Time, new FileSystem(), instance.Paths, NullLogger<OutgoingRunner>.Instance);
        Retry = new RetryRunner(Queues, Activity, Options, Time, NullLogger<RetryRunner>.Instance);
    }

    public TempInstance Instance { get; }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));

    public Activity Activity { get; } = new();

    public MailmanOptions Options { get; }

    public QueueSet Queues { get; }

    public NoticeSender Notices { get; }

    public ListStoreFactory Lists { get; }

    public ModerationChain Chain { get; }

    public HeldPosts Held { get; }

    public OwnerRunner Owner { get; }

    public HoldExpiry Expiry { get; }

    public IncomingRunner Incoming { get; }

    public PipelineRunner Pipeline { get; }

    public OutgoingRunner Outgoing { get; }

    public RetryRunner Retry { get; }

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
        Owner.Dispose();
        Expiry.Dispose();
    }
}
