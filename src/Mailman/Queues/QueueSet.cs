// The instance's queues by name, each with its wake-up signal.
using System.IO.Abstractions;
using Mailman.Instance;

namespace Mailman.Queues;

/// <summary>All switchboards of one instance.</summary>
public sealed class QueueSet : IDisposable
{
    public const string In = "in";
    public const string Pipeline = "pipeline";
    public const string Out = "out";
    public const string Retry = "retry";
    public const string Shunt = "shunt";
    public const string Bad = "bad";
    public const string Hold = "hold";
    public const string Bounces = "bounces";
    public const string Request = "request";
    public const string Owner = "owner";

    /// <summary>Bounces the runner could not act on (names no member, or nobody and the list has no owner), kept for an operator.</summary>
    public const string Unrecognized = "unrecognized";

    /// <summary>Every queue, in the order a post moves through them.</summary>
    public static readonly IReadOnlyList<string> Names = [In, Pipeline, Out, Retry, Hold, Bounces, Request, Owner, Unrecognized, Shunt, Bad];

    private readonly Dictionary<string, Switchboard> _queues = new(StringComparer.Ordinal);
    private readonly List<QueueSignal> _signals = [];

    public QueueSet(IFileSystem fs, InstancePaths paths, TimeProvider time)
    {
        foreach (var name in Names)
        {
            var signal = new QueueSignal();
            _signals.Add(signal);
            _queues[name] = new Switchboard(fs, paths.Queue(name), name, time, signal);
        }
    }

    public Switchboard this[string name] => _queues.TryGetValue(name, out var q) ? q : throw new ArgumentException($"no queue named '{name}'", nameof(name));

    public IEnumerable<Switchboard> All => Names.Select(n => _queues[n]);

    public void Dispose()
    {
        foreach (var s in _signals)
        {
            s.Dispose();
        }
    }
}
