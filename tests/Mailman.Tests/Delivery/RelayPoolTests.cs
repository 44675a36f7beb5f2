// The relay pool on a fake clock: a relay marked down waits 2 s, then twice as long each time it
// refuses again up to 60 s, is logged once per episode, and comes back on its first success;
// chunks go out by weight while every relay is up; a relay that refuses connections beyond a
// limit keeps fewer workers for ten minutes and a share in proportion.
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
        Assert.Contains("Relay 127.0.0.1:2525 is down: 421 4.3.2 busy; its copies go to the other relays", _log.Lines[0].Text, StringComparison.Ordinal);
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

        // A sole relay has no others to give its copies to (review 53: the line said it had).
        var sole = new RelayPool([Relay.Plain("127.0.0.1", 2527)], _log, null, _time);
        sole.MarkDown(sole.Relays[0], "421 4.3.2 busy", _time.GetTimestamp());
        Assert.Contains("Relay 127.0.0.1:2527 is down: 421 4.3.2 busy; the copies wait for it (or in retry), and it is tried again in 2s", _log.Lines[^1].Text, StringComparison.Ordinal);
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

    // Review 59: a relay that stalled now and then (one reply in ten late) was logged down and
    // up again every five seconds, 34 pairs of lines in three minutes.
    [Fact]
    public void A_relay_that_goes_down_again_soon_after_it_came_back_is_said_unsteady_once_then_steady_again()
    {
        var pool = new RelayPool([Relay.Plain("127.0.0.1", 2525)], _log, time: _time);
        var r = pool.Relays[0];
        pool.MarkDown(r, "no reply within 5 s", _time.GetTimestamp());
        for (var i = 0; i < 10; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(5));
            pool.MarkUp(r, 1, _time.GetTimestamp(), _time.GetTimestamp());
            _time.Advance(TimeSpan.FromSeconds(1));
            pool.MarkDown(r, "no reply within 5 s", _time.GetTimestamp());
        }

        var said = _log.Lines.Where(l => l.Level >= LogLevel.Information).Select(l => l.Text).ToList();
        Assert.Equal(3, said.Count);
        Assert.StartsWith("Relay 127.0.0.1:2525 is down: no reply within 5 s", said[0], StringComparison.Ordinal);
        Assert.StartsWith("Relay 127.0.0.1:2525 is up again after 5s down", said[1], StringComparison.Ordinal);
        Assert.StartsWith("Relay 127.0.0.1:2525 is down again 1s after it came back: no reply within 5 s; it is unsteady", said[2], StringComparison.Ordinal);

        // Up a minute: steady again, and its next episode is logged as one.
        _time.Advance(TimeSpan.FromSeconds(5));
        pool.MarkUp(r, 1, _time.GetTimestamp(), _time.GetTimestamp());
        _time.Advance(TimeSpan.FromSeconds(61));
        pool.MarkUp(r, 1, _time.GetTimestamp(), _time.GetTimestamp());
        Assert.Contains("Relay 127.0.0.1:2525 is steady again: up a minute after going down 10 times in ", _log.Lines[^1].Text, StringComparison.Ordinal);
        pool.MarkDown(r, "no reply within 5 s", _time.GetTimestamp());
        Assert.StartsWith("Relay 127.0.0.1:2525 is down: no reply within 5 s", _log.Lines[^1].Text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_relays_rate_shows_from_a_deliverys_first_quarter_second_and_ends_at_zero()
    {
        var published = new List<IReadOnlyList<RelayStatus>>();
        var pool = new RelayPool([Relay.Plain("127.0.0.1", 2525)], _log, published.Add, _time);
        var r = pool.Relays[0];
        pool.StartDelivery();

        // Review 53: copies went, status said 0 msg/s for the first second (a short post, all of it).
        _time.Advance(TimeSpan.FromMilliseconds(500));
        pool.MarkUp(r, 400, _time.GetTimestamp(), _time.GetTimestamp());
        Assert.Equal(800, published[^1].Single().Rate);

        // A full window's rate stands until the next one has run a quarter of a second.
        _time.Advance(TimeSpan.FromMilliseconds(500));
        pool.MarkUp(r, 100, _time.GetTimestamp(), _time.GetTimestamp());
        Assert.Equal(400, pool.Snapshot().Single().Rate);
        _time.Advance(TimeSpan.FromMilliseconds(100));
        pool.MarkUp(r, 10, _time.GetTimestamp(), _time.GetTimestamp());
        Assert.Equal(400, pool.Snapshot().Single().Rate);
        _time.Advance(TimeSpan.FromMilliseconds(400));
        pool.MarkUp(r, 190, _time.GetTimestamp(), _time.GetTimestamp());
        Assert.Equal(600, pool.Snapshot().Single().Rate);

        pool.Idle();
        Assert.Equal(0, published[^1].Single().Rate);
        Assert.Equal(700, published[^1].Single().Sent);
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
        AskTenTimesAsOften(pool, light, heavy, 3, now);

        // A relay that is down does not hold the other to its share.
        light.Taken = 0;
        heavy.Taken = 100;
        Assert.False(pool.WithinShare(heavy, now));
        pool.MarkDown(light, "refused", now);
        Assert.True(pool.WithinShare(heavy, now));
    }

    [Fact]
    public void A_relay_at_its_connection_limit_keeps_fewer_workers_for_ten_minutes_and_carries_a_share_in_proportion()
    {
        var pool = new RelayPool([Relay.Plain("127.0.0.1", 2525, connections: 4), Relay.Plain("127.0.0.1", 2526, connections: 4)], _log, time: _time);
        var (limited, other) = (pool.Relays[0], pool.Relays[1]);
        var now = _time.GetTimestamp();
        pool.StartDelivery();

        // A 421 to a new connection with nothing of ours open is the relay down; so is a refusal
        // that is not a 421 (connection refused, TLS, AUTH) with sessions open.
        Assert.False(RelayPool.AtLimit(limited, busy: true));
        limited.Open = 1;
        Assert.False(RelayPool.AtLimit(limited, busy: false));
        Assert.True(RelayPool.AtLimit(limited, busy: true));

        for (var i = 0; i < 3; i++)
        {
            pool.Retire(limited, "421 4.7.0 Error: too many connections from 127.0.0.1", now);
        }

        Assert.Equal(1, limited.Working);
        Assert.Equal(1, pool.Snapshot().Single(x => x.Relay == "127.0.0.1:2525").Connections); // status shows what it takes
        Assert.False(RelayPool.AtLimit(limited, busy: true)); // the last worker marks it down instead
        Assert.Equal(3, _log.Lines.Count(l => l.Level == LogLevel.Warning && l.Text.Contains("refused a connection while 1 of ours were open", StringComparison.Ordinal)));
        Assert.Contains("1 connections to it for 10 min", _log.Lines[^1].Text, StringComparison.Ordinal);

        // One connection of four: a quarter of the other's chunks, however often it asks.
        AskTenTimesAsOften(pool, limited, other, 4, now);

        // The next posts start with what it takes, until ten minutes after the last refusal.
        pool.StartDelivery();
        Assert.Equal(1, limited.Working);
        _time.Advance(RelayPool.RetireFor - TimeSpan.FromSeconds(1));
        pool.StartDelivery();
        Assert.Equal(1, limited.Working);
        _time.Advance(TimeSpan.FromSeconds(1));
        pool.StartDelivery();
        Assert.Equal(4, limited.Working);
    }

    // `small` asks for a chunk ten times as often as `big`: it gets 1/ratio of big's chunks,
    // at most a round of the pool ahead.
    private static void AskTenTimesAsOften(RelayPool pool, RelayState small, RelayState big, double ratio, long now)
    {
        for (var round = 0; round < 100; round++)
        {
            for (var k = 0; k < 10; k++)
            {
                if (pool.WithinShare(small, now))
                {
                    small.Taken++;
                }
            }

            Assert.True(pool.WithinShare(big, now));
            big.Taken++;
            Assert.InRange(small.Taken, big.Taken / ratio, (big.Taken / ratio) + 2);
        }
    }
}
