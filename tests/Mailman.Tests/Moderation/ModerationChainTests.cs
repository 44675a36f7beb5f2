// The chain: Mailman 3's order, decisive verdicts end it, holds collect every later hit,
// approved posts skip moderation but not loop detection, names come from configuration.
using Mailman.Dmarc;
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mailman.Tests.Moderation;

public sealed class ModerationChainTests : IDisposable
{
    private readonly ModerationFixture _f = new();

    public void Dispose() => _f.Dispose();

    // The catalog's checks, with DMARC looking up a DNS that publishes nothing.
    private static IEnumerable<IHandler> Checks()
        => new HandlerCatalog(_ => [], new DmarcServices(new DmarcPolicyLookup(new Dmarc.FakeTxtResolver(), NullLogger<DmarcPolicyLookup>.Instance), false, NullLogger.Instance)).All;

    private static ModerationChain Chain(IEnumerable<string>? names = null)
        => new(names ?? ModerationChain.DefaultRules, Checks());

    // A reply from FROM arriving AFTER 11:00 UTC one day: what the posting rate counts by.
    private ModerationContext Arriving(string from, TimeSpan after)
    {
        var context = _f.Context(ModerationFixture.Post($"From: {from}\nSubject: Re: [dev] hello\n"));
        context.Metadata.Received = new DateTimeOffset(2026, 12, 6, 11, 0, 0, TimeSpan.Zero) + after;
        return context;
    }

    [Fact]
    public void The_default_chain_is_the_shipped_configuration_in_Mailman_3s_order_with_loop_detection_first()
    {
        var options = Mailman.Hosting.MailmanConfiguration.Options(Mailman.Hosting.MailmanConfiguration.Build(_f.Instance.Paths));
        Assert.Equal(ModerationChain.DefaultRules, options.Moderation.Chain);
        Assert.Equal("loop-detection", Chain().Rules[0].Name);
        Assert.Equal(ModerationChain.DefaultRules, Chain().Rules.Select(r => r.Name));
    }

    [Fact]
    public void A_members_plain_post_is_accepted_with_no_hits()
    {
        var decision = Chain().Evaluate(_f.Context(ModerationFixture.Post("From: ann@example.com\n")));
        Assert.Equal(Verdict.Accept, decision.Verdict);
        Assert.Empty(decision.Hits);
    }

    [Fact]
    public void A_hold_records_every_rule_that_hits_after_it()
    {
        _f.Configure(l =>
        {
            l.MaxNumRecipients = 2;
            l.MaxMessageSizeKb = 1;
            l.Set("bounce_matching_headers", "X-Spam: yes");
        });
        var post = ModerationFixture.Post("From: stranger@example.net\nTo: other@example.net, third@example.net\nX-Spam: yes\n", "help\n" + new string('x', 2000) + "\n");
        var decision = Chain([.. ModerationChain.DefaultRules, "maximum-size"]).Evaluate(_f.Context(post));
        Assert.Equal(Verdict.Hold, decision.Verdict);
        Assert.Equal(["nonmember-moderation", "administrivia", "max-recipients", "implicit-dest", "suspicious-header", "maximum-size"], decision.Hits.Select(h => h.Rule));
    }

    // Review 100: a member's auto-responder answering every copy to the list, without a header
    // that says so, posted as the member 40 times a minute, each answer going to it again. Past
    // max_posts_per_hour within an hour a member's posts are held (a held post goes to nobody:
    // the loop ends); another member's are not, nor are the posts of the next hour; a member
    // whose action is accept is held too (the rule comes before member-moderation).
    [Fact]
    public void A_members_posts_past_max_posts_per_hour_are_held()
    {
        _f.Configure(l => l.MaxPostsPerHour = 3);
        _f.SetAction("ann@example.com", "accept");
        var chain = Chain();
        ChainDecision Post(string from, TimeSpan after) => chain.Evaluate(Arriving(from, after));

        Assert.All(Enumerable.Range(0, 3), i => Assert.Equal(Verdict.Accept, Post("ann@example.com", TimeSpan.FromMinutes(i)).Verdict));
        var held = Post("ann@example.com", TimeSpan.FromMinutes(3));
        Assert.Equal(Verdict.Hold, held.Verdict);
        Assert.Equal("posting-rate", held.Hits[0].Rule);
        Assert.Contains("post 4 from member ann@example.com within an hour, past max_posts_per_hour 3", held.Reason, StringComparison.Ordinal);
        Assert.Equal(Verdict.Accept, Post("bob@example.com", TimeSpan.FromMinutes(4)).Verdict);
        Assert.Equal(Verdict.Hold, Post("ANN@example.com", TimeSpan.FromMinutes(5)).Verdict);
        Assert.Equal(Verdict.Accept, Post("ann@example.com", TimeSpan.FromMinutes(66)).Verdict); // the first three are an hour old

        _f.Configure(l => l.MaxPostsPerHour = 0);
        Assert.Equal(Verdict.Accept, Post("ann@example.com", TimeSpan.FromMinutes(67)).Verdict);
    }

    // A non-member's posts are for nonmember_action alone where it does not accept them (a
    // flood of them stays discarded, not held).
    [Fact]
    public void A_non_members_posts_the_list_does_not_accept_are_not_counted()
    {
        _f.Configure(l =>
        {
            l.MaxPostsPerHour = 1;
            l.NonMemberAction = NonMemberAction.Discard;
        });
        var chain = Chain();
        Assert.All(Enumerable.Range(0, 3), _ => Assert.Equal(Verdict.Discard, chain.Evaluate(_f.Context(ModerationFixture.Post("From: stranger@example.net\n"))).Verdict));
    }

    // Review 105: a member's away-message program answering every copy to the list from an
    // address that is not a member, on a list with nonmember_action accept, looped 66 rounds a
    // minute: no rule counted a non-member's posts. Where the list accepts them they count.
    [Fact]
    public void A_non_members_accepted_posts_past_max_posts_per_hour_are_held()
    {
        _f.Configure(l =>
        {
            l.MaxPostsPerHour = 2;
            l.NonMemberAction = NonMemberAction.Accept;
        });
        var chain = Chain();
        ChainDecision Post(string from, int minute) => chain.Evaluate(Arriving(from, TimeSpan.FromMinutes(minute)));

        Assert.Equal(Verdict.Accept, Post("botalt@example.net", 0).Verdict);
        Assert.Equal(Verdict.Accept, Post("botalt@example.net", 1).Verdict);
        var held = Post("BotAlt@example.net", 2);
        Assert.Equal(Verdict.Hold, held.Verdict);
        Assert.Contains("post 3 from non-member botalt@example.net within an hour, past max_posts_per_hour 2", held.Reason, StringComparison.Ordinal);
        Assert.Equal(Verdict.Accept, Post("other@example.net", 3).Verdict);

        // Review 106: one mailbox under other spellings (a responder answering from
        // user+TICKET@), and an author among more than Senders.Limit, count as that poster.
        Assert.Equal("posting-rate", Post("botalt+ticket17@example.net", 4).Hits[0].Rule);
        Assert.Equal("posting-rate", Post(string.Join(", ", Enumerable.Range(0, 11).Select(i => i == 0 ? "botalt@example.net" : $"a{i}@example.net")), 5).Hits[0].Rule);
    }

    // Non-members counted, a flood from distinct addresses within the hour grew the counts
    // without end: past ten times the tracked posters, those with one post are forgotten; one
    // that posts again is still counted.
    [Fact]
    public void A_flood_of_distinct_non_members_is_not_remembered_without_end()
    {
        _f.Configure(l =>
        {
            l.MaxPostsPerHour = 2;
            l.NonMemberAction = NonMemberAction.Accept;
        });
        var rule = new Mailman.Moderation.Rules.PostingRate(tracked: 5);
        RuleResult Post(string from, TimeSpan after) => rule.Check(Arriving(from, after));

        Post("loop@example.net", TimeSpan.Zero);
        Post("loop@example.net", TimeSpan.FromSeconds(1));
        for (var i = 0; i < 60; i++)
        {
            Post($"once{i}@example.net", TimeSpan.FromSeconds(2));
        }

        Assert.Equal(61, rule.Posters);
        Post("late@example.net", TimeSpan.FromMinutes(2));
        Assert.Equal(2, rule.Posters); // loop@ (two posts) and late@ (counted after the prune)
        Assert.Equal(Verdict.Hold, Post("loop@example.net", TimeSpan.FromMinutes(3)).Verdict);
    }

    [Fact]
    public void Accept_reject_and_discard_end_the_chain()
    {
        _f.SetAction("ann@example.com", "accept");
        _f.Configure(l => l.MaxMessageSizeKb = 1);
        var big = ModerationFixture.Post("From: ann@example.com\n", new string('x', 5000));
        var accepted = Chain([.. ModerationChain.DefaultRules, "maximum-size"]).Evaluate(_f.Context(big));
        Assert.Equal(Verdict.Accept, accepted.Verdict);
        Assert.Equal("member-moderation", Assert.Single(accepted.Hits).Rule);

        _f.SetAction("ann@example.com", "discard");
        Assert.Equal(Verdict.Discard, Chain().Evaluate(_f.Context(big)).Verdict);
    }

    [Fact]
    public void Emergency_holds_even_what_a_member_rule_would_discard_but_an_approved_password_passes_it()
    {
        _f.Configure(l =>
        {
            l.Emergency = true;
            l.Set("moderator_password", "pw-of-the-list");
        });
        _f.SetAction("ann@example.com", "discard");
        var held = Chain().Evaluate(_f.Context(ModerationFixture.Post("From: ann@example.com\n")));
        Assert.Equal(Verdict.Hold, held.Verdict);
        Assert.Equal(["emergency"], held.Hits.Select(h => h.Rule));

        var approved = Chain().Evaluate(_f.Context(ModerationFixture.Post("From: stranger@example.net\nApproved: pw-of-the-list\n")));
        Assert.Equal(Verdict.Accept, approved.Verdict);
    }

    [Fact]
    public void An_approved_post_skips_the_moderation_rules_but_loop_detection_still_runs()
    {
        _f.Configure(l => l.Emergency = true);
        Assert.Equal(Verdict.Accept, Chain().Evaluate(_f.Context(ModerationFixture.Post("From: stranger@example.net\n"), approved: true)).Verdict);
        var loop = Chain().Evaluate(_f.Context(ModerationFixture.Post("From: stranger@example.net\nX-BeenThere: dev@example.org\n"), approved: true));
        Assert.Equal(Verdict.Discard, loop.Verdict);
        Assert.Equal("loop-detection", Assert.Single(loop.Hits).Rule);
    }

    [Fact]
    public void The_names_the_configuration_is_checked_against_are_the_catalogs_and_the_chains()
    {
        Assert.Equal(Checks().Select(h => h.Name).Order(), HandlerCatalog.Names.Order());
        Assert.Subset(new HashSet<string>(HandlerCatalog.Names), new HashSet<string>(HandlerCatalog.Checks));
        Assert.Subset(new HashSet<string>(ModerationChain.Names), new HashSet<string>(ModerationChain.DefaultRules));
        Assert.Contains(HandlerCatalog.Recipients, HandlerCatalog.DefaultPipeline);
    }

    [Fact]
    public void A_check_from_the_handler_catalog_takes_its_place_by_name_and_unknown_names_are_refused()
    {
        var chain = new ModerationChain(["loop-detection", "always-hold"], Checks().Append(new AlwaysHold()));
        var decision = chain.Evaluate(_f.Context(ModerationFixture.Post("From: ann@example.com\n")));
        Assert.Equal(Verdict.Hold, decision.Verdict);
        Assert.Equal("always-hold", Assert.Single(decision.Hits).Rule);
        Assert.True(chain.Rules[1].SkippedWhenApproved);
        Assert.False(chain.Rules[0].SkippedWhenApproved);

        var e = Assert.Throws<InvalidOperationException>(() => Chain(["loop-detection", "no-such-rule"]));
        Assert.Contains("no-such-rule", e.Message, StringComparison.Ordinal);
    }

    private sealed class AlwaysHold : IHandler
    {
        public string Name => "always-hold";

        public string Description => "test";

        public HandlerResult Process(PostContext post) => HandlerResult.Hold("because");
    }
}
