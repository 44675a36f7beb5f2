using Mailman.Hosting;
using Mailman.TestSupport;

namespace Mailman.Tests.Instance;

public sealed class HttpOptionsTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    private Mailman.Instance.MailmanOptions Options(params (string Key, string Value)[] settings)
        => MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths, settings.Select(s => new KeyValuePair<string, string?>("Mailman:Http:" + s.Key, s.Value))));

    [Fact]
    public void The_endpoint_is_off_by_default_and_a_loopback_http_url_with_an_https_public_url_is_accepted()
    {
        Assert.Equal("", Options().Http.Url);
        Assert.Equal("", Options().Http.PublicUrl);
        Assert.Equal("http://127.0.0.1:8024", Options(("Url", "http://127.0.0.1:8024"), ("PublicUrl", "https://lists.example.org/mm")).Http.Url);
        Assert.Equal("http://[::1]:8024/", Options(("Url", "http://[::1]:8024/")).Http.Url);
        Assert.Equal("http://localhost:8024", Options(("Url", "http://localhost:8024")).Http.Url);
        Assert.Equal("http://0.0.0.0:8024", Options(("Url", "http://0.0.0.0:8024"), ("AllowNonLoopback", "true")).Http.Url);
    }

    [Theory]
    [InlineData("Url", "http://0.0.0.0:8024", "loopback")]
    [InlineData("Url", "http://192.0.2.1:8024", "loopback")]
    [InlineData("Url", "https://127.0.0.1:8024", "http://")]
    [InlineData("Url", "http://127.0.0.1:8024/mm", "no path")]
    [InlineData("Url", "http://lists.example.org:8024", "IP address or localhost")]
    [InlineData("Url", "127.0.0.1:8024", "http://")]
    [InlineData("PublicUrl", "http://lists.example.org/mm", "https://")]
    [InlineData("PublicUrl", "https://lists.example.org/mm?x=1", "plain base URL")]
    [InlineData("PublicUrl", "lists.example.org/mm", "https://")]
    public void A_bad_endpoint_setting_is_refused_at_start_naming_the_key(string key, string value, string reason)
    {
        var e = Assert.Throws<InvalidOperationException>(() => Options((key, value)));
        Assert.Contains("Mailman:Http:" + key, e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }
}
