// A logger that keeps what it was told, rendered, for tests that check log lines.
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Mailman.Tests.Runners;

internal sealed class CapturingLogger<T> : ILogger<T>
{
    private readonly ConcurrentQueue<(LogLevel Level, string Text)> _lines;

    public CapturingLogger()
        : this(new ConcurrentQueue<(LogLevel, string)>())
    {
    }

    private CapturingLogger(ConcurrentQueue<(LogLevel, string)> lines) => _lines = lines;

    public IReadOnlyList<string> Lines => _lines.Select(l => l.Text).ToList();

    /// <summary>A logger for another category writing into the same lines.</summary>
    public CapturingLogger<TOther> For<TOther>() => new(_lines);

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        => _lines.Enqueue((logLevel, formatter(state, exception)));

    public void Clear() => _lines.Clear();
}
