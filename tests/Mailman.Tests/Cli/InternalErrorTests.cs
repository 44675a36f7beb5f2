// A bug in a verb (an exception no verb expects): the user gets one line and EX_SOFTWARE (70),
// the stack trace goes to the instance's error log, never to the terminal.
using System.CommandLine;
using Mailman.Cli;
using Mailman.TestSupport;

namespace Mailman.Tests.Cli;

[Collection("console")]
public sealed class InternalErrorTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void An_unexpected_exception_is_one_line_and_exit_70_with_the_stack_trace_in_the_error_log()
    {
        _instance.CreateList("dev@example.org");
        var (code, stderr) = Guarded(Explode, ExitCodes.Config);

        Assert.Equal(ExitCodes.Software, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("mailman: internal error: KeyNotFoundException: the bug", line, StringComparison.Ordinal);
        Assert.Contains("error-DATE.log", line, StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", line, StringComparison.Ordinal);

        var log = string.Concat(Directory.GetFiles(_instance.Paths.LogsDirectory, "error-*.log").Select(File.ReadAllText));
        Assert.Contains("the bug", log, StringComparison.Ordinal);
        Assert.Contains(nameof(Explode), log, StringComparison.Ordinal);
    }

    // Postfix bounces a 70 or a 73 (5.3.0, 5.2.0): inject answers 75 for every failure that is
    // not the message's, so the MTA keeps the post (review 102: an assembly not opened under a
    // low open-files limit).
    [Theory]
    [InlineData("bug")]
    [InlineData("io")]
    [InlineData("emfile")]
    [InlineData("assembly")]
    public void Injects_failures_that_are_not_the_messages_are_75(string kind)
    {
        _instance.CreateList("dev@example.org");
        var (code, stderr) = Guarded(() => kind switch
        {
            "bug" => Explode(),
            "io" => throw new IOException("Input/output error on the NFS mount"),
            "emfile" => throw new IOException("Too many open files", 24),
            _ => throw new FileNotFoundException("Could not load file or assembly 'Serilog'", "Serilog, Version=4.0.0.0"),
        }, ExitCodes.TempFail);

        Assert.Equal(ExitCodes.TempFail, code);
        Assert.StartsWith("mailman: ", stderr, StringComparison.Ordinal);
    }

    private static int Explode() => throw new KeyNotFoundException("the bug");

    // A verb's action run as MailmanCli runs it, on this instance: its exit code and stderr.
    private (int Code, string Stderr) Guarded(Func<int> action, int configErrorCode)
    {
        var root = new RootCommand { Options = { MailmanCli.Home } };
        var parse = root.Parse(["--home", _instance.Home]);
        var stderr = new StringWriter();
        var saved = Console.Error;
        try
        {
            Console.SetError(stderr);
            return (MailmanCli.Guard(parse, _ => action(), configErrorCode: configErrorCode), stderr.ToString());
        }
        finally
        {
            Console.SetError(saved);
        }
    }
}
