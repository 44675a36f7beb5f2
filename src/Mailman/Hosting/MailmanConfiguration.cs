// Configuration layers, lowest first: the defaults embedded in the binary (a copy of the shipped
// config/mailman.json), the instance's config/mailman.json, then environment variables
// (Mailman__Smtp__Port=2525).
using Mailman.Instance;
using Microsoft.Extensions.Configuration;

namespace Mailman.Hosting;

public static class MailmanConfiguration
{
    public static IConfigurationRoot Build(InstancePaths paths, IEnumerable<KeyValuePair<string, string?>>? overrides = null)
    {
        var builder = new ConfigurationBuilder();
        var defaults = typeof(MailmanConfiguration).Assembly.GetManifestResourceStream("mailman.defaults.json")
            ?? throw new InvalidOperationException("embedded default configuration is missing");
        builder.AddJsonStream(defaults);
        builder.AddJsonFile(paths.ConfigFile, optional: true, reloadOnChange: false);
        builder.AddEnvironmentVariables();
        if (overrides is not null)
        {
            builder.AddInMemoryCollection(overrides);
        }

        return builder.Build();
    }

    /// <exception cref="InvalidOperationException">A setting is invalid.</exception>
    public static MailmanOptions Options(IConfiguration configuration)
    {
        var options = new MailmanOptions();
        configuration.GetSection(MailmanOptions.Section).Bind(options);

        // Binding appends to the default list; the configured list replaces it.
        var handlers = configuration.GetSection("Mailman:Pipeline:Handlers").Get<List<string>>();
        if (handlers is { Count: > 0 })
        {
            options.Pipeline.Handlers = handlers;
        }

        options.Validate();
        return options;
    }
}
