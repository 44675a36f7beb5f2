using Mailman.Hosting;
using Mailman.TestSupport;

namespace Mailman.Tests.Hosting;

public sealed class ConfigurationTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void Embedded_defaults_apply_and_the_instance_file_and_overrides_win()
    {
        var defaults = MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths));
        Assert.Equal(25, defaults.Smtp.Port);
        Assert.Equal(100, defaults.Smtp.MaxRecipients);
        Assert.Equal(Mailman.Pipeline.HandlerCatalog.DefaultPipeline, defaults.Pipeline.Handlers);
        Assert.Empty(defaults.Dns.Servers);
        Assert.Equal(2000, defaults.Dns.TimeoutMilliseconds);
        Assert.False(defaults.Dmarc.RemoveDkimHeaders);

        File.WriteAllText(_instance.Paths.ConfigFile, """{ "Mailman": { "Smtp": { "Port": 2525 }, "Pipeline": { "Handlers": [ "list-id", "member-recipients" ] } } }""");
        var configured = MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths, [new("Mailman:Smtp:MaxRecipients", "500")]));
        Assert.Equal(2525, configured.Smtp.Port);
        Assert.Equal(500, configured.Smtp.MaxRecipients);
        Assert.Equal(["list-id", "member-recipients"], configured.Pipeline.Handlers);
    }

    [Fact]
    public void Invalid_settings_are_refused_at_start_naming_the_key()
    {
        var e = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths, [new("Mailman:Smtp:MaxRecipients", "0")])));
        Assert.Contains("MaxRecipients", e.Message, StringComparison.Ordinal);
    }

    // An empty number is refused (the binder skipped it: the default ran without a word); empty
    // text means none, and a relay entry's empty key takes the one above it.
    [Fact]
    public void Empty_numbers_are_refused_and_empty_text_and_relay_entry_keys_are_not()
    {
        var e = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths, [new("Mailman:Dns:TimeoutMilliseconds", "")])));
        Assert.Equal("configuration: Mailman:Dns:TimeoutMilliseconds is empty: give it a value, or remove it to keep the default", e.Message);

        var options = MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths,
            [new("Mailman:Smtp:HeloName", ""), new("Mailman:SiteOwner", ""), new("Mailman:Smtp:Relays:0:Address", "127.0.0.1:2525"), new("Mailman:Smtp:Relays:0:Connections", ""), new("Mailman:Smtp:Relays:0:Weight", "")]));
        Assert.Equal("", options.Smtp.HeloName);
        Assert.Single(options.Smtp.ResolvedRelays());
    }

    [Theory]
    [InlineData("Mailman:Dns:Servers:0", "dns.example.net", "Mailman:Dns:Servers")]
    [InlineData("Mailman:Dns:Servers:0", "127.0.0.1:99999", "Mailman:Dns:Servers")]
    [InlineData("Mailman:Dns:TimeoutMilliseconds", "0", "TimeoutMilliseconds")]
    public void Bad_DNS_settings_are_refused_at_start(string key, string value, string named)
    {
        var e = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths, [new(key, value)])));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DNS_servers_are_IP_addresses_with_an_optional_port()
    {
        var options = MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths,
            [new("Mailman:Dns:Servers:0", "127.0.0.1:5353"), new("Mailman:Dns:Servers:1", "[::1]:53"), new("Mailman:Dns:Servers:2", "192.0.2.53"), new("Mailman:Dmarc:RemoveDkimHeaders", "true")]));
        Assert.Equal(["127.0.0.1:5353", "[::1]:53", "192.0.2.53:53"], options.Dns.Servers.Select(s => Mailman.Dmarc.DnsTxtResolver.ParseServer(s).ToString()));
        Assert.True(options.Dmarc.RemoveDkimHeaders);
    }

    [Fact]
    public void Backoff_doubles_between_minimum_and_maximum()
    {
        var retry = new Mailman.Instance.RetryOptions { MinimumDelay = TimeSpan.FromMinutes(1), MaximumDelay = TimeSpan.FromMinutes(10) };
        Assert.Equal([1, 2, 4, 8, 10, 10], Enumerable.Range(1, 6).Select(a => retry.DelayFor(a).TotalMinutes));
    }
}
