using Mailman.Lists;

namespace Mailman.Tests.Lists;

public sealed class MemberTests
{
    [Fact]
    public void Parses_plain_address_and_display_name_form()
    {
        Assert.Equal(new Member("ann@example.com", ""), Member.Parse("ann@example.com"));
        Assert.Equal(new Member("bob@example.com", "Bob Smith"), Member.Parse("Bob Smith <bob@example.com>"));
        Assert.Equal(new Member("bob@example.com", "Smith, Bob"), Member.Parse("\"Smith, Bob\" <bob@example.com>"));
    }

    [Theory]
    [InlineData("not an address")]
    [InlineData("a@b.c, d@e.f")]
    [InlineData("")]
    public void Refuses_what_is_not_one_address(string line)
        => Assert.Throws<FormatException>(() => Member.Parse(line));

    [Fact]
    public void Sanitize_removes_line_breaks_and_caps_length()
    {
        Assert.Equal("Evil  Bcc: x@evil", Member.Sanitize("Evil\r\nBcc: x@evil"));
        Assert.Equal(200, Member.Sanitize(new string('x', 500)).Length);

        // Review 69: bidirectional overrides and isolates, not right-to-left text or its marks.
        Assert.Equal("Bidi   kcab", Member.Sanitize("Bidi \u202E kcab"));
        Assert.Equal("a b c", Member.Sanitize("a\u2066b\u2069c"));
        Assert.Equal("שלום \u200Fעולם", Member.Sanitize("שלום \u200Fעולם"));
    }
}
