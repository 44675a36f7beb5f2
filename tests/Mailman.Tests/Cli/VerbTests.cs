// The operator verbs, run as a real process against a temp instance.
using Mailman.TestSupport;

namespace Mailman.Tests.Cli;

public sealed class VerbTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    private ProcessResult Run(params string[] args) => MailmanProcess.Run(_instance.Home, args);

    [Fact]
    public void Lists_and_members_can_be_managed_from_the_command_line()
    {
        Assert.Equal(0, Run("lists", "create", "dev@example.org", "--display-name", "Dev Team", "--personalize", "none").ExitCode);
        Assert.Equal(0, Run("lists", "set", "dev@example.org", "subject_prefix", "[dev]").ExitCode);
        var file = Path.Combine(_instance.Home, "members.txt");
        File.WriteAllLines(file, ["ann@example.com", "Bob Smith <bob@example.com>", "# comment", ""]);
        var add = Run("members", "add", "dev@example.org", "carol@example.com", "--file", file);
        Assert.Equal(0, add.ExitCode);
        Assert.Contains("3 added", add.Stdout, StringComparison.Ordinal);
        Assert.Equal(0, Run("members", "remove", "dev@example.org", "carol@example.com").ExitCode);

        Assert.Equal(["ann@example.com", "Bob Smith <bob@example.com>"], Run("members", "list", "dev@example.org").Stdout.Trim().Split('\n'));
        var show = Run("lists", "show", "dev@example.org").Stdout;
        Assert.Contains("display_name: Dev Team", show, StringComparison.Ordinal);
        Assert.Contains("subject_prefix: [dev]", show, StringComparison.Ordinal);
        Assert.Contains("personalize: none", show, StringComparison.Ordinal);
        Assert.Contains("dev@example.org\tDev Team\t2 members", Run("lists", "list").Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("lists", "create", "../evil@example.org")]
    [InlineData("lists", "set", "dev@example.org", "personalize", "sometimes")]
    [InlineData("lists", "show", "nobody@example.org")]
    [InlineData("members", "add", "dev@example.org", "not-an-address")]
    public void Mistakes_print_one_line_and_exit_non_zero(params string[] args)
    {
        Run("lists", "create", "dev@example.org");
        var result = Run(args);
        Assert.NotEqual(0, result.ExitCode);
        var line = Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.StartsWith("mailman: ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Status_reports_every_queue_in_text_and_json()
    {
        Run("lists", "create", "dev@example.org");
        MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain());
        var text = Run("status").Stdout;
        Assert.Matches(@"in\s+1\s+0", text);
        var json = System.Text.Json.JsonDocument.Parse(Run("status", "--json").Stdout);
        var queues = json.RootElement.GetProperty("queues").EnumerateArray().ToDictionary(q => q.GetProperty("queue").GetString()!, q => q.GetProperty("entries").GetInt32());
        Assert.Equal(1, queues["in"]);
        Assert.Equal(0, queues["out"]);
        Assert.Contains("shunt", queues.Keys);
    }

    [Fact]
    public void A_second_daemon_on_the_same_instance_refuses_to_start()
    {
        using var held = Mailman.Instance.ServeLock.Acquire(_instance.Paths);
        var result = MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("another mailman serve", result.Stderr, StringComparison.Ordinal);
    }
}
