// Destinations grouped by MX (Mailman:Smtp:GroupByMx): domains whose primary MX is the same host
// share one pace, a configured destination claims MX hosts by suffix, a domain is paced alone
// until its MX is known, and lookups never make a transaction wait. The lookups themselves
// against a real DNS server (dnsmasq on loopback).
using System.Net;
using Mailman.Delivery;
using Mailman.Dmarc;
using Mailman.Instance;
using Mailman.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace Mailman.Tests.Delivery;

public sealed class MxGroupingTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));

    private static SmtpOptions Options() => new()
    {
        GroupByMx = true,
        Destinations = new(StringComparer.OrdinalIgnoreCase)
        {
            ["google"] = new() { MaxPerMinute = 600, MxHosts = ["google.com"] },
        },
    };

    // "gmail.com." passed the start check but keyed the pace by the name as written: it paced nothing.
    [Fact]
    public void A_destination_written_with_its_final_dot_paces_its_domain()
    {
        var pacer = new Pacer(new SmtpOptions
        {
            Destinations = new(StringComparer.OrdinalIgnoreCase) { ["Gmail.com."] = new() { MaxPerMinute = 2, Domains = ["googlemail.com."] } },
        }, time: _time);

        var gmail = pacer.Of("gmail.com");
        Assert.True(gmail.Configured);
        Assert.Equal("gmail.com", gmail.Name);
        Assert.Same(gmail, pacer.Of("googlemail.com"));
    }

    // An internationalized name and its A-labels are one destination, however either is written.
    [Fact]
    public void A_destination_named_by_its_U_labels_paces_the_A_labels_too_and_both_named_apart_are_refused()
    {
        var pacer = new Pacer(new SmtpOptions
        {
            Destinations = new(StringComparer.OrdinalIgnoreCase) { ["bücher.example"] = new() { MaxPerMinute = 2, Domains = ["XN--MNCHEN-3YA.example"] } },
        }, time: _time);

        Assert.Equal("*a-labels;xn--bcher-kva.example=xn--bcher-kva.example,xn--mnchen-3ya.example", pacer.Grouping);
        var books = pacer.Of("xn--bcher-kva.example");
        Assert.True(books.Configured);
        Assert.Same(books, pacer.Of("Bücher.example"));
        Assert.Same(books, pacer.Of("münchen.example"));
        Assert.Equal("xn--bcher-kva.example", SmtpOptions.DestinationDomain("BÜCHER.example."));
        Assert.False(pacer.Of("buecher.example").Configured);

        var options = new MailmanOptions { Pipeline = { Handlers = ["member-recipients"] }, Moderation = { Chain = ["approved"] } };
        options.Smtp.Destinations["bücher.example"] = new() { MaxPerMinute = 2 };
        options.Smtp.Destinations["other"] = new() { MaxPerMinute = 2, Domains = ["xn--bcher-kva.example"] };
        var e = Assert.Throws<InvalidOperationException>(options.Validate);
        Assert.Contains("xn--bcher-kva.example belongs to both", e.Message, StringComparison.Ordinal);
        options.Smtp.Destinations["other"].Domains[0] = "BÜCHER.example";
        e = Assert.Throws<InvalidOperationException>(options.Validate);
        Assert.Contains("BÜCHER.example belongs to both", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Domains_sharing_a_primary_MX_share_a_destination_once_it_is_known_and_a_configured_one_claims_its_MX_hosts()
    {
        var answers = new Dictionary<string, TaskCompletionSource<MxAnswer>>(StringComparer.OrdinalIgnoreCase);
        Task<MxAnswer> Lookup(string domain, CancellationToken _)
        {
            lock (answers)
            {
                if (!answers.TryGetValue(domain, out var tcs))
                {
                    answers[domain] = tcs = new TaskCompletionSource<MxAnswer>(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                return tcs.Task;
            }
        }

        var mx = new MxGroups(Lookup, _time);
        var pacer = new Pacer(Options(), time: _time, mx: mx);

        // Unknown yet: each domain alone, and asking does not wait for DNS.
        var early = pacer.Of("corp.example");
        Assert.Equal("corp.example", early.Name);
        Assert.NotSame(early, pacer.Of("other.example"));

        void Answer(string domain, string? host)
        {
            lock (answers)
            {
                answers[domain].SetResult(new MxAnswer(host, TimeSpan.FromHours(1)));
            }
        }

        var before = mx.Lookups;
        Answer("corp.example", "mx1.hosting.example.");
        Answer("other.example", "MX1.Hosting.Example");
        Wait.Until(() => mx.Lookups >= before + 2, TimeSpan.FromSeconds(10), "the two lookups to be kept");

        var corp = pacer.Of("corp.example");
        Assert.Equal("mx1.hosting.example", corp.Name);
        Assert.Same(corp, pacer.Of("other.example"));

        // gmail.com and a hosted domain whose MX is Google's join the configured destination.
        Assert.NotSame(pacer.Configured[0], pacer.Of("gmail.com"));
        pacer.Of("hosted.example");
        Answer("gmail.com", "gmail-smtp-in.l.google.com");
        Answer("hosted.example", "aspmx.l.google.com");
        Wait.Until(() => mx.Lookups >= before + 4, TimeSpan.FromSeconds(10), "the Google lookups");
        Assert.Same(pacer.Configured[0], pacer.Of("gmail.com"));
        Assert.Same(pacer.Configured[0], pacer.Of("hosted.example"));
        Assert.Equal(600, pacer.Of("hosted.example").MaxPerMinute);

        // The checkpoint's grouping names only configured domains: it does not change as MX answers come.
        Assert.Equal("google=google", pacer.Grouping);
    }

    [Fact]
    public void A_failed_lookup_is_asked_again_after_a_minute_and_meanwhile_the_domain_is_paced_alone()
    {
        var calls = 0;
        Task<MxAnswer> Lookup(string domain, CancellationToken _)
        {
            Interlocked.Increment(ref calls);
            return Task.FromResult(new MxAnswer(null, TimeSpan.Zero));
        }

        var mx = new MxGroups(Lookup, _time);
        var pacer = new Pacer(Options(), time: _time, mx: mx);
        var d = pacer.Of("flaky.example");
        Wait.Until(() => mx.Lookups == 1, TimeSpan.FromSeconds(10), "the failed lookup");
        Assert.Same(d, pacer.Of("flaky.example"));
        Assert.Equal(1, Volatile.Read(ref calls));

        _time.Advance(MxGroups.FailureTtl);
        pacer.Of("flaky.example");
        Wait.Until(() => mx.Lookups == 2, TimeSpan.FromSeconds(10), "the second lookup");
    }

    [Fact]
    public async Task Primary_MX_lookups_against_a_real_DNS_server()
    {
        Assert.True(DnsServer.IsInstalled, "dnsmasq is missing (see .ci/run)");
        using var dns = DnsServer.Start([], ["example.test"], mx:
        [
            ("a.example.test", "mx2.hosting.example.test", 20),
            ("a.example.test", "mx1.hosting.example.test", 10),
            ("b.example.test", "mx1.hosting.example.test", 5),
        ]);
        var resolver = new DnsTxtResolver([IPEndPoint.Parse(dns.Endpoint)], TimeSpan.FromSeconds(2));

        Assert.Equal("mx1.hosting.example.test", (await resolver.PrimaryMxAsync("a.example.test", CancellationToken.None)).Host);
        Assert.Equal("mx1.hosting.example.test", (await resolver.PrimaryMxAsync("b.example.test", CancellationToken.None)).Host);
        var none = await resolver.PrimaryMxAsync("nowhere.example.test", CancellationToken.None);
        Assert.Null(none.Host);
        Assert.True(none.Ttl > TimeSpan.Zero);
    }
}
