// Addresses as reports write them: what is trimmed, what is kept.
using Mailman.Bounces;

namespace Mailman.Tests.Bounces;

public sealed class AddressTextTests
{
    [Theory]
    [InlineData("anne@example.com", "anne@example.com")]
    [InlineData(" <Anne@Example.COM> ", "Anne@Example.COM")]
    [InlineData("rfc822;anne@example.com", "anne@example.com")]
    [InlineData("RFC822; <anne@example.com>", "anne@example.com")]
    [InlineData("\"anne@example.com\"", "anne@example.com")]
    [InlineData("'anne@example.com'", "anne@example.com")]
    [InlineData("<<anne@example.com>", "anne@example.com")]
    [InlineData("", "")]
    [InlineData("<>", "")]
    public void Clean_trims_only_the_wrapping(string raw, string expected) => Assert.Equal(expected, AddressText.Clean(raw));

    // Review 106: a member at an address literal (members add takes one) was never recognized.
    [Theory]
    [InlineData("anne@example.com", true)]
    [InlineData("x@[192.0.2.1]", true)]
    [InlineData("x@[IPv6:2001:db8::1]", true)]
    [InlineData("x@[not a literal]", false)]
    [InlineData("x@[]", false)]
    [InlineData("x@[dead]", false)]                 // review 107: a looser rule took these
    [InlineData("x@[::]", false)]
    [InlineData("x@[IPv6:::]", false)]
    [InlineData("x@[.]", false)]
    [InlineData("x@[192.0.2.256]", false)]
    [InlineData("x@[192.0.2]", false)]
    [InlineData("x@[IPv6:fe80::1%eth0]", false)]
    [InlineData("x@exa[mple.com", false)]
    [InlineData("x[1]@example.com", false)]
    [InlineData("anne@exa mple.com", false)]
    public void An_address_is_loosely_one_at_with_a_domain_or_an_address_literal(string text, bool expected)
    {
        Assert.Equal(expected, AddressText.LooksLikeAddress(text));
        Assert.Equal(expected, AddressText.IsPlausible(text) && AddressText.LooksLikeAddress(text));
    }

    [Theory]
    [InlineData("smtp; 550 5.1.1 <a@b>: unknown", "5.1.1")]
    [InlineData("4.4.1 (no answer from host)", "4.4.1")]
    [InlineData("553 Exceeded maximum size", null)]
    [InlineData("version 15.1.2345.0", null)]
    [InlineData("5.7.1", "5.7.1")]
    public void FindStatus_finds_rfc3463_codes_only(string text, string? expected) => Assert.Equal(expected, AddressText.FindStatus(text));
}
