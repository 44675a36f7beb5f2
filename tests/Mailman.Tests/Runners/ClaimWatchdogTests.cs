// The claim watchdog against a real queue directory and a fake clock: a claim held far longer
// than its delivery could take is reported once; a short one, or one finished, is not.
using System.IO.Abstractions;
using Mailman.Instance;
using Mailman.Queues;
using Mailman.Runners;
using Mailman.TestSupport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Mailman.Tests.Runners;

public sealed class ClaimWatchdogTests : IDisposable
{
    private readonly TempInstance _instance = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly CapturedLogs _logs = new();

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void A_claim_held_ten_times_longer_than_its_delivery_could_take_is_reported_once()
    {
        _instance.Paths.EnsureCreated();
        using var queues = new QueueSet(new FileSystem(), _instance.Paths, _time);
        var options = new MailmanOptions();
        using var factory = LoggerFactory.Create(b => b.AddProvider(_logs));
        var watchdog = new ClaimWatchdog(queues, options, _time, factory.CreateLogger<ClaimWatchdog>());
        var outQueue = queues[QueueSet.Out];
        var recipients = Enumerable.Range(0, 10).Select(i => new Recipient($"m{i}@example.com", "")).ToList();
        var claim = outQueue.Claim(outQueue.Enqueue(new EntryMetadata { List = "dev@example.org" }, Posts.Plain(), recipients))!;

        // A few KB to ten members: one SMTP timeout (60 s) is the budget, ten of them the limit.
        watchdog.Check();
        _time.Advance(TimeSpan.FromMinutes(9));
        watchdog.Check();
        Assert.DoesNotContain(_logs.Lines, l => l.StartsWith("Warning", StringComparison.Ordinal));

        _time.Advance(TimeSpan.FromMinutes(2));
        watchdog.Check();
        var warning = Assert.Single(_logs.Lines, l => l.StartsWith("Warning", StringComparison.Ordinal));
        Assert.Contains($"Entry {claim.Name} in out has been claimed for at least 0.00:11:00", warning, StringComparison.Ordinal);

        _time.Advance(TimeSpan.FromMinutes(30));
        watchdog.Check();
        Assert.Single(_logs.Lines, l => l.StartsWith("Warning", StringComparison.Ordinal));

        // Finished, then a new claim of the same age: its clock starts when it is first seen.
        outQueue.Finish(claim);
        watchdog.Check();
        var second = outQueue.Claim(outQueue.Enqueue(new EntryMetadata { List = "dev@example.org" }, Posts.Plain(), recipients))!;
        watchdog.Check();
        _time.Advance(TimeSpan.FromMinutes(5));
        watchdog.Check();
        Assert.DoesNotContain(_logs.Lines, l => l.Contains(second.Name, StringComparison.Ordinal));
    }
}
