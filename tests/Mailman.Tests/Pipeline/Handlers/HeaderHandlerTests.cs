using Mailman.Lists;
using Mailman.Pipeline;
using Mailman.Pipeline.Handlers;
using Mailman.TestSupport;

namespace Mailman.Tests.Pipeline.Handlers;

public sealed class HeaderHandlerTests
{
    [Fact]
    public void List_headers_follow_RFC_2369_2919_and_8058()
    {
        var post = Pipeline.PostBuilder.Context(Posts.Plain(), l =>
        {
            l.UnsubscribeUrl = "https://lists.example.org/unsub/dev";
            l.ArchiveUrl = "https://lists.example.org/archive/dev";
        });
        post.Message.Headers.Add("List-Post", "<mailto:upstream@example.net>");
        new ListIdHeader().Process(post);
        new ListHeaders().Process(post);
        new BeenThere().Process(post);

        var h = post.Message.Headers;
        Assert.Equal("Dev Team <dev.example.org>", h["List-Id"]);
        Assert.Equal("<mailto:dev@example.org>", h["List-Post"]);
        Assert.Single(h, x => x.Field == "List-Post");
        Assert.Equal("<mailto:dev-request@example.org?subject=help>", h["List-Help"]);
        Assert.Equal("<mailto:dev-join@example.org>", h["List-Subscribe"]);
        Assert.Equal("<https://lists.example.org/unsub/dev>, <mailto:dev-leave@example.org>", h["List-Unsubscribe"]);
        Assert.Equal("List-Unsubscribe=One-Click", h["List-Unsubscribe-Post"]);
        Assert.Equal("<https://lists.example.org/archive/dev>", h["List-Archive"]);
        Assert.Equal("dev@example.org", h["X-BeenThere"]);
        Assert.Equal("list", h["Precedence"]);
    }

    [Fact]
    public void One_click_unsubscribe_needs_an_https_url()
    {
        var post = Pipeline.PostBuilder.Context(Posts.Plain(), l => l.UnsubscribeUrl = "mailto:dev-leave@example.org");
        new ListHeaders().Process(post);
        Assert.Null(post.Message.Headers["List-Unsubscribe-Post"]);
    }

    [Theory]
    [InlineData("Developers, Inc.", "\"Developers, Inc.\"")]
    [InlineData("Développeurs", "=?utf-8?")]
    public void Display_names_with_specials_or_non_ascii_are_quoted_or_encoded(string name, string start)
    {
        var post = Pipeline.PostBuilder.Context(Posts.Plain(), l => l.DisplayName = name);
        new ListIdHeader().Process(post);
        var value = post.Message.Headers["List-Id"]!;
        Assert.EndsWith(" <dev.example.org>", value, StringComparison.Ordinal);
        Assert.StartsWith(start, value, StringComparison.Ordinal);
        var phrase = value[..value.LastIndexOf(' ')];
        Assert.Equal(name, MimeKit.Utils.MimeUtils.Unquote(MimeKit.Utils.Rfc2047.DecodePhrase(System.Text.Encoding.ASCII.GetBytes(phrase))));
    }

    [Theory]
    [InlineData(ReplyToPolicy.None, "poster@example.com")]
    [InlineData(ReplyToPolicy.List, "dev@example.org")]
    [InlineData(ReplyToPolicy.Explicit, "replies@example.org")]
    public void Reply_to_policy(ReplyToPolicy policy, string expected)
    {
        var post = Pipeline.PostBuilder.Context(Posts.Plain(), l =>
        {
            l.ReplyTo = policy;
            l.ReplyToAddress = "replies@example.org";
        });
        post.Message.ReplyTo.Add(MimeKit.MailboxAddress.Parse("poster@example.com"));
        new ReplyTo().Process(post);
        Assert.Equal(expected, Assert.Single(post.Message.ReplyTo.Mailboxes).Address);
    }

    [Theory]
    [InlineData("X-BeenThere: dev@example.org\n")]
    [InlineData("X-BeenThere: dev-owner@example.org\n")]
    [InlineData("List-Id: Dev <dev.example.org>\n")]
    public void Loops_are_discarded(string header)
    {
        var post = Pipeline.PostBuilder.Context([.. System.Text.Encoding.ASCII.GetBytes(header), .. Posts.Plain()]);
        Assert.Equal(HandlerAction.Discard, new LoopDetection().Process(post).Action);
        Assert.Equal(HandlerAction.Continue, new LoopDetection().Process(Pipeline.PostBuilder.Context(Posts.Plain())).Action);
    }

    [Fact]
    public void Oversized_posts_are_held()
    {
        var post = Pipeline.PostBuilder.Context(Posts.Plain(body: new string('x', 3000)), l => l.MaxMessageSizeKb = 2);
        Assert.Equal(HandlerAction.Hold, new MaximumSize().Process(post).Action);
    }
}
