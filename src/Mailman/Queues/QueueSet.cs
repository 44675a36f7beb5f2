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

    /// <summary>Every queue, in the order a post moves through them.</summary>
    public static readonly IReadOnlyList<string> Names = [In, Pipeline, Out, Retry, Hold, Bounces, Request, Owner, Shunt, Bad];

    private readonly Dictionary<string, Switchboard> _queues = new(StringComparer.Ordinal);
    private readonly List<QueueSignal> _signals = [];

    /// <param name="create">Create missing queue directories; false for read-only callers (status).</param>
    public QueueSet(IFileSystem fs, InstancePaths paths, TimeProvider time, bool create = true)
    {
        foreach (var name in Names)
        {
            var signal = new QueueSignal();
            _signals.Add(signal);
            _queues[name] = new Switchboard(fs, paths.Queue(name), name, time, signal, create);
        }
    }

    public Switchboard this[string name] => _queues.TryGetValue(name, out var q) ? q : throw new ArgumentException($"no queue named '{name}'", nameof(name));

    public IEnumerable<Switchboard> All => Names.Select(n => _queues[n]);

    /// <summary>
    /// Called when an entry is claimed: the claim of the run that wrote it (the same name in
    /// another queue, or its <see cref="EntryMetadata.Parent"/>) is done, whatever became of the
    /// run that held it. A run that stalled between writing this entry and finishing its own
    /// claim, and then died, would otherwise have its claim recovered and the post processed
    /// again after this entry was delivered.
    /// </summary>
    public void SettleUpstream(ClaimedEntry claim, EntryMetadata metadata)
    {
        foreach (var queue in All)
        {
            if (queue.Name != claim.Queue)
            {
                queue.DropStaleClaim(claim.Name);
            }

            if (metadata.Parent is { } parent && Switchboard.IsValidEntryName(parent))
            {
                queue.DropStaleClaim(parent);
            }
        }
    }

    public void Dispose()
    {
        foreach (var s in _signals)
        {
            s.Dispose();
        }
    }
}
