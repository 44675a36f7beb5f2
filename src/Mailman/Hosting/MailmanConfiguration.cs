// Configuration layers, lowest first: the defaults embedded in the binary (a copy of the shipped
// config/mailman.json), the instance's config/mailman.json, then environment variables
// (Mailman__Smtp__Port=2525).
using System.Diagnostics.CodeAnalysis;
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
        if (Directory.Exists(paths.ConfigFile))
        {
            // Optional as a file, it would be taken for no file: every setting at its default.
            throw new InvalidOperationException($"configuration: {paths.ConfigFile} is a directory, not a settings file");
        }

        if (FileOwner.DanglingLinkTarget(paths.ConfigFile) is { } target)
        {
            // .NET's "Could not find file" as a 73 (review 40).
            throw new InvalidOperationException($"configuration: {paths.ConfigFile} is a symbolic link to {target}, which does not exist");
        }

        if (FileOwner.NotASettingsFile(paths.ConfigFile, 16 << 20) is { } why)
        {
            // A FIFO hung serve and SIGHUP for good; a link to /dev/zero read gigabytes (review 40).
            throw new InvalidOperationException($"configuration: {paths.ConfigFile} {why}");
        }

        try
        {
            File.OpenHandle(paths.ConfigFile).Dispose();
        }
        catch (UnauthorizedAccessException)
        {
            // .NET's "Access to the path is denied" said neither whose the file is nor the fix (review 56).
            // A directory that may not be searched hides the file's owner and mode: it is named (review 63).
            var what = FileOwner.Uid(paths.ConfigFile) is null
                ? $"its directory {paths.ConfigDirectory} is {FileOwner.Describe(paths.ConfigDirectory)}"
                : $"it is {FileOwner.Describe(paths.ConfigFile)}";
            throw new UnauthorizedAccessException(
                $"configuration: {paths.ConfigFile} cannot be read as {FileOwner.UserName(FileOwner.EffectiveUid)} ({what}): make it readable by the user mailman runs as (chown or chmod)");
        }
        catch (IOException)
        {
            // None (optional), or one that went since: the provider says what it finds.
        }

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
        RefuseOtherFileSections(configuration);
        CheckNode(configuration.GetSection(MailmanOptions.Section), typeof(MailmanOptions), Layers(configuration));
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
            throw new InvalidOperationException($"configuration: {ConversionError(e.Message)}", e);
        }

        RefuseHostUnderRelays(configuration, options);
        options.Pipeline.Handlers = OrderedList(configuration, "Mailman:Pipeline:Handlers");
        options.Moderation.Chain = OrderedList(configuration, "Mailman:Moderation:Chain");
        options.Validate();
        return options;
    }

    // The binder's "Failed to convert configuration value 'abc' at 'Mailman:Smtp:Port' to type
    // 'System.Int32'." said as the other settings' errors are (review 121).
    private static string ConversionError(string message)
    {
        var m = System.Text.RegularExpressions.Regex.Match(message, @"^Failed to convert configuration value '(?<value>.*)' at '(?<key>[^']*)' to type '(?<type>[^']*)'");
        if (!m.Success)
        {
            return message;
        }

        var kind = m.Groups["type"].Value switch
        {
            "System.Int32" or "System.Int64" => "a whole number",
            "System.Double" or "System.Decimal" => "a number",
            "System.Boolean" => "true or false",
            "System.TimeSpan" => "a duration (hh:mm:ss, or d.hh:mm:ss)",
            _ => "of the kind this setting takes",
        };
        return $"{m.Groups["key"].Value} \"{m.Groups["value"].Value}\" is not {kind}";
    }

    // With Relays set, Host and Port are not used: one given above the layer that sets Relays
    // (Mailman__Smtp__Host over a file with Relays) is an override that would do nothing
    // (review 86). In the layer of Relays or below (the shipped file's Host), they are left.
    private static void RefuseHostUnderRelays(IConfigurationRoot configuration, MailmanOptions options)
    {
        if (options.Smtp.Relays.Count == 0)
        {
            return;
        }

        // The layer of Relays is the highest that names a relay's Address (one that sets only
        // an entry's Weight over the file's relays does not replace them; review 87).
        var providers = configuration.Providers.ToList();
        var relays = providers.FindLastIndex(p => p.GetChildKeys([], "Mailman:Smtp:Relays").Any(i => p.TryGet($"Mailman:Smtp:Relays:{i}:Address", out _)));
        foreach (var name in (string[])["Host", "Port"])
        {
            if (providers.FindLastIndex(p => p.TryGet("Mailman:Smtp:" + name, out _)) > relays)
            {
                throw new InvalidOperationException($"configuration: Mailman:Smtp:{name} is set over a configuration whose Mailman:Smtp:Relays names the servers (the environment over config/mailman.json, say), where it would be ignored: override the relay itself (Mailman__Smtp__Relays__0__Address=host:port), or remove {name}");
            }
        }
    }

    // The top level of config/mailman.json holds Mailman and Logging: a typo (Mailmn) or the
    // settings without the Mailman wrapper ({"Smtp": ...}) would leave every default in force.
    private static void RefuseOtherFileSections(IConfigurationRoot configuration)
    {
        foreach (var provider in configuration.Providers.OfType<Microsoft.Extensions.Configuration.Json.JsonConfigurationProvider>())
        {
            if (provider.Source.Path is not { } name)
            {
                continue;
            }

            var path = provider.Source.FileProvider?.GetFileInfo(name).PhysicalPath ?? name;

            foreach (var key in provider.GetChildKeys([], null).Distinct(StringComparer.OrdinalIgnoreCase))
            {
                if (!key.Equals(MailmanOptions.Section, StringComparison.OrdinalIgnoreCase) && !key.Equals("Logging", StringComparison.OrdinalIgnoreCase))
                {
                    var inside = Array.Exists(typeof(MailmanOptions).GetProperties(), p => p.Name.Equals(key, StringComparison.OrdinalIgnoreCase))
                        ? $"; {key} goes inside \"{MailmanOptions.Section}\": {{ ... }}" : "";
                    throw new InvalidOperationException($"configuration: {path}: unknown section '{key}' at the top (the file holds \"{MailmanOptions.Section}\" and \"Logging\"{inside})");
                }
            }
        }
    }

    // The binder takes what fits its type and drops the rest without a word: a list or section
    // written as one value ("Relays": "mx:25", a relay as "mx:25" instead of {"Address": ...}),
    // a value written as a list (Mailman__Http__Url__0=...), and JSON null (a text setting null
    // reached the checks as no string at all; a number became 0). Each is refused by name.
    private static void CheckShape(IConfigurationSection section, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] Type type, IReadOnlyList<IConfigurationProvider> layers)
    {
        foreach (var child in section.GetChildren())
        {
            // An unknown key is left to the binder, which names it.
            if (Array.Find(type.GetProperties(), p => p.Name.Equals(child.Key, StringComparison.OrdinalIgnoreCase)) is { CanWrite: true } property)
            {
                CheckNode(child, property.PropertyType, layers);
            }
        }
    }

    // The layers an operator writes (the file, the environment, overrides): not the embedded defaults.
    private static List<IConfigurationProvider> Layers(IConfigurationRoot configuration) => configuration.Providers.Skip(1).ToList();

    // The merged view shows the lower layer's entries under a section or list that a higher layer
    // set to null, [], {} or "": "Chain": [] ran the whole default chain, "Smtp": null the default
    // relay, without a word (review 40). The layer that wrote it is asked. Where nothing lies
    // beneath ("Relays": [], as the shipped file has it), empty is what it says.
    // Only the highest layer that names the node counts: "Chain": [] in the file under a Chain
    // given whole in the environment is that Chain (review 41).
    private static bool EmptiedInALayer(IConfigurationSection node, IReadOnlyList<IConfigurationProvider> layers)
    {
        foreach (var layer in layers.Reverse())
        {
            var hasChildren = layer.GetChildKeys([], node.Path).Any();
            if (hasChildren)
            {
                return false;
            }

            if (layer.TryGet(node.Path, out var value))
            {
                return string.IsNullOrEmpty(value);
            }
        }

        return false;
    }

    // The types walked are the options classes, whose properties the attributes keep in a trimmed build.
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(MailmanOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(SmtpOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(RelayOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(DestinationOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(RetryOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(QueueOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(MetricsOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(ModerationOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(DnsOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(DmarcOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(BounceOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(PipelineOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(HttpOptions))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicProperties, typeof(LmtpOptions))]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "Only the options types above are walked; DynamicDependency keeps their properties.")]
    [UnconditionalSuppressMessage("Trimming", "IL2067", Justification = "As IL2072.")]
    private static void CheckNode(IConfigurationSection node, Type type, IReadOnlyList<IConfigurationProvider> layers)
    {
        var children = node.GetChildren().ToList();
        var env = $"{node.Path.Replace(":", "__", StringComparison.Ordinal)}";
        var element = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>) ? type.GetGenericArguments()[0]
            : type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>) ? type.GetGenericArguments()[1]
            : null;
        if (type == typeof(string) || type.IsValueType)
        {
            Refuse(children.Count > 0, $"{node.Path} is one value, not a list or a section");
            // null for a number that may be left unset (MaxConnections) is that: no limit.
            Refuse(node.Value is null && Nullable.GetUnderlyingType(type) is null,
                $"{node.Path} is null: give it a value (\"\" for none, where the README allows it), or remove it to keep the default");
        }
        else if (element is not null)
        {
            // [] is an empty value; any other value is one item where a list was meant (beside the
            // entries of a lower layer, it is still what the operator wrote).
            Refuse(node.Value is { Length: > 0 },
                type.GetGenericTypeDefinition() == typeof(List<>)
                    ? $"{node.Path} must be a list (JSON [ ... ], or {env}__0 in the environment), not the value '{node.Value}'"
                    : $"{node.Path} must be a section (JSON {{ ... }}, or {env}__NAME__... in the environment), not the value '{node.Value}'");
            Refuse(children.Count > 0 && EmptiedInALayer(node, layers), $"{node.Path} is null or empty, which keeps the default entries beneath it: list the entries to use, or remove it");

            // The binder drops an entry with a negative number (Relays__-1__Address): review 86,
            // a relay, a pacing domain or a DNS server that was never used, without a word; and
            // takes 01 or +1 as an entry beside 1 (review 87: a third relay where the second was
            // to be replaced). A number is written as 0, 1, 2 ...
            if (type.GetGenericTypeDefinition() == typeof(List<>)
                && children.Find(c => int.TryParse(c.Key, System.Globalization.NumberStyles.AllowLeadingSign | System.Globalization.NumberStyles.AllowLeadingWhite | System.Globalization.NumberStyles.AllowTrailingWhite, System.Globalization.CultureInfo.InvariantCulture, out var n)
                    && (n < 0 || c.Key != n.ToString(System.Globalization.CultureInfo.InvariantCulture))) is { } odd)
            {
                Refuse(true, $"{odd.Path}: a list's entries are numbered 0, 1, 2 ... ({env}__0), not '{odd.Key}'");
            }

            foreach (var item in children)
            {
                CheckNode(item, element, layers);
            }
        }
        else
        {
            Refuse(node.Value is { Length: > 0 }, type == typeof(RelayOptions)
                ? $"{node.Path} must be a section with Address (JSON {{ \"Address\": \"{node.Value}\" }}, or {env}__Address in the environment), not the value '{node.Value}'"
                : $"{node.Path} must be a section (JSON {{ ... }}), not the value '{node.Value}'");
            Refuse(children.Count > 0 && EmptiedInALayer(node, layers), $"{node.Path} is null or empty, which keeps the default settings beneath it: give the settings to change, or remove it");
            CheckShape(node, type, layers);
        }

        static void Refuse(bool bad, string message)
        {
            if (bad)
            {
                throw new InvalidOperationException("configuration: " + message);
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
    // that sets one. Its entries are numbered 0..n-1:
    // a gap (Chain__0 and Chain__2: one line of a drop-in deleted) ended the list there, and
    // every rule after it was dropped without a word (review 40); a blank entry is refused too.
    private static List<string> OrderedList(IConfigurationRoot configuration, string key)
    {
        foreach (var provider in configuration.Providers.Reverse())
        {
            var keys = provider.GetChildKeys([], key).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            if (keys.Count == 0)
            {
                continue;
            }

            static bool Index(string k) => int.TryParse(k, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _);
            var result = new List<string>();
            for (var i = 0; i < keys.Count; i++)
            {
                if (!provider.TryGet($"{key}:{i}", out var name))
                {
                    throw new InvalidOperationException(keys.TrueForAll(Index)
                        ? $"configuration: {key} has entries {string.Join(", ", keys.Order(StringComparer.Ordinal))} but no {i}: number them 0, 1, 2 ... without a gap (an entry after a gap would be dropped)"
                        : $"configuration: {key} must be a list (JSON [ ... ], or {key.Replace(":", "__", StringComparison.Ordinal)}__0 in the environment), not a section with '{keys.Find(k => !Index(k))}'");
                }

                result.Add(string.IsNullOrWhiteSpace(name)
                    ? throw new InvalidOperationException($"configuration: {key}:{i} is empty: name a handler or rule, or remove the entry")
                    : name.Trim());
            }

            return result;
        }

        return [];
    }
}
