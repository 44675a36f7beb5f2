// `mailman status [--json] [--watch]`: per queue, how many entries and how old the oldest is;
// the post being delivered now with its progress; when retry tries next; members whose delivery
// was disabled today. --watch redraws in
// place like top on a terminal, and prints plain snapshots one after another otherwise.
using System.CommandLine;
using System.Globalization;
using System.IO.Abstractions;
using System.Text;
using System.Text.Json;
using Mailman.Instance;
using Mailman.Queues;
using Mailman.Runners;

namespace Mailman.Cli;

internal static class StatusCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var watch = new Option<bool>("--watch") { Description = "refresh until interrupted" };
        var interval = new Option<double>("--interval") { Description = "seconds between refreshes with --watch", DefaultValueFactory = _ => 1 };
        var iterations = new Option<int>("--iterations") { Description = "with --watch, stop after this many refreshes (0: never)", DefaultValueFactory = _ => 0 };
        var command = new Command("status", "show queue depths and the delivery in progress") { json, watch, interval, iterations };
        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var asJson = parse.GetValue(json);
            if (!parse.GetValue(watch))
            {
                Console.Write(Render(paths, asJson));
                return 0;
            }

            var terminal = !Console.IsOutputRedirected;
            var delay = TimeSpan.FromSeconds(Math.Max(0.1, parse.GetValue(interval)));
            var left = parse.GetValue(iterations);
            using var timer = new PeriodicTimer(delay);
            while (true)
            {
                var text = Render(paths, asJson);

                // On a terminal: home the cursor and clear, so the table redraws in place.
                Console.Write(terminal ? "\u001b[H\u001b[2J" + text : text + Environment.NewLine);
                Console.Out.Flush();
                if (left > 0 && --left == 0)
                {
                    return 0;
                }

                timer.WaitForNextTickAsync().AsTask().GetAwaiter().GetResult();
            }
        }, readOnly: true));
        return command;
    }

    // The first directory on the way to `path` this user cannot enter (a parent closed to it
    // hides everything below): the path itself when every parent lets it through.
    private static string FirstClosed(string path)
    {
        var full = Path.GetFullPath(path);
        var at = Path.GetPathRoot(full)!;
        foreach (var part in full[at.Length..].Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var next = Path.Combine(at, part);
            if (!Directory.Exists(next))
            {
                return Directory.Exists(at) ? at : full;
            }

            at = next;
        }

        return full;
    }

    internal static string Render(InstancePaths paths, bool asJson)
    {
        // A user who cannot read the queues would see every queue empty: say so instead. One
        // who cannot even enter the home sees no queues directory at all.
        var denied = paths.QueuesDirectory;

        // Nor a table of zeros for queues that are not there (review 86, 87: queues/ or one queue
        // a link to an unmounted file system, or a file, showed every queue empty).
        foreach (var dir in QueueSet.Names.Select(n => Path.Combine(paths.QueuesDirectory, n)).Prepend(paths.QueuesDirectory))
        {
            if (InstancePaths.WhyNoDirectory(dir) is { } why)
            {
                throw new CliException(ExitCodes.TempFail, why);
            }
        }

        try
        {
            if (!Directory.Exists(paths.QueuesDirectory))
            {
                denied = FirstClosed(paths.Home);
                _ = Directory.EnumerateFileSystemEntries(paths.Home).Any();
            }
            else
            {
                _ = Directory.EnumerateFileSystemEntries(paths.QueuesDirectory).Any();
                foreach (var dir in Directory.EnumerateDirectories(paths.QueuesDirectory))
                {
                    denied = dir;
                    _ = Directory.EnumerateFileSystemEntries(dir).Any();
                }
            }
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CliException(ExitCodes.NoPerm, $"cannot read the queues as {FileOwner.UserName(FileOwner.EffectiveUid)} ({denied} is {FileOwner.Describe(denied)}): {e.Message.TrimEnd('.')}; run status as the instance's user");
        }

        var time = TimeProvider.System;
        using var queues = new QueueSet(new FileSystem(), paths, time, create: false);
        var now = time.GetUtcNow();
        var rows = queues.All.Select(q =>
        {
            var names = q.Pending().Concat(q.Claimed()).Order(StringComparer.Ordinal).ToList();
            double? age = names.Count == 0 ? null : (now - TimeOf(names[0])).TotalSeconds;
            return new QueueStatus(q.Name, names.Count, q.Claimed().Count, age) { Strays = q.Strays() };
        }).ToList();
        // Progress and relays are the running daemon's only: a killed one's files can name a pid
        // reused since by another process (as its pid file could, review 48).
        var daemon = ServeLock.Running(paths);
        var progress = ProgressFile.Read(paths) is { } p && ServeLock.IsDaemon(daemon, p.Pid) ? p : null;
        var nextRetry = NextRetry(queues[QueueSet.Retry]);
        var disabledToday = DisabledToday(paths, now);
        var relaysFile = RelaysFile.Read(paths) is { } written && ServeLock.IsDaemon(daemon, written.Pid) ? written : null;
        var relays = RelaysNow(relaysFile, now);
        if (asJson)
        {
            var report = new StatusReport(rows, progress, nextRetry, relays)
            {
                DisabledToday = disabledToday,
                DaemonPid = int.TryParse(daemon, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) ? pid : null,
                RelaysUpdated = relaysFile?.Updated,
            };
            return JsonSerializer.Serialize(report, StatusJson.Default.StatusReport) + Environment.NewLine;
        }

        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{"queue",-12} {"entries",8} {"claimed",8}  oldest\n");
        foreach (var r in rows)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{r.Queue,-12} {r.Entries,8} {r.Claimed,8}  {(r.OldestAgeSeconds is { } s ? Age(s) : "-")}\n");
        }

        foreach (var r in rows.Where(r => r.Strays.Count > 0))
        {
            // Names as the directory holds them: a line break or an escape in one shows as '?'.
            var named = string.Join(", ", r.Strays.Take(5).Select(n => string.Concat(n.Select(c => char.IsControl(c) ? '?' : c))));
            sb.Append(CultureInfo.InvariantCulture, $"{r.Queue}: {r.Strays.Count} thing(s) that are no queue entries, never read: {named}{(r.Strays.Count > 5 ? ", ..." : "")}; move them out of queues/{r.Queue}\n");
        }

        sb.Append('\n');
        sb.Append(daemon is null ? "daemon: none runs\n" : $"daemon: serve runs, pid {daemon}\n");
        var outClaimed = rows.Find(r => r.Queue == QueueSet.Out)?.Claimed ?? 0;
        if (daemon is null && outClaimed > 0)
        {
            // A killed daemon leaves its claims: nothing is being sent (review 42: status said a
            // delivery was under way with no daemon running).
            sb.Append(CultureInfo.InvariantCulture, $"delivering: nothing now: no daemon runs; {outClaimed} post(s) left claimed in out are taken up again at its next start\n");
        }
        else if (daemon is null && rows.Find(r => r.Queue == QueueSet.Out) is { Entries: > 0 } waiting)
        {
            // Review 59: after a SIGTERM mid-delivery the entry waits in out with its checkpoint,
            // and status said only "delivering: nothing".
            var partly = queues[QueueSet.Out].Pending().Count(n => File.Exists(queues[QueueSet.Out].CheckpointPath(n)));
            sb.Append(CultureInfo.InvariantCulture, $"delivering: nothing now: no daemon runs; out holds {waiting.Entries} entr{(waiting.Entries == 1 ? "y" : "ies")} (posts, notices) for its next start{(partly > 0 ? $" ({partly} partly sent: the rest goes then, no member twice)" : "")}\n");
        }
        else if (progress is null && rows.Find(r => r.Queue == QueueSet.Out) is { Claimed: > 0 } claimed)
        {
            // Progress is written at the first checkpoint: until then a delivery has started and counted nothing (review 39).
            sb.Append(CultureInfo.InvariantCulture, $"delivering: {claimed.Claimed} post(s) being sent from out; counts from the first checkpoint on\n");
        }
        else if (progress is null)
        {
            sb.Append("delivering: nothing\n");
        }
        else
        {
            var percent = progress.Total > 0 ? 100.0 * progress.Done / progress.Total : 100;

            // The rate until now, not until the last record: while the relay stalls nothing is
            // recorded, and the rate and time left of the last record stood still (review 59).
            var quiet = (now - progress.Updated).TotalSeconds;
            var elapsed = (now - progress.Started).TotalSeconds;
            var rate = quiet > 1 && elapsed > 0 ? (progress.Done - progress.ResumedAt) / elapsed : progress.Rate;
            var left = rate > 0 ? Age(Math.Max(0, progress.Total - progress.Done) / rate) : "?";
            sb.Append(CultureInfo.InvariantCulture,
                $"delivering: {progress.MessageId} to {progress.List}: {progress.Done}/{progress.Total} ({percent:F0}%) done; this run: {progress.Delivered} delivered, {progress.Deferred} deferred, {progress.Bounced} bounced, {rate:F0} msg/s, {left} left{(quiet >= 10 ? $"; nothing recorded for {Age(quiet)}" : "")}\n");
        }

        if (relays is not null)
        {
            // The daemon rewrites them every second while copies go and once more when a
            // delivery ends: a rate written longer ago is not now's (the file could not be
            // written, a full disk, or the relay has answered nothing since; review 102).
            var relaysAge = (now - relaysFile!.Updated).TotalSeconds;
            foreach (var r in relays)
            {
                var rate = r.Rate > 0 && relaysAge >= 10 ? $"{r.Rate:F0} msg/s {Age(relaysAge)} ago" : $"{r.Rate:F0} msg/s";
                sb.Append(CultureInfo.InvariantCulture,
                    $"relay {r.Relay} ({r.Security}, {r.Connections} connections, weight {r.Weight}): {r.State}, {rate}, {r.Sent} sent{(r.State == "down" ? $", {(r.RetryInSeconds > 0 ? $"retried in {r.RetryInSeconds:F0}s" : "retried with the next copy")}: {r.LastError}" : "")}\n");
            }
        }

        sb.Append(nextRetry is { } next ? $"retry: next attempt at {next.ToLocalTime():yyyy-MM-dd HH:mm:ss} (in {Age((next - now).TotalSeconds)})\n" : "retry: nothing waiting\n");
        if (FlushRequests(paths) is > 0 and var asked)
        {
            sb.Append(CultureInfo.InvariantCulture, $"retry: {asked} queue flush requests not yet done ({(daemon is null ? "no daemon runs: its start does them" : "the daemon does them within Queues:PollInterval")})\n");
        }

        sb.Append(CultureInfo.InvariantCulture, $"members disabled today: {(disabledToday is { } d ? d.ToString(CultureInfo.InvariantCulture) : $"? ({WhyNotCounted(paths)})")}\n");
        return sb.ToString();
    }

    // The daemon writes the relays when their state changes, not every second: a down relay's
    // wait counts down from when it was written.
    private static List<Delivery.RelayStatus>? RelaysNow(RelaysSnapshot? snapshot, DateTimeOffset now)
        => snapshot?.Relays.ConvertAll(r => r.RetryInSeconds is { } wait ? r with { RetryInSeconds = Math.Max(0, Math.Round(wait - (now - snapshot.Updated).TotalSeconds)) } : r);

    // Members whose delivery was turned off since midnight UTC (by bounces, mostly). Only read as
    // the database's owner: SQLite creates its -wal and -shm files on open, and root's would
    // lock the daemon out of its own database.
    private static long? DisabledToday(InstancePaths paths, DateTimeOffset now)
    {
        if (!File.Exists(paths.Database) || FileOwner.Uid(paths.Database) != FileOwner.EffectiveUid)
        {
            return null;
        }

        try
        {
            using var store = new Lists.ListStore(paths.Database);
            return store.CountDisabledSince(new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero));
        }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or Lists.DatabaseReadOnlyException or Lists.DatabaseUnusableException)
        {
            // status shows the queues whatever the database's state (review 41: a 0400 one was 77 for all of it).
            return null;
        }
    }

    // Root may read any file, but is not let into another user's database (above): "not readable" misled (review 39).
    private static string WhyNotCounted(InstancePaths paths) =>
        FileOwner.Uid(paths.Database) is { } owner && owner != FileOwner.EffectiveUid
            ? $"counted only when status runs as the database's owner, {FileOwner.UserName(owner)}"
            : Directory.Exists(paths.Database) ? $"{paths.Database} is a directory, not a database (review 86)"
            : !File.Exists(paths.Database) && !paths.VarUnreadable ? $"{paths.Database} does not exist"
            : "the database cannot be read (damaged, locked, or not writable for this user); any verb that changes lists says why";

    // `queue flush` requests the retry runner has not done yet (var/flush/*.req).
    private static int FlushRequests(InstancePaths paths)
    {
        try
        {
            return Runners.RetryRunner.FlushRequests(paths).Count;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    private static DateTimeOffset? NextRetry(Switchboard retry)
    {
        DateTimeOffset? next = null;
        foreach (var name in retry.Pending())
        {
            try
            {
                var at = retry.ReadMetadata(name).NotBefore ?? DateTimeOffset.MinValue;
                if (next is null || at < next)
                {
                    next = at;
                }
            }
            catch (Exception e) when (e is CorruptEntryException or IOException)
            {
            }
        }

        return next;
    }

    /// <summary>Entry names start with microseconds since the Unix epoch.</summary>
    internal static DateTimeOffset TimeOf(string entryName)
        => DateTimeOffset.UnixEpoch.AddTicks(long.Parse(entryName.AsSpan(0, 17), CultureInfo.InvariantCulture) * 10);

    private static string Age(double seconds) => TimeSpan.FromSeconds(Math.Max(0, seconds)) switch
    {
        { TotalDays: >= 1 } t => $"{(int)t.TotalDays}d{t.Hours}h",
        { TotalHours: >= 1 } t => $"{(int)t.TotalHours}h{t.Minutes}m",
        { TotalMinutes: >= 1 } t => $"{(int)t.TotalMinutes}m{t.Seconds}s",
        var t => string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:F0}s"),
    };


}

/// <summary>One queue in `mailman status`.</summary>
internal sealed record QueueStatus(string Queue, int Entries, int Claimed, double? OldestAgeSeconds)
{
    /// <summary>Files and directories in the queue's directory that are no entries (Switchboard.Strays).</summary>
    public IReadOnlyList<string> Strays { get; init; } = [];
}

/// <summary>`mailman status --json`.</summary>
internal sealed record StatusReport(List<QueueStatus> Queues, DeliveryProgressSnapshot? Delivering, DateTimeOffset? NextRetry, List<Mailman.Delivery.RelayStatus>? Relays)
{
    /// <summary>Members whose delivery was disabled since midnight UTC; null when the database could not be read.</summary>
    public long? DisabledToday { get; init; }

    /// <summary>The running daemon's process id (the process holding serve's lock: ServeLock.Running); null when no daemon runs.</summary>
    public int? DaemonPid { get; init; }

    /// <summary>When the daemon wrote the relays' state: a rate written long ago is not now's (review 107).</summary>
    public DateTimeOffset? RelaysUpdated { get; init; }
}
