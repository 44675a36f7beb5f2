using Mailman.Dmarc;
using Microsoft.Extensions.Time.Testing;

namespace Mailman.Tests.Dmarc;

public sealed class TxtCacheTests
{
    private readonly FakeTxtResolver _dns = new();
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public void An_answer_is_reused_until_its_TTL_runs_out()
    {
        _dns.Answer("_dmarc.example.com", new TxtAnswer(DnsStatus.Ok, ["v=DMARC1; p=reject"], TimeSpan.FromSeconds(3600)));
        var cache = new TxtCache(_dns, _clock);

        for (var i = 0; i < 10_000; i++)
        {
            Assert.Equal("v=DMARC1; p=reject", Assert.Single(cache.QueryTxt("_dmarc.EXAMPLE.com").Records));
            _clock.Advance(TimeSpan.FromSeconds(0.3));
        }

        // 10,000 posts over 3,000 s: one lookup. Past the hour, a second one.
        Assert.Single(_dns.Queries);
        _clock.Advance(TimeSpan.FromSeconds(600));
        cache.QueryTxt("_dmarc.example.com");
        Assert.Equal(2, _dns.Queries.Count);
    }

    [Fact]
    public void Negative_answers_are_cached_for_their_TTL_and_a_zero_TTL_not_at_all()
    {
        _dns.Answer("_dmarc.zero.test", new TxtAnswer(DnsStatus.Ok, ["v=DMARC1; p=none"], TimeSpan.Zero));
        var cache = new TxtCache(_dns, _clock);
        cache.QueryTxt("_dmarc.nothing.test");
        cache.QueryTxt("_dmarc.nothing.test");
        cache.QueryTxt("_dmarc.zero.test");
        cache.QueryTxt("_dmarc.zero.test");
        Assert.Equal(["_dmarc.nothing.test", "_dmarc.zero.test", "_dmarc.zero.test"], _dns.Queries);
        _clock.Advance(TimeSpan.FromMinutes(5));
        cache.QueryTxt("_dmarc.nothing.test");
        Assert.Equal(4, _dns.Queries.Count);
    }

    [Fact]
    public void A_failure_is_remembered_for_a_minute_so_an_outage_costs_one_timeout_per_name_per_minute()
    {
        _dns.Answer("_dmarc.slow.test", new TxtAnswer(DnsStatus.Timeout, [], TimeSpan.Zero));
        var cache = new TxtCache(_dns, _clock);
        Assert.Equal(DnsStatus.Timeout, cache.QueryTxt("_dmarc.slow.test").Status);
        _clock.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(DnsStatus.Timeout, cache.QueryTxt("_dmarc.slow.test").Status);
        Assert.Single(_dns.Queries);
        _clock.Advance(TimeSpan.FromSeconds(2));
        cache.QueryTxt("_dmarc.slow.test");
        Assert.Equal(2, _dns.Queries.Count);
    }

    [Fact]
    public void A_huge_TTL_is_capped_at_a_day_and_the_cache_stays_bounded()
    {
        _dns.Answer("_dmarc.forever.test", new TxtAnswer(DnsStatus.Ok, ["v=DMARC1; p=none"], TimeSpan.FromDays(365)));
        var cache = new TxtCache(_dns, _clock);
        cache.QueryTxt("_dmarc.forever.test");
        _clock.Advance(TimeSpan.FromDays(1) + TimeSpan.FromSeconds(1));
        cache.QueryTxt("_dmarc.forever.test");
        Assert.Equal(2, _dns.Queries.Count);

        for (var i = 0; i < TxtCache.MaximumEntries + 10; i++)
        {
            cache.QueryTxt($"_dmarc.d{i}.test");
        }

        Assert.True(cache.Count <= TxtCache.MaximumEntries);
    }
}
