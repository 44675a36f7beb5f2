// The status files (progress.json, relays.json) are written at most once a second, and the last
// of a burst a second after the write before it (review 109: chunks ending within a second of one
// another went unwritten until the next chunk ended).
using Mailman.Runners;
using Microsoft.Extensions.Time.Testing;

namespace Mailman.Tests.Runners;

public sealed class ThrottledFileWriterTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero));
    private readonly CapturingLogger<ThrottledFileWriterTests> _log = new();
    private readonly List<string> _written = [];

    [Fact]
    public void The_last_of_a_burst_is_written_a_second_after_the_write_before_it_and_nothing_after_dispose()
    {
        var writer = new ThrottledFileWriter<string>("progress.json", _time, TimeSpan.FromSeconds(1), _written.Add, _log);
        writer.Offer("a");
        _time.Advance(TimeSpan.FromMilliseconds(100));
        writer.Offer("b");
        writer.Offer("c");
        Assert.Equal(["a"], _written);

        _time.Advance(TimeSpan.FromMilliseconds(899));
        Assert.Equal(["a"], _written);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(["a", "c"], _written);

        // Quiet longer than the interval: written at once.
        _time.Advance(TimeSpan.FromSeconds(5));
        writer.Offer("d");
        Assert.Equal(["a", "c", "d"], _written);

        _time.Advance(TimeSpan.FromMilliseconds(10));
        writer.Offer("e");
        writer.Dispose();
        _time.Advance(TimeSpan.FromSeconds(5));
        writer.Offer("f");
        Assert.Equal(["a", "c", "d"], _written);
    }

    // relays.json: the pool throttles it and a change of state must reach status at once (a relay
    // marked down was shown up for a second: OutboundTests).
    [Fact]
    public void With_no_interval_every_offer_is_written_at_once()
    {
        using var writer = new ThrottledFileWriter<string>("relays.json", _time, TimeSpan.Zero, _written.Add, _log);
        writer.Offer("up");
        writer.Offer("down");
        Assert.Equal(["up", "down"], _written);
    }

    [Fact]
    public void A_write_that_fails_is_said_once_until_one_succeeds()
    {
        var full = true;
        using var writer = new ThrottledFileWriter<string>("var/progress.json", _time, TimeSpan.FromSeconds(1), v =>
        {
            if (full)
            {
                throw new IOException("No space left on device");
            }

            _written.Add(v);
        }, _log);
        for (var i = 0; i < 5; i++)
        {
            writer.Offer("x" + i);
            _time.Advance(TimeSpan.FromSeconds(2));
        }

        Assert.Equal(["Cannot write var/progress.json: No space left on device; status shows it as last written until it can"], _log.Lines);
        full = false;
        writer.Offer("y");
        full = true;
        _time.Advance(TimeSpan.FromSeconds(2));
        writer.Offer("z");
        Assert.Equal(["y"], _written);
        Assert.Equal(2, _log.Lines.Count);
    }
}
