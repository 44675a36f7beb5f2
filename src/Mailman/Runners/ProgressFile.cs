// var/progress.json: the post being delivered now, rewritten (atomically) at most once a second
// by the outgoing runner and removed when the delivery ends. `mailman status` reads it.
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
    {
        try
        {
            FileOwner.Replace(PathOf(paths), JsonSerializer.SerializeToUtf8Bytes(new RelaysSnapshot(Environment.ProcessId, DateTimeOffset.UtcNow, [.. relays]), StatusJson.Default.RelaysSnapshot));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Status output only: a full disk must not stop a delivery.
        }
    }

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
