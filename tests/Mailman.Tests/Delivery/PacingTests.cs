// Per-destination pacing on a fake clock: the token bucket of a configured rate, the concurrency
// limit, the halving on 421/4.7.x (once a second however many connections hear it), and the
// recovery by a tenth a quiet minute back to the configured limits.
using Mailman.Delivery;
using Mailman.Instance;
using Microsoft.Extensions.Time.Testing;

namespace Mailman.Tests.Delivery;

public sealed class PacingTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));

    private Pacer Pacer(int? maxPerMinute, int? maxConnections) => new(new SmtpOptions
    {
        Destinations = new(StringComparer.OrdinalIgnoreCase)
        {
            ["gmail.com"] = new() { MaxPerMinute = maxPerMinute, MaxConnections = maxConnections, Domains = ["googlemail.com"] },
        },
        DestinationDefaults = new() { MaxConnections = 20 },
    }, time: _time);

    [Fact]
    public void A_configured_rate_gives_a_token_per_interval_and_says_how_long_to_wait()
    {
        var pacer = Pacer(maxPerMinute: 60, maxConnections: null);
        var d = pacer.Of("GoogleMail.com");
        Assert.Same(pacer.Of("gmail.com"), d);

        Assert.True(pacer.TryAcquire(d, out _));
        pacer.Done(d, 1, throttled: false);
        Assert.False(pacer.TryAcquire(d, out var wait));
        Assert.Equal(TimeSpan.FromSeconds(1), wait);
        Assert.False(pacer.Ready(d));

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(pacer.Ready(d));
        Assert.True(pacer.TryAcquire(d, out _));
        pacer.Done(d, 1, throttled: false);

        // A quiet minute fills the bucket only up to one second's worth (a burst of one at 60/min).
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(pacer.TryAcquire(d, out _));
        pacer.Done(d, 1, throttled: false);
        Assert.False(pacer.TryAcquire(d, out _));
    }

    [Fact]
    public void The_concurrency_limit_holds_transactions_in_flight()
    {
        var pacer = Pacer(maxPerMinute: null, maxConnections: 2);
        var d = pacer.Of("gmail.com");
        Assert.True(pacer.TryAcquire(d, out _));
        Assert.True(pacer.TryAcquire(d, out _));
        Assert.False(pacer.TryAcquire(d, out _));
        Assert.False(pacer.MayHold(d, holders: 2));
        pacer.Done(d, 1, throttled: false);
        Assert.True(pacer.TryAcquire(d, out _));
    }

    // A pipelined connection sends its next copy before the last one's reply is read: it keeps
    // its one slot (as Postfix counts a destination's concurrency in connections), else eight
    // connections wanted sixteen slots and a mixed chunk's copies were deferred as "paced".
    [Fact]
    public void A_connection_keeps_one_slot_while_its_pipelined_transactions_overlap()
    {
        var pacer = Pacer(maxPerMinute: null, maxConnections: 2);
        var d = pacer.Of("gmail.com");
        Assert.True(pacer.TryAcquire(d, out _));
        Assert.True(pacer.TryAcquire(d, out _, slotHeld: true));
        pacer.Done(d, 1, throttled: false, release: false);
        Assert.Equal(1, d.InFlight);

        Assert.True(pacer.TryAcquire(d, out _));
        Assert.False(pacer.TryAcquire(d, out _));
        Assert.Equal("paced: gmail.com at 2 connections", pacer.Why(d));
        pacer.Done(d, 1, throttled: false);
        Assert.True(pacer.TryAcquire(d, out _));
    }

    [Fact]
    public void A_slot_kept_still_takes_a_token_of_the_rate_and_the_deferral_says_which_limit()
    {
        var pacer = Pacer(maxPerMinute: 60, maxConnections: null);
        var d = pacer.Of("gmail.com");
        Assert.True(pacer.TryAcquire(d, out _));
        Assert.False(pacer.TryAcquire(d, out var wait, slotHeld: true));
        Assert.Equal(TimeSpan.FromSeconds(1), wait);
        Assert.Equal("paced: gmail.com at 60 copies a minute", pacer.Why(d));

        pacer.Done(d, 1, throttled: true);
        Assert.Equal("paced: gmail.com slowed down by its 421 or 4.7.x, at 30 copies a minute", pacer.Why(d));
    }

    [Fact]
    public void A_throttle_halves_rate_and_concurrency_once_a_second_and_a_tenth_comes_back_each_quiet_minute()
    {
        var pacer = Pacer(maxPerMinute: 600, maxConnections: 8);
        var d = pacer.Of("gmail.com");
        Assert.True(pacer.TryAcquire(d, out _));
        pacer.Done(d, 0, throttled: true);
        Assert.Equal(300, d.Rate);
        Assert.Equal(4, d.Concurrency);

        // Four connections hearing the same 421 within the second halve it once.
        for (var i = 0; i < 4; i++)
        {
            Assert.True(pacer.TryAcquire(d, out _) || true);
            pacer.Done(d, 0, throttled: true);
        }

        Assert.Equal(300, d.Rate);
        Assert.Equal(1, d.Throttles);

        _time.Advance(TimeSpan.FromSeconds(2));
        pacer.TryAcquire(d, out _);
        pacer.Done(d, 0, throttled: true);
        Assert.Equal(150, d.Rate);
        Assert.Equal(2, d.Concurrency);

        _time.Advance(TimeSpan.FromSeconds(59));
        pacer.Ready(d);
        Assert.Equal(150, d.Rate);

        _time.Advance(TimeSpan.FromSeconds(1));
        pacer.Ready(d);
        Assert.Equal(165, d.Rate!.Value, 6);
        Assert.Equal(3, d.Concurrency);

        // Ten quiet minutes after the last throttle: the configured limits again.
        _time.Advance(TimeSpan.FromMinutes(10));
        pacer.Ready(d);
        Assert.Equal(600, d.Rate);
        Assert.Equal(8, d.Concurrency);
    }

    // The review of #14: a 421 to a domain's very first copy set its rate to one a minute.
    [Fact]
    public void A_throttle_before_any_copy_went_through_halves_the_concurrency_and_sets_no_rate()
    {
        var pacer = Pacer(maxPerMinute: null, maxConnections: null);
        var d = pacer.Of("example.net");
        for (var i = 0; i < 4; i++)
        {
            Assert.True(pacer.TryAcquire(d, out _));
        }

        pacer.Done(d, 0, throttled: true);
        Assert.Null(d.Rate);
        Assert.Equal(10, d.Concurrency); // the default 20, halved

        _time.Advance(TimeSpan.FromMinutes(11));
        pacer.Ready(d);
        Assert.Equal(20, d.Concurrency);
    }

    [Theory]
    [InlineData(421, "4.7.0 Try again later", true, false)]
    [InlineData(421, "Service not available", false, true)]
    [InlineData(421, "4.0.0 Server closing connection", false, true)]
    [InlineData(450, "4.7.1 Rate limited", true, false)]
    [InlineData(421, "4.3.2 System shutting down", false, true)]
    [InlineData(421, "4.4.5 Too many connections", false, true)]
    [InlineData(451, "4.3.0 Local error", false, false)]
    public void A_421_about_the_relay_itself_is_not_a_destinations_throttle(int status, string response, bool throttle, bool relayClosing)
    {
        Assert.Equal(throttle, Mailman.Delivery.Smtp.SmtpConnection.IsThrottle(status, response));
        Assert.Equal(relayClosing, Mailman.Delivery.Smtp.SmtpConnection.IsRelayClosing(status, response));
    }

    [Fact]
    public void An_unlimited_domain_that_throttles_gets_half_its_observed_rate_then_none_again()
    {
        var pacer = Pacer(maxPerMinute: null, maxConnections: null);
        var d = pacer.Of("example.net");
        Assert.Null(d.Rate);
        for (var i = 0; i < 100; i++)
        {
            Assert.True(pacer.TryAcquire(d, out _));
            pacer.Done(d, 1, throttled: false);
        }

        // 100 copies in the first second (the window counts at least a second): 6000 a minute observed.
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(pacer.TryAcquire(d, out _));
        pacer.Done(d, 0, throttled: true);
        Assert.Equal(3000, d.Rate);
        Assert.Equal(10, d.Concurrency); // half the defaults' 20

        _time.Advance(TimeSpan.FromMinutes(11));
        Assert.True(pacer.Ready(d));
        Assert.Null(d.Rate);
        Assert.Equal(20, d.Concurrency);
    }
}
