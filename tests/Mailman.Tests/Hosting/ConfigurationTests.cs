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

    // The environment's form of review 40's gap: one line of a systemd drop-in deleted.
    [Fact]
    public void A_chain_numbered_with_a_gap_is_refused_and_one_without_replaces_the_default_whole()
    {
        var e = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths,
            [new("Mailman:Moderation:Chain:0", "loop-detection"), new("Mailman:Moderation:Chain:2", "nonmember-moderation")])));
        Assert.StartsWith("configuration: Mailman:Moderation:Chain has entries 0, 2 but no 1", e.Message, StringComparison.Ordinal);

        var options = MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths,
            [new("Mailman:Moderation:Chain:1", "nonmember-moderation"), new("Mailman:Moderation:Chain:0", "loop-detection")]));
        Assert.Equal(["loop-detection", "nonmember-moderation"], options.Moderation.Chain);

        // An empty Chain in the file under one given whole by a higher layer is that one (review 41).
        File.WriteAllText(_instance.Paths.ConfigFile, """{ "Mailman": { "Moderation": { "Chain": [] } } }""");
        options = MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths, [new("Mailman:Moderation:Chain:0", "loop-detection")]));
        Assert.Equal(["loop-detection"], options.Moderation.Chain);

        // A negative index is no list entry: one line, not LINQ's "Sequence contains no matching element".
        e = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths,
            [new("Mailman:Moderation:Chain:0", "loop-detection"), new("Mailman:Moderation:Chain:-1", "approved")])));
        Assert.StartsWith("configuration: Mailman:Moderation:Chain:-1: a list's entries are numbered 0, 1, 2 ... (Mailman__Moderation__Chain__0), not '-1'", e.Message, StringComparison.Ordinal);
    }

    // RFC 5321's address literals are taken; [1.2.3] and an untagged [::1] are refused (OutboundTests).
    [Theory]
    [InlineData("lists.example.org")]
    [InlineData("[192.0.2.1]")]
    [InlineData("[IPv6:2001:db8::1]")]
    public void A_helo_name_may_be_a_host_name_or_an_address_literal(string name)
    {
        var options = MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths, [new("Mailman:Smtp:HeloName", name)]));
        Assert.Equal(name, options.Smtp.HeloName);
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

    // Review 39: each of these bound to nothing (or to null) without a word, and the daemon ran
    // with defaults: mail to 127.0.0.1:25 instead of the relay named, or a NullReferenceException.
    [Theory]
    [InlineData("""{ "Mailman": { "Smtp": { "Relays": [ "127.0.0.1:61501" ] } } }""", "Mailman:Smtp:Relays:0 must be a section with Address (JSON { \"Address\": \"127.0.0.1:61501\" }")]
    [InlineData("""{ "Mailman": { "Smtp": { "Relays": { "Address": "127.0.0.1:61501" } } } }""", "Mailman:Smtp:Relays:Address must be a section with Address")]
    [InlineData("""{ "Mailman": { "Smtp": { "Host": [ "mx.example.net" ] } } }""", "Mailman:Smtp:Host is one value, not a list or a section")]
    [InlineData("""{ "Mailman": { "Smtp": { "Port": { "Number": 25 } } } }""", "Mailman:Smtp:Port is one value, not a list or a section")]
    [InlineData("""{ "Mailman": { "Smtp": { "Port": null } } }""", "Mailman:Smtp:Port is null: give it a value")]
    [InlineData("""{ "Mailman": { "Smtp": { "Host": "127.0.0.1:61500" } } }""", "Mailman:Smtp:Host must be a host name or an address, without a port (the port is Mailman:Smtp:Port; got '127.0.0.1:61500')")]
    [InlineData("""{ "Mailman": { "SiteOwner": null } }""", "Mailman:SiteOwner is null")]
    [InlineData("""{ "Mailman": { "Smtp": { "HeloName": null } } }""", "Mailman:Smtp:HeloName is null")]
    [InlineData("""{ "Mailman": { "Http": { "Url": null } } }""", "Mailman:Http:Url is null")]
    [InlineData("""{ "Mailman": { "Lmtp": { "Url": {} } } }""", "Mailman:Lmtp:Url is null")]
    [InlineData("""{ "Mailman": { "Smtp": { "Relays": [ { "Address": null } ] } } }""", "Mailman:Smtp:Relays:0:Address is null")]
    [InlineData("""{ "Mailman": { "Dns": { "Servers": [ null ] } } }""", "Mailman:Dns:Servers:0 is null")]
    [InlineData("""{ "Mailman": { "Smtp": { "Destinations": { "gmail.com": { "Domains": [ null ] } } } } }""", "Mailman:Smtp:Destinations:gmail.com:Domains:0 is null")]
    [InlineData("""{ "Mailman": { "Smtp": { "Destinations": { "gmail.com": 5 } } } }""", "Mailman:Smtp:Destinations:gmail.com must be a section")]
    [InlineData("""{ "Mailman": { "Smtp": { "Destinations": "gmail.com" } } }""", "Mailman:Smtp:Destinations must be a section (JSON { ... }")]
    [InlineData("""{ "Mailman": { "Retry": 5 } }""", "Mailman:Retry must be a section (JSON { ... }), not the value '5'")]
    [InlineData("""{ "Mailmn": { "Smtp": { "Port": 2525 } } }""", "unknown section 'Mailmn' at the top (the file holds \"Mailman\" and \"Logging\")")]
    [InlineData("""{ "Smtp": { "Port": 2525 } }""", "unknown section 'Smtp' at the top (the file holds \"Mailman\" and \"Logging\"; Smtp goes inside \"Mailman\": { ... })")]
    [InlineData("""{ "Mailman": { "Pipeline": { "Handlers": [ "list-id", "decorate" ] } } }""", "Mailman:Pipeline:Handlers must hold member-recipients: without it every post is delivered to nobody")]
    [InlineData("""{ "Mailman": { "Pipeline": { "Handlers": [ "decorate", "decorate", "member-recipients" ] } } }""", "Mailman:Pipeline:Handlers names decorate twice")]
    [InlineData("""{ "Mailman": { "Pipeline": { "Handlers": [ "approved", "member-recipients" ] } } }""", "Mailman:Pipeline:Handlers: 'approved' is a moderation rule: it goes in Mailman:Moderation:Chain")]
    [InlineData("""{ "Mailman": { "Pipeline": { "Handlers": [ "nosuch", "member-recipients" ] } } }""", "Mailman:Pipeline:Handlers: 'nosuch' is not a handler; the handlers are loop-detection, dmarc-moderation")]
    [InlineData("""{ "Mailman": { "Moderation": { "Chain": [ "decorate" ] } } }""", "Mailman:Moderation:Chain: 'decorate' is a pipeline handler: it goes in Mailman:Pipeline:Handlers; the rules are ")]
    [InlineData("""{ "Mailman": { "Moderation": { "Chain": [ "approved", "Approved" ] } } }""", "Mailman:Moderation:Chain names Approved twice")]
    [InlineData("""{ "Mailman": { "Metrics": { "PrometheusUrl": "http://192.0.2.1:9464/" } } }""", "Mailman:Metrics:PrometheusUrl must be an http URL on loopback with a port (not 0: Prometheus must know it) and without a path")]
    [InlineData("""{ "Mailman": { "Metrics": { "PrometheusUrl": "http://127.0.0.1:0/" } } }""", "Mailman:Metrics:PrometheusUrl must be an http URL on loopback with a port (not 0")]
    [InlineData("""{ "Mailman": { "Lmtp": { "Url": "lmtp://127.0.0.1:0" } } }""", "Mailman:Lmtp:Url: port 0 (any free one) is a port Postfix cannot be told")]
    [InlineData("""{ "Mailman": { "Http": { "Url": "http://127.0.0.1:0/" } } }""", "Mailman:Http:Url: port 0 (any free one)")]
    [InlineData("""{ "Mailman": { "Metrics": { "PrometheusUrl": "http://127.0.0.1:9464/stats" } } }""", "Mailman:Metrics:PrometheusUrl must be an http URL on loopback with a port (not 0: Prometheus must know it) and without a path")]
    [InlineData("""{ "Mailman": { "Retry": { "MaximumDelay": "3600" } } }""", "Mailman:Retry:MaximumDelay must be at least MinimumDelay (00:01:00) and at most a day, as hh:mm:ss or d.hh:mm:ss; a bare number is days (got 3600.00:00:00)")]
    [InlineData("""{ "Mailman": { "Retry": { "MaximumLifetime": "120" } } }""", "Mailman:Retry:MaximumLifetime must be positive and at most 30 days")]
    [InlineData("""{ "Mailman": { "Retry": { "MinimumDelay": "02:00:00", "MaximumDelay": "03:00:00", "MaximumLifetime": "01:00:00" } } }""", "Mailman:Retry:MaximumLifetime (01:00:00) must be longer than MinimumDelay (02:00:00)")]
    [InlineData("""{ "Mailman": { "Lmtp": { "Timeout": "300" } } }""", "Mailman:Lmtp:Timeout must be 1 second to 1 hour, as hh:mm:ss (got 300.00:00:00; a bare number is days)")]
    // Review 40: a null, [] or {} where a section or list goes showed the defaults beneath it ("Chain": [] ran
    // the whole default chain); a gap in a list's numbering dropped every entry after it.
    [InlineData("""{ "Mailman": null }""", "Mailman is null or empty, which keeps the default settings beneath it")]
    [InlineData("""{ "Mailman": "x" }""", "Mailman must be a section")]
    [InlineData("""{ "Mailman": { "Smtp": null } }""", "Mailman:Smtp is null or empty, which keeps the default settings beneath it: give the settings to change, or remove it")]
    [InlineData("""{ "Mailman": { "Moderation": { "Chain": [] } } }""", "Mailman:Moderation:Chain is null or empty, which keeps the default entries beneath it: list the entries to use, or remove it")]
    [InlineData("""{ "Mailman": { "Pipeline": { "Handlers": [] } } }""", "Mailman:Pipeline:Handlers is null or empty")]
    [InlineData("""{ "Mailman": { "Moderation": { "Chain": { "0": "loop-detection", "2": "nonmember-moderation" } } } }""", "Mailman:Moderation:Chain has entries 0, 2 but no 1: number them 0, 1, 2 ... without a gap")]
    [InlineData("""{ "Mailman": { "Pipeline": { "Handlers": { "b": "decorate", "a": "member-recipients" } } } }""", "Mailman:Pipeline:Handlers must be a list")]
    [InlineData("""{ "Mailman": { "Pipeline": { "Handlers": [ "", "member-recipients" ] } } }""", "Mailman:Pipeline:Handlers:0 is empty")]
    public void A_setting_of_the_wrong_shape_is_refused_by_name(string json, string message)
    {
        File.WriteAllText(_instance.Paths.ConfigFile, json);
        var e = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths)));
        Assert.StartsWith("configuration: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_settings_file_that_is_a_directory_a_link_to_nothing_or_no_file_at_all_is_refused_and_null_means_no_limit_where_leaving_out_means_a_default()
    {
        File.Delete(_instance.Paths.ConfigFile);

        Directory.CreateDirectory(_instance.Paths.ConfigFile);
        var e = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Build(_instance.Paths));
        Assert.Equal($"configuration: {_instance.Paths.ConfigFile} is a directory, not a settings file", e.Message);
        Directory.Delete(_instance.Paths.ConfigFile);

        // A link to nothing (the file's volume not mounted): 73 with .NET's "Could not find file" before (review 40).
        var nowhere = Path.Combine(_instance.Home, "elsewhere", "mailman.json");
        File.CreateSymbolicLink(_instance.Paths.ConfigFile, nowhere);
        e = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Build(_instance.Paths));
        Assert.Equal($"configuration: {_instance.Paths.ConfigFile} is a symbolic link to {nowhere}, which does not exist", e.Message);
        File.Delete(_instance.Paths.ConfigFile);

        // A FIFO waited for a writer for good, and a link to /dev/zero read until memory ran out (review 40).
        File.CreateSymbolicLink(_instance.Paths.ConfigFile, "/dev/zero");
        e = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Build(_instance.Paths));
        Assert.Equal($"configuration: {_instance.Paths.ConfigFile} is not a regular file (a FIFO, a device?)", e.Message);
        File.Delete(_instance.Paths.ConfigFile);
        Assert.Equal(0, PostfixInstance.Run("mkfifo", _instance.Paths.ConfigFile));
        e = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Build(_instance.Paths));
        Assert.Contains("is not a regular file", e.Message, StringComparison.Ordinal);
        File.Delete(_instance.Paths.ConfigFile);

        // DestinationDefaults' MaxConnections is 20 unless set; null sets it to no limit. [] and {} are empty.
        File.WriteAllText(_instance.Paths.ConfigFile, """{ "Mailman": { "Smtp": { "DestinationDefaults": { "MaxConnections": null }, "Relays": null, "Destinations": { "gmail.com": {} } }, "Dns": { "Servers": [] } }, "Logging": {} }""");
        var options = MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths));
        Assert.Null(options.Smtp.DestinationDefaults.MaxConnections);
        Assert.Empty(options.Smtp.Relays);
    }

    // Review 86: with Relays in the file, Mailman__Smtp__Host in the environment did nothing,
    // without a word. In the file beside Relays (the shipped file has Host), it is left.
    [Fact]
    public void Host_or_Port_set_over_a_configuration_whose_Relays_name_the_servers_is_refused()
    {
        File.WriteAllText(_instance.Paths.ConfigFile, """{ "Mailman": { "Smtp": { "Host": "127.0.0.1", "Port": 25, "Relays": [ { "Address": "mx.example.net:25" } ] } } }""");
        Assert.Equal("mx.example.net:25", Assert.Single(MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths)).Smtp.Relays).Address);
        foreach (var key in (string[])["Host", "Port"])
        {
            var e = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths, [new($"Mailman:Smtp:{key}", key == "Port" ? "587" : "smarthost.example")])));
            Assert.StartsWith($"configuration: Mailman:Smtp:{key} is set over a configuration whose Mailman:Smtp:Relays names the servers", e.Message, StringComparison.Ordinal);
        }

        // An entry's Weight above does not replace the file's relays: Host there is still refused (review 87).
        var weighted = Assert.Throws<InvalidOperationException>(() => MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths, [new("Mailman:Smtp:Relays:0:Weight", "2"), new("Mailman:Smtp:Host", "smarthost.example")])));
        Assert.StartsWith("configuration: Mailman:Smtp:Host is set over", weighted.Message, StringComparison.Ordinal);

        // Relays given above too: they are the ones used.
        var options = MailmanConfiguration.Options(MailmanConfiguration.Build(_instance.Paths, [new("Mailman:Smtp:Host", "smarthost.example"), new("Mailman:Smtp:Relays:0:Address", "other.example:25")]));
        Assert.Equal("other.example:25", Assert.Single(options.Smtp.Relays).Address);
    }

    [Fact]
    public void Backoff_doubles_between_minimum_and_maximum()
    {
        var retry = new Mailman.Instance.RetryOptions { MinimumDelay = TimeSpan.FromMinutes(1), MaximumDelay = TimeSpan.FromMinutes(10) };
        Assert.Equal([1, 2, 4, 8, 10, 10], Enumerable.Range(1, 6).Select(a => retry.DelayFor(a).TotalMinutes));
    }
}
