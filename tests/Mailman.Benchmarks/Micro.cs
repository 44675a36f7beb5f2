// BenchmarkDotNet micro-benchmarks: the per-recipient render path (the bytes allocated per copy
// should be the recipient's own strings and little else) and the switchboard's enqueue/claim.
using System.IO.Abstractions;
using BenchmarkDotNet.Attributes;
using Mailman.Delivery;
using Mailman.Delivery.Smtp;
using Mailman.Lists;
using Mailman.Pipeline;
using Mailman.Pipeline.Handlers;
using Mailman.Queues;
using Mailman.Runners;
using MimeKit;

namespace Mailman.Benchmarks;

[MemoryDiagnoser]
public class RenderPerRecipient
{
    private Carrier _carrier = null!;
    private MimeMessage _scratch = null!;
    private Recipient _recipient;
    private string _home = "";

    [Params(10 * 1024, 1024 * 1024)]
    public int Size { get; set; }

    /// <summary>With the member's one-click List-Unsubscribe link spliced in (Mailman:Http:PublicUrl set).</summary>
    [Params(false, true)]
    public bool OneClick { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var raw = Workloads.Post(new Row("micro", Size, false, 100, 0, 1));
        var list = new MailingList { Name = ListName.Parse("bench@example.org"), FooterTemplate = "sent to $user_address" };
        var post = new PostContext(list, PostParser.Parse(raw), new EntryMetadata { List = list.Name.Fqdn }, raw.Length);
        var options = new Mailman.Instance.MailmanOptions();
        options.Http.PublicUrl = OneClick ? EndToEnd.OneClickUrl : "";
        _home = Path.Combine(Path.GetTempPath(), "mailman-bench-micro-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(_home, "var"));
        var links = new Mailman.Http.OneClickLinks(options, new Mailman.Instance.SecretKey(new Mailman.Instance.InstancePaths(_home)));
        new ListHeaders().Process(post);
        new Personalize(links).Process(post);
        new Decorate().Process(post);
        var flat = WireFormat.Flatten(post.Message);
        _carrier = new Carrier(PreparedPost.Create(flat, post.SlotNonce));
        _scratch = RecipientValues.NewScratch();
        _recipient = new Recipient("abcdefg@example.com", "") { UnsubscribeToken = OneClick ? links.Token(list.Name, "abcdefg@example.com", "0123456789abcdef") : null };
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_home, true);

    /// <summary>Everything per copy except the socket: values, To:, and writing the copy.</summary>
    [Benchmark]
    public long RenderOneCopy()
    {
        _carrier.SetRecipient(RecipientValues.For(_recipient, _scratch));
        _carrier.Message.WriteTo(Carrier.SendOptions, Stream.Null);
        return _carrier.Body.Size;
    }
}

[MemoryDiagnoser]
public class SwitchboardEnqueueClaim
{
    private Switchboard _queue = null!;
    private string _dir = null!;
    private readonly byte[] _message = new byte[10 * 1024];

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "mailman-bench-sb-" + Guid.NewGuid().ToString("N")[..8]);
        _queue = new Switchboard(new FileSystem(), _dir, "in", TimeProvider.System);
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_dir, true);

    /// <summary>A durable enqueue (write, fsync, rename, fsync dir), a claim, a load and a finish.</summary>
    [Benchmark]
    public int EnqueueClaimFinish()
    {
        _queue.Enqueue(new EntryMetadata { List = "bench@example.org" }, _message);
        var claim = _queue.TryClaim()!;
        var loaded = _queue.Load(claim);
        _queue.Finish(claim);
        return loaded.Message.Length;
    }
}
