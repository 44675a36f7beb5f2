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

    // Review 109: x<U+200B>y@ showed as xy@ everywhere, every relay refused it, and it could not
    // be removed by the name it showed. A byte-order mark opening a line (files joined) is no part.
    [Theory]
    [InlineData("x\u200By@example.com")]
    [InlineData("xy@exa\u2060mple.com")]
    [InlineData("x\u00ADy@example.com")]
    [InlineData("x\uFEFFy@example.com")]
    [InlineData("x\u200Cy@example.com")]
    [InlineData("ab\U000E0041cd@example.com")] // review 112: beyond the BMP, and not Format but invisible
    [InlineData("ab\U0001D173cd@example.com")]
    [InlineData("ab\u034Fcd@example.com")]
    [InlineData("ab\uFE0Fcd@example.com")]
    [InlineData("ab\u3164cd@example.com")]
    [InlineData("ab\u2800cd@example.com")]
    [InlineData("ab\u200Dcd@bücher.de")]
    public void Refuses_invisible_characters_in_an_address(string line)
        => Assert.Throws<FormatException>(() => Member.Parse(line));

    [Fact]
    public void Takes_a_line_opened_by_a_byte_order_mark_and_joiners_a_script_needs()
    {
        Assert.Equal(new Member("w3@example.com", "W"), Member.Parse("\uFEFFW <w3@example.com>"));
        Assert.Equal("نامه\u200Cای@example.com", Member.Parse("نامه\u200Cای@example.com").Address);
        Assert.Equal("क्\u200Dष@example.com", Member.Parse("क्\u200Dष@example.com").Address);
    }

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
