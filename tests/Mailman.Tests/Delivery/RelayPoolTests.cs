// The relay pool on a fake clock: a relay marked down waits 2 s, then twice as long each time it
// refuses again up to 60 s, is logged once per episode, and comes back on its first success;
// chunks go out by weight while every relay is up.
using Mailman.Delivery;
using Mailman.Delivery.Smtp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Mailman.Tests.Delivery;

public sealed class RelayPoolTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));
    private readonly ListLogger _log = new();

    private sealed class ListLogger : ILogger
    {
        public List<(LogLevel Level, string Text)> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => Lines.Add((logLevel, formatter(state, exception)));
    }

    [Fact]
    public void A_refusing_relay_backs_off_doubling_to_a_minute_is_logged_once_and_comes_back_on_success()
    {
        var published = new List<IReadOnlyList<RelayStatus>>();
        var pool = new RelayPool([Relay.Plain("127.0.0.1", 2525), Relay.Plain("127.0.0.1", 2526)], _log, published.Add, _time);
        var r = pool.Relays[0];
        var expected = new[] { 2, 4, 8, 16, 32, 60, 60 };
        foreach (var seconds in expected)
        {
            pool.MarkDown(r, "421 4.3.2 busy", _time.GetTimestamp());
            Assert.False(RelayPool.Usable(r, _time.GetTimestamp()));
            _time.Advance(TimeSpan.FromSeconds(seconds) - TimeSpan.FromMilliseconds(1));
            Assert.False(RelayPool.Usable(r, _time.GetTimestamp()));
            _time.Advance(TimeSpan.FromMilliseconds(1));
            Assert.True(RelayPool.Usable(r, _time.GetTimestamp()));
            Assert.False(pool.AllDown(_time.GetTimestamp()));
        }

        Assert.Single(_log.Lines, l => l.Level == LogLevel.Warning);
        Assert.Contains("Relay 127.0.0.1:2525 is down: 421 4.3.2 busy", _log.Lines[0].Text, StringComparison.Ordinal);
        var down = published[^1].Single(s => s.Relay == "127.0.0.1:2525");
        Assert.Equal(("down", "421 4.3.2 busy"), (down.State, down.LastError));

        pool.MarkUp(r, 1, _time.GetTimestamp(), _time.GetTimestamp());
        Assert.False(r.IsDown);
        Assert.Contains(_log.Lines, l => l.Text.Contains("is up again", StringComparison.Ordinal));

        // A new episode starts over at 2 s, and is logged again.
        pool.MarkDown(r, "connection refused", _time.GetTimestamp());
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(RelayPool.Usable(r, _time.GetTimestamp()));
        Assert.Equal(2, _log.Lines.Count(l => l.Level == LogLevel.Warning));
    }

    [Fact]
    public void A_late_reply_to_a_transaction_sent_before_the_refusal_counts_the_copy_but_does_not_end_the_episode()
    {
        var pool = new RelayPool([Relay.Plain("127.0.0.1", 2525), Relay.Plain("127.0.0.1", 2526)], _log, time: _time);
        var r = pool.Relays[0];
        var sentBefore = _time.GetTimestamp();
        _time.Advance(TimeSpan.FromMilliseconds(5));
        pool.MarkDown(r, "connection refused", _time.GetTimestamp());
        _time.Advance(TimeSpan.FromMilliseconds(2));

        // Another connection reads the reply to what it sent before the relay died.
        pool.MarkUp(r, 10, sentBefore, _time.GetTimestamp());
        Assert.True(r.IsDown);
        Assert.Equal(10, r.Sent);

        // Its next transaction is refused too: still the same episode, logged once.
        pool.MarkDown(r, "connection refused", _time.GetTimestamp());
        Assert.Single(_log.Lines, l => l.Level == LogLevel.Warning);
        Assert.DoesNotContain(_log.Lines, l => l.Text.Contains("is up again", StringComparison.Ordinal));

        // A transaction begun after the refusal that gets a reply ends it.
        _time.Advance(TimeSpan.FromSeconds(4));
        pool.MarkUp(r, 1, _time.GetTimestamp(), _time.GetTimestamp());
        Assert.False(r.IsDown);
    }

    [Fact]
    public void Every_relay_down_is_all_down_until_the_first_backoff_ends()
    {
        var pool = new RelayPool([Relay.Plain("127.0.0.1", 2525), Relay.Plain("127.0.0.1", 2526)], time: _time);
        pool.MarkDown(pool.Relays[0], "refused", _time.GetTimestamp());
        _time.Advance(TimeSpan.FromSeconds(1));
        pool.MarkDown(pool.Relays[1], "refused", _time.GetTimestamp());
        Assert.True(pool.AllDown(_time.GetTimestamp()));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(pool.AllDown(_time.GetTimestamp()));
    }

    [Fact]
    public void Chunks_go_out_by_weight_and_a_relay_ahead_of_its_share_waits()
    {
        var pool = new RelayPool([Relay.Plain("127.0.0.1", 2525, connections: 2, weight: 3), Relay.Plain("127.0.0.1", 2526, connections: 2, weight: 1)], time: _time);
        var (heavy, light) = (pool.Relays[0], pool.Relays[1]);
        var now = _time.GetTimestamp();

        // The light relay asks ten times as often as the heavy one: its share holds it to a
        // third of the heavy one's chunks, at most a round of the pool (one chunk) ahead.
        for (var round = 0; round < 100; round++)
        {
            for (var k = 0; k < 10; k++)
            {
                if (pool.WithinShare(light, now))
                {
                    light.Taken++;
                }
            }

            Assert.True(pool.WithinShare(heavy, now));
            heavy.Taken++;
            Assert.InRange(light.Taken, heavy.Taken / 3.0, (heavy.Taken / 3.0) + 2);
        }

        // A relay that is down does not hold the other to its share.
        light.Taken = 0;
        heavy.Taken = 100;
        Assert.False(pool.WithinShare(heavy, now));
        pool.MarkDown(light, "refused", now);
        Assert.True(pool.WithinShare(heavy, now));
    }
}
