// Serilog: console for systemd's journal (plain, no colour codes unless a terminal) and a daily
// rolling file under logs/, optionally compact JSON for log shippers.
using Mailman.Instance;
using Microsoft.Extensions.Configuration;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;
using Serilog.Formatting.Display;
using Serilog.Sinks.SystemConsole.Themes;

namespace Mailman.Hosting;

public static class Logging
{
    // ISO 8601 with the offset (2026-12-01T19:30:00.123+00:00): unambiguous across time zones
    // and daylight saving, sortable. The messages carry the error's text ({Error}); the stack
    // trace goes to error-DATE.log only, where a developer looks, never into the operator's lines.
    private const string Template = "{Timestamp:yyyy-MM-ddTHH:mm:ss.fffzzz} [{Level:u3}] {SourceContext:l}: {Message:lj}{NewLine}";

    private const string ErrorTemplate = "{Timestamp:yyyy-MM-ddTHH:mm:ss.fffzzz} [{Level:u3}] {SourceContext:l}: {Message:lj}{NewLine}{Exception}";

    // Under systemd (JOURNAL_STREAM set) journald reads a "<N>" syslog priority prefix per line
    // and adds its own timestamp.
    private const string JournalTemplate = "<{SyslogPriority}>[{Level:u3}] {SourceContext:l}: {Message:lj}{NewLine}";

    // Serilog's default stops writing a file at 1 GiB until the next day, silently (review 37:
    // lines after a flood were lost). A full file rolls to NAME-DATE_001.log instead; the 30
    // files kept per log then bound its disk use.
    private const long FileSizeLimit = 256L * 1024 * 1024;

    // Every log file is appended to by whole lines, O_APPEND (AppendFileSink): `inject` writes
    // the post log and mailman-DATE.log while the daemon does (review 100: Serilog's file sink,
    // writing at its own offset, lost 59 of 60 of the daemon's lines to an inject's and tore
    // others). Named NAME-DATE.log, rolled daily and at FileSizeLimit, 30 kept, as before.
    private static AppendFileSink AppendSink(string directory, string prefix, bool compact, string template = Template)
    {
        Serilog.Formatting.ITextFormatter formatter = compact
            ? template == ErrorTemplate ? new CompactJsonFormatter() : new WithoutException(new CompactJsonFormatter())
            : new MessageTemplateTextFormatter(template, System.Globalization.CultureInfo.InvariantCulture);
        return new(directory, prefix, formatter, 30, FileSizeLimit);
    }

    /// <summary>The Logging section's four settings; nothing else is read from it.</summary>
    public readonly record struct Settings(LogEventLevel MinimumLevel, bool Console, bool File, bool CompactJson);

    private static readonly string[] SettingNames = ["MinimumLevel", "Console", "File", "CompactJson"];

    /// <summary>
    /// The Logging section, checked as the Mailman section is: a key that is not one of its four
    /// settings (a typo, or Microsoft's LogLevel, which nothing reads) and a value not of its kind
    /// are refused with one line, not run with the default the operator meant to change. An unset
    /// or empty value is the default.
    /// </summary>
    /// <exception cref="InvalidOperationException">A key or value is wrong (the message names it).</exception>
    public static Settings Read(IConfiguration configuration)
    {
        var section = configuration.GetSection("Logging");
        if (section.GetChildren().FirstOrDefault(c => !SettingNames.Contains(c.Key, StringComparer.OrdinalIgnoreCase)) is { } unknown)
        {
            var hint = unknown.Key.Equals("LogLevel", StringComparison.OrdinalIgnoreCase) ? "; Logging:MinimumLevel is the one level, Microsoft's LogLevel is not read" : "";
            throw new InvalidOperationException($"configuration: unknown setting '{unknown.Key}' in Logging (misspelt? the settings are {string.Join(", ", SettingNames)}{hint})");
        }

        return new Settings(MinimumLevel(section), Switch(section, "Console", true), Switch(section, "File", true), Switch(section, "CompactJson", false));
    }

    private static bool Switch(IConfigurationSection section, string key, bool unset)
    {
        var value = section.GetSection(key);
        if (value.GetChildren().Any())
        {
            throw new InvalidOperationException($"configuration: Logging:{key} is a section: give it true or false");
        }

        return string.IsNullOrWhiteSpace(value.Value) ? unset
            : bool.TryParse(value.Value.Trim(), out var on) ? on
            : throw new InvalidOperationException($"configuration: Logging:{key} \"{value.Value}\" is not true or false");
    }

    // Logging:MinimumLevel, Information when unset; a value that names no level is refused, not read as the default.
    private static LogEventLevel MinimumLevel(IConfigurationSection section)
    {
        if (section.GetSection("MinimumLevel").GetChildren().Any())
        {
            throw new InvalidOperationException("configuration: Logging:MinimumLevel is a section: give it one level's name");
        }

        var value = section["MinimumLevel"];
        if (string.IsNullOrWhiteSpace(value))
        {
            return LogEventLevel.Information;
        }

        // By name only: Enum.TryParse would also take "7" or "Debug, Error".
        var names = Enum.GetNames<LogEventLevel>();
        return Array.Find(names, n => n.Equals(value.Trim(), StringComparison.OrdinalIgnoreCase)) is { } name
            ? Enum.Parse<LogEventLevel>(name)
            : throw new InvalidOperationException($"configuration: Logging:MinimumLevel \"{value}\" is not one of {string.Join(", ", names)}");
    }

    public static Serilog.ILogger Create(IConfiguration configuration, InstancePaths paths) => Create(configuration, paths, out _);

    /// <summary>
    /// The logger, and its files as one sink that SIGHUP reopens (<see cref="LogFiles.Reopen"/>):
    /// a log removed or renamed under the running daemon is made again at once, not at midnight.
    /// </summary>
    public static Serilog.ILogger Create(IConfiguration configuration, InstancePaths paths, out LogFiles files)
    {
        var settings = Read(configuration);
        var compact = settings.CompactJson;
        var config = new LoggerConfiguration()
            .MinimumLevel.Is(settings.MinimumLevel)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .Enrich.FromLogContext()
            .Enrich.With<SyslogPriorityEnricher>()
            .Enrich.With<AreaEnricher>()
            .Enrich.With<ControlCharacterEscaper>();
        if (settings.Console)
        {
            if (compact)
            {
                config.WriteTo.Console(new WithoutException(new CompactJsonFormatter()), standardErrorFromLevel: LogEventLevel.Verbose);
            }
            else
            {
                var journal = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("JOURNAL_STREAM"));
                var theme = Console.IsErrorRedirected || journal ? ConsoleTheme.None : AnsiConsoleTheme.Code;
                config.WriteTo.Console(outputTemplate: journal ? JournalTemplate : Template, theme: theme, standardErrorFromLevel: LogEventLevel.Verbose, formatProvider: System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        files = LogFiles.None;
        if (settings.File)
        {
            files = new LogFiles(() => Files(paths, compact));
            config.WriteTo.Sink(files);
        }

        return config.CreateLogger();
    }

    // Everything in mailman-DATE.log; and, as Mailman does, one file per area
    // (post, smtp, bounce, qrunner, subscribe, vette) plus error-DATE.log for errors from any area.
    // vette is appended to by the `held` verbs too, the post log by `inject` (AppendSink).
    // Levels are the outer logger's: this one takes what it is given.
    private static Serilog.Core.Logger Files(InstancePaths paths, bool compact)
    {
        Directory.CreateDirectory(paths.LogsDirectory);
        var config = new LoggerConfiguration().MinimumLevel.Verbose();
        config.WriteTo.Sink(AppendSink(paths.LogsDirectory, "mailman-", compact));
        foreach (var area in AreaEnricher.Areas)
        {
            config.WriteTo.Logger(sub => sub.Filter.ByIncludingOnly(e => AreaEnricher.Is(e, area)).WriteTo.Sink(AppendSink(paths.LogsDirectory, area + "-", compact)));
        }

        config.WriteTo.Logger(sub => sub.Filter.ByIncludingOnly(e => e.Level >= LogEventLevel.Error).WriteTo.Sink(AppendSink(paths.LogsDirectory, "error-", compact, ErrorTemplate)));
        return config.CreateLogger();
    }

    /// <summary>
    /// Why the log files cannot be written now (logs/ read-only, full, another user's), or null;
    /// null too when Logging:File is off. The file sinks drop what they cannot write without a
    /// word (review 42: serve on a read-only logs/ kept no log and said nothing).
    /// </summary>
    public static string? WhyUnwritable(IConfiguration configuration, InstancePaths paths)
    {
        if (!Read(configuration).File)
        {
            return null;
        }

        try
        {
            Directory.CreateDirectory(paths.LogsDirectory);
            using var probe = new FileStream(Path.Combine(paths.LogsDirectory, $".probe-{Environment.ProcessId}"), FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
            probe.WriteByte((byte)'\n');
            probe.Flush(flushToDisk: false);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return InstancePaths.WhyNoDirectory(paths.LogsDirectory) ?? e.Message;
        }
    }

    /// <summary>
    /// The logger of an operator verb that acts on held posts: its vette lines go to the same
    /// vette-DATE.log as the daemon's (safely, while the daemon runs); nothing else is logged.
    /// </summary>
    /// <param name="vette">The vette file's sink (null without log files): what it could not write, the verb says.</param>
    internal static Serilog.Core.Logger CreateForVerb(IConfiguration configuration, InstancePaths paths, out AppendFileSink? vette)
    {
        var settings = Read(configuration);
        var config = new LoggerConfiguration().MinimumLevel.Is(settings.MinimumLevel).Enrich.With<AreaEnricher>().Enrich.With<ControlCharacterEscaper>();
        vette = null;
        if (settings.File)
        {
            var sink = vette = AppendSink(paths.LogsDirectory, AreaEnricher.Vette + "-", settings.CompactJson);
            config.WriteTo.Logger(sub => sub.Filter.ByIncludingOnly(e => AreaEnricher.Is(e, AreaEnricher.Vette))
                .WriteTo.Sink(sink));
        }

        return config.CreateLogger();
    }
}

/// <summary>
/// The log files as one sink: <see cref="Reopen"/> closes them and opens them again by name (a
/// file removed or renamed by an operator or logrotate is made anew), for SIGHUP.
/// </summary>
public sealed class LogFiles : Serilog.Core.ILogEventSink, IDisposable
{
    /// <summary>No files (Logging:File false): reopening does nothing.</summary>
    public static readonly LogFiles None = new(null);

    private readonly Func<Serilog.Core.Logger>? _open;

    // Writers share it; a reopening takes it alone, so no line is written to files being closed
    // (review 38: a SIGHUP storm lost and tore lines in mailman-DATE.log).
    private readonly ReaderWriterLockSlim _gate = new();
    private Serilog.Core.Logger? _current;

    internal LogFiles(Func<Serilog.Core.Logger>? open)
    {
        _open = open;
        try
        {
            _current = open?.Invoke();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // logs/ a file or a link to nothing (review 86: inject deferred every post, serve
            // exited 73): no files until a SIGHUP opens them; the start says why (WhyUnwritable).
            _current = null;
        }
    }

    public void Emit(LogEvent logEvent)
    {
        _gate.EnterReadLock();
        try
        {
            _current?.Write(logEvent);
        }
        finally
        {
            _gate.ExitReadLock();
        }
    }

    /// <summary>
    /// Opens the files anew by name and closes the old ones (every line written so far is in
    /// them). If the new ones cannot be opened, the old stay in use and this throws.
    /// </summary>
    public void Reopen()
    {
        if (_open is null)
        {
            return;
        }

        _gate.EnterWriteLock();
        try
        {
            var fresh = _open();
            var old = _current;
            _current = fresh;
            Close(old);
        }
        finally
        {
            _gate.ExitWriteLock();
        }
    }

    public void Dispose()
    {
        _gate.EnterWriteLock();
        try
        {
            Close(_current);
            _current = null;
        }
        finally
        {
            _gate.ExitWriteLock();
        }
    }

    // Closing flushes what the files still buffer: on a full disk that fails, and a clean stop
    // exited 73 for it (review 87). Those lines are lost as every other line there was; the
    // console and the journal have them.
    private static void Close(Serilog.Core.Logger? files)
    {
        try
        {
            files?.Dispose();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>
/// Compact JSON for the operator's files and the console: the event without its exception (the
/// message carries the error's text; the stack trace goes to error-DATE.log only, as in the
/// plain-text templates).
/// </summary>
internal sealed class WithoutException(Serilog.Formatting.ITextFormatter inner) : Serilog.Formatting.ITextFormatter
{
    public void Format(LogEvent logEvent, TextWriter output)
    {
        if (logEvent.Exception is null)
        {
            inner.Format(logEvent, output);
            return;
        }

        var bare = new LogEvent(logEvent.Timestamp, logEvent.Level, null, logEvent.MessageTemplate,
            logEvent.Properties.Select(p => new LogEventProperty(p.Key, p.Value)), logEvent.TraceId ?? default, logEvent.SpanId ?? default);
        inner.Format(bare, output);
    }
}

/// <summary>
/// One event, one line: CR, LF and the other control characters in string values (an address, a
/// subject, a server's reply: whatever a sender controls) are written escaped (\n, \u001b), so
/// no value can start a forged line of its own; and one bounded line: a value longer than
/// <see cref="MaxValueLength"/> characters is cut there and says how long it was (review 140: a
/// bounce to a VERP address of 5,000 characters wrote a line of 10,261, the address twice).
/// </summary>
internal sealed class ControlCharacterEscaper : Serilog.Core.ILogEventEnricher
{
    /// <summary>The longest string value written whole.</summary>
    public const int MaxValueLength = 1000;

    public void Enrich(LogEvent logEvent, Serilog.Core.ILogEventPropertyFactory propertyFactory)
    {
        List<LogEventProperty>? escaped = null;
        foreach (var (name, value) in logEvent.Properties)
        {
            if (value is ScalarValue { Value: string s } && (s.Length > MaxValueLength || s.AsSpan().IndexOfAny(Escaped) >= 0))
            {
                (escaped ??= []).Add(new LogEventProperty(name, new ScalarValue(Bounded(Escape(s), s.Length))));
            }
        }

        foreach (var p in escaped ?? [])
        {
            logEvent.AddOrUpdateProperty(p);
        }
    }

    // C0 controls, DEL, C1 controls, and the bidirectional formatting characters (U+202A-U+202E,
    // U+2066-U+2069, U+200E/U+200F, U+061C), with which a value could make the rest of its line
    // read in another order on a terminal (review 37: U+202E passed unescaped).
    private static readonly System.Buffers.SearchValues<char> Escaped = System.Buffers.SearchValues.Create(
        "\0\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"
        + "\u007f\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008a\u008b\u008c\u008d\u008e\u008f\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009a\u009b\u009c\u009d\u009e\u009f"
        + "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069");

    // The escaped value, cut at MaxValueLength characters (review 142: cut before escaping, a
    // value of control characters still made a line of 6,000), never inside an escape or a
    // surrogate pair.
    private static string Bounded(string escaped, int length)
    {
        if (escaped.Length <= MaxValueLength)
        {
            return escaped;
        }

        var cut = MaxValueLength;
        var backslash = escaped.LastIndexOf('\\', cut - 1, Math.Min(cut, 6));
        if (backslash >= 0 && backslash + (escaped[backslash + 1] == 'u' ? 6 : 2) > cut)
        {
            cut = backslash;
        }

        if (char.IsHighSurrogate(escaped[cut - 1]))
        {
            cut--;
        }

        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{escaped.AsSpan(0, cut)}... ({length:N0} characters)");
    }

    internal static string Escape(string s)
    {
        var b = new System.Text.StringBuilder(s.Length + 8);
        foreach (var c in s)
        {
            _ = c switch
            {
                '\n' => b.Append("\\n"),
                '\r' => b.Append("\\r"),
                '\t' => b.Append('\t'),
                < ' ' or '\u007f' or (>= '\u0080' and <= '\u009f') or '\u061c' or '\u200e' or '\u200f' or (>= '\u202a' and <= '\u202e') or (>= '\u2066' and <= '\u2069')
                    => b.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
                _ => b.Append(c),
            };
        }

        return b.ToString();
    }
}

/// <summary>Adds Area: which of Mailman's log files an event belongs in.</summary>
internal sealed class AreaEnricher : Serilog.Core.ILogEventEnricher
{
    public const string Vette = "vette";

    public static readonly string[] Areas = ["post", "smtp", "bounce", "qrunner", "subscribe", Vette];

    public static bool Is(LogEvent e, string area)
        => e.Properties.TryGetValue("Area", out var value) && value is ScalarValue { Value: string s } && s == area;

    public void Enrich(LogEvent logEvent, Serilog.Core.ILogEventPropertyFactory propertyFactory)
    {
        var source = logEvent.Properties.TryGetValue("SourceContext", out var v) && v is ScalarValue { Value: string s } ? s : "";
        // A runner's own start and stop ("{Runner} started ...") are the queue machinery's, whatever queue it runs.
        var text = logEvent.MessageTemplate.Text;
        var area = text.StartsWith("{Runner} ", StringComparison.Ordinal) ? "qrunner"
            : text.StartsWith("Bounce", StringComparison.Ordinal)
                || source.StartsWith("Mailman.Bounces", StringComparison.Ordinal) || source.EndsWith("BounceRunner", StringComparison.Ordinal) ? "bounce"
            : source.StartsWith("Mailman.Moderation", StringComparison.Ordinal) ? Vette
            : source.EndsWith("IncomingRunner", StringComparison.Ordinal) || source.EndsWith("PipelineRunner", StringComparison.Ordinal)
                || source.StartsWith("Mailman.Dmarc", StringComparison.Ordinal) ? "post"
            : source.EndsWith("OutgoingRunner", StringComparison.Ordinal) || source.Contains(".Delivery", StringComparison.Ordinal) ? "smtp"
            : source.EndsWith("RequestRunner", StringComparison.Ordinal) || source.StartsWith("Mailman.Requests", StringComparison.Ordinal)
                || source.StartsWith("Mailman.Http", StringComparison.Ordinal) ? "subscribe"
            : "qrunner";
        logEvent.AddPropertyIfAbsent(propertyFactory.CreateProperty("Area", area));
    }
}

/// <summary>Adds SyslogPriority (RFC 5424 severity) for journald's line prefix.</summary>
internal sealed class SyslogPriorityEnricher : Serilog.Core.ILogEventEnricher
{
    public void Enrich(LogEvent logEvent, Serilog.Core.ILogEventPropertyFactory propertyFactory)
    {
        var priority = logEvent.Level switch
        {
            LogEventLevel.Fatal => 2,
            LogEventLevel.Error => 3,
            LogEventLevel.Warning => 4,
            LogEventLevel.Information => 6,
            _ => 7,
        };
        logEvent.AddPropertyIfAbsent(propertyFactory.CreateProperty("SyslogPriority", priority));
    }
}
