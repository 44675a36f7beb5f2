// var/progress.json: the post being delivered now, rewritten (atomically) at most once a second
// by the outgoing runner and removed when the delivery ends; var/relays.json, the relays, when
// one changes state and at most once a second otherwise (RelayPool's throttle). `mailman status`
// reads them. A write that cannot be made is said once (a full disk must
// not stop a delivery).
using System.Text.Json;
using System.Text.Json.Serialization;
using Mailman.Cli;
using Mailman.Instance;

namespace Mailman.Runners;

/// <summary>A snapshot of the delivery in progress.</summary>
public sealed record DeliveryProgressSnapshot(
    int Pid, string List, string? MessageId, string Entry, long Total, long Done, long Delivered, long Deferred, long Bounced,
    DateTimeOffset Started, DateTimeOffset Updated)
{
    public double Rate => (Updated - Started).TotalSeconds is var s and > 0 ? (Done - ResumedAt) / s : 0;

    /// <summary>Recipients already done when this run started (a resumed delivery).</summary>
    public long ResumedAt { get; init; }

    public TimeSpan? Remaining => Rate > 0 ? TimeSpan.FromSeconds(Math.Max(0, Total - Done) / Rate) : null;
}

public static class ProgressFile
{
    public static string PathOf(InstancePaths paths) => Path.Combine(paths.VarDirectory, "progress.json");

    public static void Write(InstancePaths paths, DeliveryProgressSnapshot snapshot)
        => FileOwner.Replace(PathOf(paths), JsonSerializer.SerializeToUtf8Bytes(snapshot, StatusJson.Default.DeliveryProgressSnapshot));

    // A directory at its name stays (review 46: the delivery was shunted): status shows no progress.
    public static void Clear(InstancePaths paths) => FileOwner.TryDelete(PathOf(paths));

    /// <summary>The snapshot a daemon last wrote, if any.</summary>
    public static DeliveryProgressSnapshot? Read(InstancePaths paths)
    {
        try
        {
            // Whose it is, status asks ServeLock.IsDaemon (the pid may be one inside a container's namespace).
            return FileOwner.ReadRegularText(PathOf(paths)) is { } text ? JsonSerializer.Deserialize(text, StatusJson.Default.DeliveryProgressSnapshot) : null;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>Source-generated, camelCase: var/progress.json and `mailman status --json`.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(DeliveryProgressSnapshot))]
[JsonSerializable(typeof(StatusReport))]
[JsonSerializable(typeof(RelaysSnapshot))]
internal sealed partial class StatusJson : JsonSerializerContext;

/// <summary>var/relays.json: each relay's state and rate, written by the daemon when it changes (at most once a second otherwise).</summary>
public static class RelaysFile
{
    public static string PathOf(InstancePaths paths) => Path.Combine(paths.VarDirectory, "relays.json");

    public static void Write(InstancePaths paths, IReadOnlyList<Delivery.RelayStatus> relays)
        => FileOwner.Replace(PathOf(paths), JsonSerializer.SerializeToUtf8Bytes(new RelaysSnapshot(Environment.ProcessId, DateTimeOffset.UtcNow, [.. relays]), StatusJson.Default.RelaysSnapshot));

    /// <summary>Removes what a daemon before this one wrote (a directory at its name stays: status reads none).</summary>
    public static void Clear(InstancePaths paths) => FileOwner.TryDelete(PathOf(paths));

    /// <summary>The relays as a daemon last wrote them, or null.</summary>
    public static RelaysSnapshot? Read(InstancePaths paths)
    {
        try
        {
            return FileOwner.ReadRegularText(PathOf(paths)) is { } text ? JsonSerializer.Deserialize(text, StatusJson.Default.RelaysSnapshot) : null;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>var/relays.json.</summary>
public sealed record RelaysSnapshot(int Pid, DateTimeOffset Updated, List<Delivery.RelayStatus> Relays);

/// <summary>
/// Writes the latest of what it is offered at most once an interval, and the last of a burst one
/// interval after the write before it (review 109: eight connections finish their chunks within
/// a second of one another, and all but the first went unwritten until the next chunk ended, 25 s
/// later: status trailed by 280 copies and said nothing was recorded). A write that fails (a full
/// disk) is said once, at warning, until one succeeds. After <see cref="Dispose"/> nothing is
/// written, not even by a pending trailing write: the caller may remove the file then.
/// </summary>
internal sealed class ThrottledFileWriter<T>(string what, TimeProvider time, TimeSpan interval, Action<T> write, Microsoft.Extensions.Logging.ILogger log) : IDisposable
    where T : class
{
    private readonly object _gate = new();
    private T? _latest;

    // On the monotonic clock: a wall clock stepped back an hour froze the file for the hour (review 112).
    private long? _written;
    private ITimer? _trailing;
    private bool _failing;
    private bool _disposed;

    public void Offer(T value)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _latest = value;
            var since = _written is { } written ? time.GetElapsedTime(written) : interval;
            if (since >= interval)
            {
                WriteLocked();
            }
            else
            {
                _trailing ??= time.CreateTimer(_ => Trail(), null, interval - since, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void Trail()
    {
        lock (_gate)
        {
            _trailing?.Dispose();
            _trailing = null;
            if (!_disposed && _latest is not null)
            {
                WriteLocked();
            }
        }
    }

    // Under the gate, so that nothing is written after Dispose returns.
    private void WriteLocked()
    {
        _written = time.GetTimestamp();
        var value = _latest!;
        _latest = null;
        try
        {
            write(value);
            _failing = false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (!_failing)
            {
                Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(log, "Cannot write {File}: {Error}; status shows it as last written until it can", what, e.Message);
            }

            _failing = true;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _trailing?.Dispose();
            _trailing = null;
        }
    }
}
