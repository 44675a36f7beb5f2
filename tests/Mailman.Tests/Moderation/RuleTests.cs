// Each rule of the moderation chain on its own.
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Moderation.Rules;

namespace Mailman.Tests.Moderation;

public sealed class RuleTests : IDisposable
{
    private readonly ModerationFixture _f = new();

    public void Dispose() => _f.Dispose();

    private RuleResult Check(IRule rule, string headers, string body = "Hello\n", string? envelope = null)
        => rule.Check(_f.Context(ModerationFixture.Post(headers, body), envelope));

    [Fact]
    public void Emergency_holds_everything_while_it_is_on()
    {
        Assert.False(Check(new Emergency(), "From: ann@example.com\n").Hit);
        _f.Configure(l => l.Emergency = true);
        Assert.Equal(Verdict.Hold, Check(new Emergency(), "From: ann@example.com\n").Verdict);
    }

    [Theory]
    [InlineData("Auto-Submitted: auto-replied\n", Verdict.Discard)]
    [InlineData("Auto-Submitted: auto-generated\n", Verdict.Discard)]
    [InlineData("Precedence: bulk\n", Verdict.Discard)]
    [InlineData("Precedence: junk\n", Verdict.Discard)]
    [InlineData("X-Autoreply: yes\n", Verdict.Discard)]
    [InlineData("Precedence: auto_reply\n", Verdict.Discard)]
    [InlineData("Auto-Submitted: no\n", Verdict.None)]
    [InlineData("Precedence: list\n", Verdict.None)]
    [InlineData("", Verdict.None)]
    public void Auto_replies_are_discarded_by_default(string header, Verdict expected)
        => Assert.Equal(expected, Check(new AutoReply(), "From: ann@example.com\n" + header).Verdict);

    [Theory]
    [InlineData(AutoReplyAction.Hold, Verdict.Hold)]
    [InlineData(AutoReplyAction.Accept, Verdict.None)]
    public void Auto_reply_action_is_the_lists_choice(AutoReplyAction action, Verdict expected)
    {
        _f.Configure(l => l.AutoReplyAction = action);
        Assert.Equal(expected, Check(new AutoReply(), "From: ann@example.com\nAuto-Submitted: auto-replied\n").Verdict);
    }

    [Theory]
    [InlineData("defer", Verdict.None)]
    [InlineData("accept", Verdict.Accept)]
    [InlineData("hold", Verdict.Hold)]
    [InlineData("reject", Verdict.Reject)]
    [InlineData("discard", Verdict.Discard)]
    public void A_members_moderation_action_applies_to_their_posts(string action, Verdict expected)
    {
        _f.SetAction("ann@example.com", action);
        Assert.Equal(expected, Check(new MemberModeration(), "From: Ann <ANN@example.com>\n").Verdict);
        Assert.False(Check(new MemberModeration(), "From: stranger@example.net\n").Hit);
    }

    [Fact]
    public void Defer_means_the_lists_default_member_action()
    {
        _f.Configure(l => l.DefaultMemberAction = ModerationAction.Hold);
        Assert.Equal(Verdict.Hold, Check(new MemberModeration(), "From: ann@example.com\n").Verdict);
        _f.SetAction("ann@example.com", "accept");
        Assert.Equal(Verdict.Accept, Check(new MemberModeration(), "From: ann@example.com\n").Verdict);
    }

    [Fact]
    public void With_several_member_authors_the_strictest_action_applies()
    {
        _f.SetAction("ann@example.com", "accept");
        _f.SetAction("bob@example.com", "hold");
        Assert.Equal(Verdict.Hold, Check(new MemberModeration(), "From: ann@example.com, bob@example.com\n").Verdict);
        Assert.Equal(Verdict.Hold, Check(new MemberModeration(), "From: bob@example.com, ann@example.com\n").Verdict);
    }

    [Theory]
    [InlineData("From: stranger@example.net\n", null, true)]
    [InlineData("From: ann@example.com\n", null, false)]
    [InlineData("From: ann@example.com, bob@example.com\n", null, false)]
    [InlineData("From: stranger@example.net, ann@example.com\n", null, true)]
    [InlineData("From: ann@example.com, stranger@example.net\n", null, true)]
    [InlineData("From: stranger@example.net\nReply-To: ann@example.com\n", null, true)]
    [InlineData("From: stranger@example.net\nSender: ann@example.com\n", null, true)]
    [InlineData("From: stranger@example.net\n", "ann@example.com", true)]
    [InlineData("Sender: ann@example.com\n", null, false)]
    [InlineData("X-Nothing: x\n", "ann@example.com", false)]
    [InlineData("X-Nothing: x\n", null, true)]
    public void Every_author_must_be_a_member(string headers, string? envelope, bool held)
        => Assert.Equal(held ? Verdict.Hold : Verdict.None, Check(new NonmemberModeration(), headers, envelope: envelope).Verdict);

    [Theory]
    [InlineData(NonMemberAction.Accept, Verdict.None)]
    [InlineData(NonMemberAction.Hold, Verdict.Hold)]
    [InlineData(NonMemberAction.Reject, Verdict.Reject)]
    [InlineData(NonMemberAction.Discard, Verdict.Discard)]
    public void Nonmember_action_applies_to_non_members_only(NonMemberAction action, Verdict expected)
    {
        _f.Configure(l => l.NonMemberAction = action);
        Assert.Equal(expected, Check(new NonmemberModeration(), "From: stranger@example.net\n").Verdict);
        Assert.False(Check(new NonmemberModeration(), "From: ann@example.com\n").Hit);
    }

    [Fact]
    public void More_authors_than_are_looked_up_make_a_non_member_post_with_a_short_reason()
    {
        var from = string.Join(", ", Enumerable.Range(0, 5000).Select(i => $"ann{i}@example.com").Prepend("ann@example.com"));
        var result = Check(new NonmemberModeration(), $"From: {from}\n");
        Assert.Equal(Verdict.Hold, result.Verdict);
        Assert.Contains("5001 addresses", result.Reason, StringComparison.Ordinal);
        Assert.True(result.Reason.Length < 400, result.Reason);
    }

    [Theory]
    [InlineData("subscribe", "", true)]
    [InlineData("unsubscribe me@example.com", "", true)]
    [InlineData("help", "", true)]
    [InlineData("Help with the build", "", false)]
    [InlineData("Re: meeting", "unsubscribe\n", true)]
    [InlineData("Re: meeting", "\n\nhelp\n", true)]
    [InlineData("Re: meeting", "please help me\nsubscribe to the idea\n", false)]
    [InlineData("Re: meeting", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\nunsubscribe\n", false)]
    public void Administrivia_holds_commands_sent_to_the_list(string subject, string body, bool held)
    {
        var context = _f.Context(System.Text.Encoding.UTF8.GetBytes($"From: ann@example.com\nTo: dev@example.org\nSubject: {subject}\n\n{body}"));
        Assert.Equal(held ? Verdict.Hold : Verdict.None, new Administrivia().Check(context).Verdict);
        _f.Configure(l => l.Administrivia = false);
        Assert.False(new Administrivia().Check(_f.Context(System.Text.Encoding.UTF8.GetBytes($"From: a@b.c\nSubject: {subject}\n\n{body}"))).Hit);
    }

    [Fact]
    public void Max_recipients_holds_posts_with_that_many_explicit_recipients_or_more()
    {
        _f.Configure(l => l.MaxNumRecipients = 3);
        Assert.False(Check(new MaxRecipients(), "From: ann@example.com\nTo: dev@example.org, a@x.org\n").Hit);
        var held = Check(new MaxRecipients(), "From: ann@example.com\nTo: dev@example.org, a@x.org\nCc: b@x.org\n");
        Assert.Equal(Verdict.Hold, held.Verdict);
        Assert.Contains("3 explicit recipients", held.Reason, StringComparison.Ordinal);
        _f.Configure(l => l.MaxNumRecipients = 0);
        Assert.False(Check(new MaxRecipients(), "From: ann@example.com\nTo: dev@example.org, a@x.org\nCc: b@x.org, c@x.org\n").Hit);
    }

    [Theory]
    [InlineData("To: dev@example.org\n", false)]
    [InlineData("To: someone@example.net\nCc: DEV@example.org\n", false)]
    [InlineData("To: someone@example.net\n", true)]
    [InlineData("To: undisclosed-recipients:;\n", true)]
    [InlineData("To: someone@example.net\nResent-To: dev@example.org\n", false)]
    [InlineData("To: dev-alias@example.org\n", false)]
    [InlineData("To: team@lists.example.net\n", false)]
    public void Implicit_destination_holds_posts_that_do_not_name_the_list(string to, bool held)
    {
        _f.Configure(l => l.AcceptableAliases = ["dev-alias@example.org", "^team@.*\\.example\\.net$"]);
        Assert.Equal(held ? Verdict.Hold : Verdict.None, Check(new ImplicitDestination(), "From: ann@example.com\n" + to).Verdict);
        _f.Configure(l => l.RequireExplicitDestination = false);
        Assert.False(Check(new ImplicitDestination(), "From: ann@example.com\n" + to).Hit);
    }

    [Fact]
    public void Suspicious_headers_are_held_and_every_match_is_named()
    {
        _f.Configure(l => l.Set("bounce_matching_headers", "X-Spam-Flag: ^yes\\n# a comment\\nSubject: viagra\\nX-Mailer: ^(a+)+$"));
        Assert.False(Check(new SuspiciousHeader(), "From: ann@example.com\nX-Spam-Flag: no\n").Hit);
        var held = Check(new SuspiciousHeader(), "From: ann@example.com\nX-Spam-Flag: YES\n");
        Assert.Equal(Verdict.Hold, held.Verdict);
        Assert.Contains("X-Spam-Flag", held.Reason, StringComparison.Ordinal);

        // A pattern that backtracks catastrophically elsewhere is linear here.
        Assert.False(Check(new SuspiciousHeader(), "From: ann@example.com\nX-Mailer: " + new string('a', 50_000) + "!\n").Hit);
    }

    [Fact]
    public void Approved_accepts_the_right_password_holds_a_wrong_one_and_always_strips_it()
    {
        _f.Configure(l => l.Set("moderator_password", "s3cret pw"));
        var right = _f.Context(ModerationFixture.Post("From: stranger@example.net\nApproved: s3cret pw\n"));
        Assert.Equal(Verdict.Accept, new Approved().Check(right).Verdict);
        Assert.True(right.Modified);
        Assert.Null(right.Message.Headers["Approved"]);

        var wrong = _f.Context(ModerationFixture.Post("From: stranger@example.net\nApprove: guess\n"));
        Assert.Equal(Verdict.Hold, new Approved().Check(wrong).Verdict);
        Assert.Null(wrong.Message.Headers["Approve"]);

        var none = _f.Context(ModerationFixture.Post("From: stranger@example.net\n"));
        Assert.False(new Approved().Check(none).Hit);
        Assert.False(none.Modified);

        // A moderator already approved the post: the header is stripped, nothing decided.
        var approved = _f.Context(ModerationFixture.Post("From: stranger@example.net\nApproved: guess\n"), approved: true);
        Assert.False(new Approved().Check(approved).Hit);
        Assert.True(approved.Modified);
    }

    [Fact]
    public void The_right_password_repeated_where_it_cannot_be_removed_holds_the_post()
    {
        _f.Configure(l => l.Set("moderator_password", "s3cret pw"));
        var leaky = _f.Context(ModerationFixture.Post("From: stranger@example.net\nApproved: s3cret pw\n", "Hello\nps: the password is s3cret pw\n"));
        var result = new Approved().Check(leaky);
        Assert.Equal(Verdict.Hold, result.Verdict);
    }

    [Fact]
    public void Without_a_moderator_password_an_Approved_header_holds_the_post()
    {
        Assert.Equal(Verdict.Hold, Check(new Approved(), "From: stranger@example.net\nApproved: anything\n").Verdict);
    }
}
