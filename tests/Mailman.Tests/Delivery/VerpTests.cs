using Mailman.Delivery;
using Mailman.Lists;

namespace Mailman.Tests.Delivery;

public sealed class VerpTests
{
    private static readonly ListName List = ListName.Parse("dev@example.org");

    [Fact]
    public void Encodes_in_Mailmans_format_and_decodes_back()
    {
        var verp = Verp.Encode(List, "anne.person@example.com");
        Assert.Equal("dev-bounces+anne.person=example.com@example.org", verp);
        Assert.Equal("anne.person@example.com", Verp.Decode(List, verp));
        Assert.Null(Verp.Decode(List, "other-bounces+a=b.c@example.org"));
    }

    // Left: a quoted local part (RFC 5321 allows it; Postfix does not write it) and a list's
    // domain in U-labels (as intake kept it before it kept A-labels) were never decoded.
    [Fact]
    public void A_quoted_local_part_and_a_domain_in_U_labels_decode_as_the_plain_address()
    {
        Assert.Equal("anne@example.com", Verp.Decode(List, "\"dev-bounces+anne=example.com\"@example.org"));
        var idn = ListName.Parse("all@lists.xn--bcher-kva.example");
        Assert.Equal("anne@example.com", Verp.Decode(idn, "all-bounces+anne=example.com@lists.bücher.example"));
        var token = Verp.NewProbeToken();
        Assert.Equal(token, Verp.DecodeProbe(idn, "\"all-bounces+probe-" + token + "\"@lists.bücher.example"));
    }

    // Local parts may carry the very characters VERP uses ('+', '=') and the old %-hack: the
    // domain never holds '=' (a host name), so the last '=' is always the separator.
    [Theory]
    [InlineData("anne@example.com")]
    [InlineData("anne+lists@example.com")]
    [InlineData("a=b@example.com")]
    [InlineData("a=b=c@sub.example.co.uk")]
    [InlineData("user%relay.example.net@gateway.example.com")]
    [InlineData("x+y=z%w@example.com")]
    [InlineData("o'brien@example.ie")]
    [InlineData("!#$&*/?^_`{|}~-@example.com")]
    [InlineData("Anne.Person@Example.COM")]
    public void Every_encodable_address_round_trips(string member)
    {
        var verp = Verp.TryEncode(List, member);
        Assert.NotNull(verp);
        Assert.StartsWith("dev-bounces+", verp, StringComparison.Ordinal);
        Assert.EndsWith("@example.org", verp, StringComparison.Ordinal);
        Assert.Equal(member, Verp.Decode(List, verp));

        // Postfix may hand the recipient over in another case: the member is still found (the
        // store compares addresses case-insensitively).
        Assert.Equal(member, Verp.Decode(List, verp.ToUpperInvariant()), StringComparer.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("\"a b\"@example.com")]
    [InlineData("user@[192.0.2.1]")]
    [InlineData("a..b@example.com")]
    [InlineData(".a@example.com")]
    [InlineData("no-at-sign")]
    [InlineData("j rg@example.com")]
    public void An_address_that_cannot_be_encoded_gets_the_plain_bounces_address(string member)
    {
        Assert.Null(Verp.TryEncode(List, member));
        Assert.Equal("dev-bounces@example.org", Verp.Encode(List, member));
        Assert.Null(Verp.Decode(List, "dev-bounces@example.org"));
    }

    [Theory]
    [InlineData("dev-bounces+@example.org")]            // no member at all
    [InlineData("dev-bounces+anne@example.org")]        // no '='
    [InlineData("dev-bounces+=example.com@example.org")] // empty local part
    [InlineData("dev-bounces+anne=@example.org")]       // empty domain
    [InlineData("dev-bounces+anne=example.com@other.org")]
    [InlineData("devx-bounces+anne=example.com@example.org")]
    [InlineData("dev-request+anne=example.com@example.org")]
    public void Anything_else_decodes_to_nobody(string address)
    {
        Assert.Null(Verp.Decode(List, address));
    }

    [Fact]
    public void An_IDN_domain_is_written_in_A_labels_so_MAIL_FROM_stays_ASCII()
    {
        var list = Mailman.Lists.ListName.Parse("dev@example.org");
        Assert.Equal("dev-bounces+a=xn--bcher-kva.de@example.org", Verp.Encode(list, "a@bücher.de"));
        Assert.Equal("dev-bounces@example.org", Verp.Encode(list, "\"a b\"@example.com"));
        Assert.Equal("dev-bounces@example.org", Verp.Encode(list, "u@[192.0.2.1]"));
    }

    // RFC 6532: a UTF-8 local part is atext; its copy goes with SMTPUTF8 or not at all, and the
    // VERP sender with it. Control characters and spaces still make it unwritable.
    [Theory]
    [InlineData("jörg@example.com", "dev-bounces+jörg=example.com@example.org")]
    [InlineData("用户@例子.广告", "dev-bounces+用户=xn--fsqu00a.xn--4rr70v@example.org")]
    [InlineData("zoë.o'neil@bücher.de", "dev-bounces+zoë.o'neil=xn--bcher-kva.de@example.org")]
    [InlineData("j\u00a0rg@example.com", "dev-bounces@example.org")]
    [InlineData("j\u0085rg@example.com", "dev-bounces@example.org")]
    [InlineData("a\u202eb@example.com", "dev-bounces@example.org")]
    [InlineData("a\u200bb@example.com", "dev-bounces@example.org")]
    [InlineData("a\\ud800b@example.com", "dev-bounces@example.org")]
    [InlineData("\ud83d\ude00@example.com", "dev-bounces+\ud83d\ude00=example.com@example.org")]
    public void A_UTF_8_local_part_is_written_into_the_VERP_sender_and_decodes_back(string member, string sender)
    {
        var list = Mailman.Lists.ListName.Parse("dev@example.org");
        member = System.Text.RegularExpressions.Regex.Unescape(member);
        Assert.Equal(sender, Verp.Encode(list, member));
        if (sender != list.BouncesAddress)
        {
            Assert.Equal(Mailman.Lists.ListStore.AddressKey(member), Mailman.Lists.ListStore.AddressKey(Verp.Decode(list, sender)!));
        }
    }
}
