using Mailman.Http;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Tests.Http;

public sealed class OneClickLinksTests : IDisposable
{
    private static readonly ListName Dev = ListName.Parse("dev@example.org");
    private readonly TempInstance _instance = new();
    private readonly OneClickLinks _links;

    public OneClickLinksTests()
    {
        var options = new MailmanOptions();
        options.Http.PublicUrl = "https://lists.example.org/mm";
        _links = new OneClickLinks(options, new SecretKey(_instance.Paths));
    }

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void A_token_is_a_128_bit_HMAC_of_list_address_and_serial_and_only_that_verifies()
    {
        var token = _links.Token(Dev, "Anne@Example.com", "s1");
        Assert.Equal(OneClickLinks.TokenLength, token.Length);
        Assert.Equal(token, _links.Token(Dev, "anne@example.com", "s1"));
        Assert.True(_links.Verify(Dev, "ANNE@example.com", "s1", token));
        Assert.False(_links.Verify(Dev, "anne@example.com", "s2", token));
        Assert.False(_links.Verify(ListName.Parse("other@example.org"), "anne@example.com", "s1", token));
        Assert.False(_links.Verify(Dev, "bob@example.com", "s1", token));
        var flipped = (token[0] == 'A' ? 'B' : 'A') + token[1..];
        Assert.False(_links.Verify(Dev, "anne@example.com", "s1", flipped));
        Assert.False(_links.Verify(Dev, "anne@example.com", "s1", token[..^1]));

        // Other trailing bits in the last character decode to the same bytes: still not the token.
        Assert.False(_links.Verify(Dev, "anne@example.com", "s1", token[..^1] + (char)(token[^1] + 1)));
        Assert.False(_links.Verify(Dev, "anne@example.com", "s1", token[..^1] + "\u00e9"));
    }

    [Fact]
    public void The_key_is_created_once_mode_0600_and_another_key_gives_other_tokens()
    {
        var token = _links.Token(Dev, "anne@example.com", "s1");
        var key = _instance.Paths.SecretKeyFile;
        Assert.Equal(SecretKey.Length, new FileInfo(key).Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        Assert.Equal(token, new OneClickLinks(new MailmanOptions(), new SecretKey(_instance.Paths)).Token(Dev, "anne@example.com", "s1"));

        using var other = new TempInstance();
        Assert.NotEqual(token, new OneClickLinks(new MailmanOptions(), new SecretKey(other.Paths)).Token(Dev, "anne@example.com", "s1"));
    }

    [Fact]
    public void A_link_parses_back_to_its_list_and_address()
    {
        Assert.Equal("https://lists.example.org/mm/u/dev@example.org/", _links.UrlPrefix(Dev));
        var piece = System.Text.Encoding.ASCII.GetString(OneClickLinks.Piece("Anne@example.com"u8, "t"));
        Assert.Equal("QW5uZUBleGFtcGxlLmNvbQ/t", piece);
        Assert.True(OneClickLinks.TryParse("dev@example.org", "QW5uZUBleGFtcGxlLmNvbQ", new string('A', 22), out var list, out var address));
        Assert.Equal(Dev, list);
        Assert.Equal("Anne@example.com", address);
    }

    [Theory]
    [InlineData("dev@example.org", "QW5uZUBleGFtcGxlLmNvbQ", "short")]
    [InlineData("dev@example.org", "QW5uZUBleGFtcGxlLmNvbQ", "AAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("dev@example.org", "QW5uZUBleGFtcGxlLmNvbQ", "AAAAAAAAAAAAAAAAAAAA/A")]
    [InlineData("dev@example.org", "QW5uZUBleGFtcGxlLmNvbQ==", "AAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("dev@example.org", "", "AAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("dev@example.org", "bm8tYXQtc2lnbg", "AAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("dev@example.org", "YUBiCg", "AAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("dev@example.org", "_-_-", "AAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("dev@example.org", "QW5uZUBleGFtcGxlLmNvbR", "AAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("dev@example.org", "Q", "AAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("DEV@example.org", "QW5uZUBleGFtcGxlLmNvbQ", "AAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("../etc@example.org", "QW5uZUBleGFtcGxlLmNvbQ", "AAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("dev", "QW5uZUBleGFtcGxlLmNvbQ", "AAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData(null, "QW5uZUBleGFtcGxlLmNvbQ", "AAAAAAAAAAAAAAAAAAAAAA")]
    public void Links_of_the_wrong_shape_are_refused_before_any_lookup(string? list, string address, string token)
        => Assert.False(OneClickLinks.TryParse(list, address, token, out _, out _));

    [Fact]
    public void An_address_segment_longer_than_any_address_is_refused()
        => Assert.False(OneClickLinks.TryParse("dev@example.org", new string('Q', OneClickLinks.MaxAddressSegment + 1), new string('A', 22), out _, out _));
}
