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

        try
        {
            return builder.Build();
        }
        catch (InvalidDataException e)
        {
            // A syntax error in config/mailman.json: a configuration error (78), with where it is.
            throw new InvalidOperationException($"configuration: {paths.ConfigFile} is not valid JSON: {e.InnerException?.Message ?? e.Message}", e);
        }
    }

    /// <exception cref="InvalidOperationException">A setting is invalid.</exception>
    public static MailmanOptions Options(IConfigurationRoot configuration)
    {
        // A password in a configuration value would be readable by anyone who can read the file
        // or the process environment: refused, with where it belongs instead.
        foreach (var key in configuration.AsEnumerable().Select(p => p.Key))
        {
            if (key.StartsWith("Mailman:Smtp:", StringComparison.OrdinalIgnoreCase) && key.EndsWith(":Password", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"configuration: {key} is not read: put the password in a file named by PasswordFile (mode 0600), or in a systemd credential named by Credential");
            }
        }

        // A misspelt key (Mailman:Smtp:Secrity) would otherwise be ignored without a word, and
        // the daemon run with the default it meant to change.
        var options = new MailmanOptions();
        RefuseValuesForLists(configuration);
        RefuseEmptyNumbers(configuration);
        try
        {
            configuration.GetSection(MailmanOptions.Section).Bind(options, o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("ErrorOnUnknownConfiguration", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"configuration: {UnknownKeys(e.Message)}", e);
        }
        catch (InvalidOperationException e) when (!e.Message.StartsWith("configuration:", StringComparison.Ordinal))
        {
            // "Failed to convert configuration value 'abc' at 'Mailman:Smtp:Port' to type 'System.Int32'."
            throw new InvalidOperationException($"configuration: {e.Message}", e);
        }

        options.Pipeline.Handlers = OrderedList(configuration, "Mailman:Pipeline:Handlers");
        options.Moderation.Chain = OrderedList(configuration, "Mailman:Moderation:Chain");
        options.Validate();
        return options;
    }

    // A list or map written as one value ("Relays": "mx:25", Mailman__Smtp__Relays=mx:25) binds
    // to nothing, silently: the mail would go to Host:Port instead of the relay the operator named.
    private static void RefuseValuesForLists(IConfiguration configuration)
    {
        var m = MailmanOptions.Section;
        var keys = new List<string> { "Smtp:Relays", "Smtp:Destinations", "Dns:Servers", "Pipeline:Handlers", "Moderation:Chain" };
        foreach (var destination in configuration.GetSection($"{m}:Smtp:Destinations").GetChildren())
        {
            keys.Add($"Smtp:Destinations:{destination.Key}:Domains");
            keys.Add($"Smtp:Destinations:{destination.Key}:MxHosts");
        }

        foreach (var key in keys)
        {
            if (configuration.GetSection($"{m}:{key}") is { Value: { Length: > 0 } value })
            {
                throw new InvalidOperationException($"configuration: {m}:{key} must be a list (JSON [ ... ], or {m}__{key.Replace(":", "__", StringComparison.Ordinal)}__0 in the environment), not the value '{value}'");
            }
        }
    }

    // The binder leaves a property alone when its value is empty: Mailman__Smtp__Port= (a
    // variable set from an unset shell one) ran the daemon on port 25 without a word. Empty is a
    // value for text settings (HeloName, PasswordFile) only: the empty ones are bound once more
    // as a NUL, which no number, switch, enum or time span takes.
    private static void RefuseEmptyNumbers(IConfiguration configuration)
    {
        // A relay entry's empty key takes the one above it (README: Mailman:Smtp:Relays).
        var relays = $"{MailmanOptions.Section}:Smtp:Relays:";
        var empty = configuration.GetSection(MailmanOptions.Section).AsEnumerable()
            .Where(p => p.Value is { } v && string.IsNullOrWhiteSpace(v) && !configuration.GetSection(p.Key).GetChildren().Any()
                && !p.Key.StartsWith(relays, StringComparison.OrdinalIgnoreCase))
            .Select(p => p.Key).ToList();
        if (empty.Count == 0)
        {
            return;
        }

        var probe = new ConfigurationBuilder().AddConfiguration(configuration)
            .AddInMemoryCollection(empty.Select(k => new KeyValuePair<string, string?>(k, "\0"))).Build();
        try
        {
            probe.GetSection(MailmanOptions.Section).Bind(new MailmanOptions());
        }
        catch (InvalidOperationException e)
        {
            // Another bad value (Port=abc) is left to the binding that follows to name.
            if (empty.Find(k => e.Message.Contains($"'{k}'", StringComparison.OrdinalIgnoreCase)) is { } key)
            {
                throw new InvalidOperationException($"configuration: {key} is empty: give it a value, or remove it to keep the default", e);
            }
        }
    }

    // The binder names the properties it did not find and the type it looked in ("... the
    // following properties were not found on the instance of Mailman.Instance.SmtpOptions:
    // 'Secrity'"): said the way an operator writes settings.
    private static string UnknownKeys(string message)
    {
        var match = System.Text.RegularExpressions.Regex.Match(message, @"instance of (?:[\w.]+\.)?(\w+):\s*(.+)$", System.Text.RegularExpressions.RegexOptions.Singleline);
        return match.Success
            ? $"unknown setting {match.Groups[2].Value.Trim()} in {match.Groups[1].Value.Replace("Options", "", StringComparison.Ordinal)} (misspelt? the settings are in the README's Configuration)"
            : message;
    }

    // .NET configuration merges arrays index by index across layers; a pipeline (or the
    // moderation chain) is an ordered whole, so the list comes entirely from the highest layer
    // that sets one.
    private static List<string> OrderedList(IConfigurationRoot configuration, string key)
    {
        foreach (var provider in configuration.Providers.Reverse())
        {
            var result = new List<string>();
            for (var i = 0; provider.TryGet($"{key}:{i}", out var name); i++)
            {
                if (!string.IsNullOrWhiteSpace(name))
                {
                    result.Add(name.Trim());
                }
            }

            if (result.Count > 0)
            {
                return result;
            }
        }

        return [];
    }
}
