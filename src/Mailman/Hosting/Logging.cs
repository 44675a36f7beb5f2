// Serilog: console for systemd's journal (plain, no colour codes unless a terminal) and a daily
// rolling file under logs/, optionally compact JSON for log shippers.
using Mailman.Instance;
using Microsoft.Extensions.Configuration;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;
using Serilog.Sinks.SystemConsole.Themes;

namespace Mailman.Hosting;

public static class Logging
{
    private const string Template = "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} [{Level:u3}] {SourceContext:l}: {Message:lj}{NewLine}{Exception}";

    public static Serilog.ILogger Create(IConfiguration configuration, InstancePaths paths)
    {
        var section = configuration.GetSection("Logging");
        var level = Enum.TryParse<LogEventLevel>(section["MinimumLevel"], true, out var l) ? l : LogEventLevel.Information;
        var compact = section.GetValue("CompactJson", false);
        var config = new LoggerConfiguration()
            .MinimumLevel.Is(level)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .Enrich.FromLogContext();
        if (section.GetValue("Console", true))
        {
            if (compact)
            {
                config.WriteTo.Console(new CompactJsonFormatter(), standardErrorFromLevel: LogEventLevel.Verbose);
            }
            else
            {
                var theme = Console.IsErrorRedirected ? ConsoleTheme.None : AnsiConsoleTheme.Code;
                config.WriteTo.Console(outputTemplate: Template, theme: theme, standardErrorFromLevel: LogEventLevel.Verbose, formatProvider: System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        if (section.GetValue("File", true))
        {
            Directory.CreateDirectory(paths.LogsDirectory);
            var file = Path.Combine(paths.LogsDirectory, "mailman-.log");
            if (compact)
            {
                config.WriteTo.File(new CompactJsonFormatter(), file, rollingInterval: RollingInterval.Day, retainedFileCountLimit: 30);
            }
            else
            {
                config.WriteTo.File(file, outputTemplate: Template, rollingInterval: RollingInterval.Day, retainedFileCountLimit: 30, formatProvider: System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return config.CreateLogger();
    }
}
