using Mailman.Dmarc;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mailman.Tests.Dmarc;

public sealed class DmarcPolicyLookupTests
{
    private readonly FakeTxtResolver _dns = new();

    private DmarcPolicyLookup Lookup => new(_dns, NullLogger<DmarcPolicyLookup>.Instance);

    [Theory]
    [InlineData("example.com", new[] { "example.com", "com" })]
    [InlineData("a.b.example.com", new[] { "a.b.example.com", "b.example.com", "example.com", "com" })]
    [InlineData("a.b.c.d.example.com", new[] { "a.b.c.d.example.com", "c.d.example.com", "d.example.com", "example.com", "com" })]
    [InlineData("com", new[] { "com" })]
    public void The_tree_walk_asks_the_domain_then_at_most_four_labels_then_one_fewer_each_time(string domain, string[] expected)
        => Assert.Equal(expected, DmarcPolicyLookup.Targets(domain));

    [Theory]
    [InlineData("v=DMARC1; p=reject", DmarcVerdict.Reject)]
    [InlineData("v=DMARC1; p=quarantine", DmarcVerdict.Quarantine)]
    [InlineData("v=DMARC1; p=none", DmarcVerdict.None)]
    [InlineData("v=DMARC1; p=nonsense", DmarcVerdict.None)]
    public void The_domains_own_record_gives_its_p(string record, DmarcVerdict verdict)
    {
        _dns.Txt("_dmarc.example.com", record);
        var result = Lookup.Lookup("Example.COM.");
        Assert.Equal(verdict, result.Verdict);
        Assert.Equal("example.com", result.RecordDomain);
        Assert.Equal(["_dmarc.example.com"], _dns.Queries);
    }

    [Fact]
    public void A_subdomain_without_a_record_takes_the_organizations_sp_or_else_its_p()
    {
        _dns.Txt("_dmarc.with-sp.test", "v=DMARC1; p=reject; sp=none");
        _dns.Txt("_dmarc.without-sp.test", "v=DMARC1; p=reject");
        Assert.Equal(DmarcVerdict.None, Lookup.Lookup("mail.with-sp.test").Verdict);
        Assert.Equal(DmarcVerdict.Reject, Lookup.Lookup("mail.without-sp.test").Verdict);
        Assert.Equal(DmarcVerdict.Reject, Lookup.Lookup("with-sp.test").Verdict);
        var deep = Lookup.Lookup("a.b.c.without-sp.test");
        Assert.Equal(DmarcVerdict.Reject, deep.Verdict);
        Assert.Equal("without-sp.test", deep.RecordDomain);
        Assert.Contains("p=reject at _dmarc.without-sp.test", deep.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void The_nearest_record_wins_and_the_walk_stops_there()
    {
        _dns.Txt("_dmarc.dept.example.com", "v=DMARC1; p=none");
        _dns.Txt("_dmarc.example.com", "v=DMARC1; p=reject");
        Assert.Equal(DmarcVerdict.None, Lookup.Lookup("mail.dept.example.com").Verdict);
        Assert.Equal(["_dmarc.mail.dept.example.com", "_dmarc.dept.example.com"], _dns.Queries);
    }

    [Fact]
    public void Several_DMARC_records_at_one_name_are_all_discarded_and_non_DMARC_TXT_is_ignored()
    {
        _dns.Txt("_dmarc.sub.example.com", "v=DMARC1; p=none", "v=DMARC1; p=quarantine");
        _dns.Txt("_dmarc.example.com", "v=spf1 -all", "v=DMARC1; p=reject");
        var result = Lookup.Lookup("sub.example.com");
        Assert.Equal(DmarcVerdict.Reject, result.Verdict);
        Assert.Equal("example.com", result.RecordDomain);
    }

    [Fact]
    public void No_record_anywhere_is_no_policy_after_a_bounded_walk()
    {
        var result = Lookup.Lookup("a.b.c.d.e.f.nothing.test");
        Assert.Equal(DmarcVerdict.NoRecord, result.Verdict);
        Assert.False(result.NeedsMitigation);
        Assert.Equal(5, _dns.Queries.Count);
    }

    [Theory]
    [InlineData(DnsStatus.Timeout)]
    [InlineData(DnsStatus.ServerFailure)]
    public void A_timeout_or_SERVFAIL_is_not_no_policy_it_needs_mitigation(DnsStatus status)
    {
        _dns.Answer("_dmarc.sub.example.com", new TxtAnswer(DnsStatus.NameError, [], TimeSpan.FromMinutes(5)));
        _dns.Answer("_dmarc.example.com", new TxtAnswer(status, [], TimeSpan.Zero, "boom"));
        var result = Lookup.Lookup("sub.example.com");
        Assert.Equal(DmarcVerdict.DnsError, result.Verdict);
        Assert.True(result.NeedsMitigation);
        Assert.Equal(2, _dns.Queries.Count);
    }

    [Fact]
    public void A_300_label_domain_is_never_asked_about_but_its_organization_is()
    {
        _dns.Txt("_dmarc.reject.test", "v=DMARC1; p=reject");
        var domain = string.Concat(Enumerable.Repeat("a.", 298)) + "reject.test";
        var result = Lookup.Lookup(domain);
        Assert.Equal(DmarcVerdict.Reject, result.Verdict);
        Assert.Equal(["_dmarc.a.a.reject.test", "_dmarc.a.reject.test", "_dmarc.reject.test"], _dns.Queries);
        Assert.All(_dns.Queries, q => Assert.True(q.Length <= 253));
    }

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    [InlineData("exa mple.com")]
    [InlineData("a..b")]
    [InlineData("[192.0.2.1]")]
    public void A_missing_or_malformed_domain_is_not_looked_up(string domain)
    {
        var result = Lookup.Lookup(domain);
        Assert.Equal(DmarcVerdict.InvalidDomain, result.Verdict);
        Assert.False(result.NeedsMitigation);
        Assert.Empty(_dns.Queries);
    }

    [Fact]
    public void A_label_over_63_characters_is_not_looked_up()
    {
        Assert.Equal(DmarcVerdict.InvalidDomain, Lookup.Lookup(new string('x', 64) + ".test").Verdict);
        Assert.Empty(_dns.Queries);
    }

    [Fact]
    public void An_IDN_domain_is_looked_up_by_its_A_labels()
    {
        _dns.Txt("_dmarc.xn--bcher-kva.test", "v=DMARC1; p=quarantine");
        Assert.Equal(DmarcVerdict.Quarantine, Lookup.Lookup("bücher.test").Verdict);
        Assert.Equal(DmarcVerdict.Quarantine, Lookup.Lookup("XN--BCHER-KVA.test").Verdict);
        Assert.Equal(["_dmarc.xn--bcher-kva.test", "_dmarc.xn--bcher-kva.test"], _dns.Queries);
    }

    [Fact]
    public void Several_From_domains_take_the_strictest_verdict_and_at_most_five_are_looked_up()
    {
        _dns.Txt("_dmarc.none.test", "v=DMARC1; p=none");
        _dns.Txt("_dmarc.reject.test", "v=DMARC1; p=reject");
        Assert.Equal(DmarcVerdict.Reject, Lookup.LookupAll(["none.test", "reject.test", "NONE.test"])!.Verdict);

        _dns.Queries.Clear();
        var many = Enumerable.Range(0, 1000).Select(i => $"d{i}.test").Append("reject.test");
        Assert.Equal(DmarcVerdict.NoRecord, Lookup.LookupAll(many)!.Verdict);
        Assert.Equal(DmarcPolicyLookup.MaximumDomainsPerPost * 2, _dns.Queries.Count);
        Assert.Null(Lookup.LookupAll([]));
    }
}
