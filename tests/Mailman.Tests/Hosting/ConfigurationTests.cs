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
        Assert.Equal(8, defaults.Pipeline.Handlers.Count);

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

    [Fact]
    public void Backoff_doubles_between_minimum_and_maximum()
    {
        var retry = new Mailman.Instance.RetryOptions { MinimumDelay = TimeSpan.FromMinutes(1), MaximumDelay = TimeSpan.FromMinutes(10) };
        Assert.Equal([1, 2, 4, 8, 10, 10], Enumerable.Range(1, 6).Select(a => retry.DelayFor(a).TotalMinutes));
    }
}
