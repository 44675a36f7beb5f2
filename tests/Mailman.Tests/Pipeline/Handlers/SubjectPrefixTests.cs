using Mailman.Pipeline.Handlers;
using Mailman.TestSupport;

namespace Mailman.Tests.Pipeline.Handlers;

public sealed class SubjectPrefixTests
{
    [Theory]
    [InlineData("hello", "[Dev] hello")]
    [InlineData("[Dev] hello", "[Dev] hello")]
    [InlineData("Re: [Dev] hello", "[Dev] Re: hello")]
    [InlineData("RE: Re: [Dev] Re: hello", "[Dev] Re: hello")]
    [InlineData("[dev] hello", "[Dev] hello")]
    [InlineData("", "[Dev] (no subject)")]
    [InlineData(null, "[Dev] (no subject)")]
    public void Prefix_is_added_once_and_replies_keep_one_Re(string? subject, string expected)
        => Assert.Equal(expected, SubjectPrefix.Apply("[Dev]", subject));

    [Fact]
    public void Handler_expands_the_prefix_template_with_the_display_name()
    {
        var post = Pipeline.PostBuilder.Context(Posts.Plain(subject: "Re: [Dev Team] news"));
        new SubjectPrefix().Process(post);
        Assert.Equal("[Dev Team] Re: news", post.Message.Subject);
    }
}
