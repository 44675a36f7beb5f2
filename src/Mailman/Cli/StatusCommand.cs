// `mailman status [--json]`: per queue, how many entries and how old the oldest is.
using System.CommandLine;
using System.Globalization;
using System.IO.Abstractions;
using System.Text.Json;
using Mailman.Queues;

namespace Mailman.Cli;

internal static class StatusCommand
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var command = new Command("status", "show queue depths") { json };
        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var time = TimeProvider.System;
            using var queues = new QueueSet(new FileSystem(), paths, time);
            var now = time.GetUtcNow();
            var rows = queues.All.Select(q =>
            {
                var names = q.Pending().Concat(q.Claimed()).Order(StringComparer.Ordinal).ToList();
                double? age = names.Count == 0 ? null : (now - TimeOf(names[0])).TotalSeconds;
                return new QueueStatus(q.Name, names.Count, q.Claimed().Count, age);
            }).ToList();
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { queues = rows }, Json));
            }
            else
            {
                Console.WriteLine($"{"queue",-10} {"entries",8} {"claimed",8}  oldest");
                foreach (var r in rows)
                {
                    Console.WriteLine($"{r.Queue,-10} {r.Entries,8} {r.Claimed,8}  {(r.OldestAgeSeconds is { } s ? Age(s) : "-")}");
                }
            }

            return 0;
        }));
        return command;
    }

    /// <summary>Entry names start with microseconds since the Unix epoch.</summary>
    internal static DateTimeOffset TimeOf(string entryName)
        => DateTimeOffset.UnixEpoch.AddTicks(long.Parse(entryName.AsSpan(0, 17), CultureInfo.InvariantCulture) * 10);

    private static string Age(double seconds) => TimeSpan.FromSeconds(Math.Max(0, seconds)) switch
    {
        { TotalDays: >= 1 } t => $"{(int)t.TotalDays}d{t.Hours}h",
        { TotalHours: >= 1 } t => $"{(int)t.TotalHours}h{t.Minutes}m",
        { TotalMinutes: >= 1 } t => $"{(int)t.TotalMinutes}m{t.Seconds}s",
        var t => $"{t.TotalSeconds:F0}s",
    };

    private sealed record QueueStatus(string Queue, int Entries, int Claimed, double? OldestAgeSeconds);
}
