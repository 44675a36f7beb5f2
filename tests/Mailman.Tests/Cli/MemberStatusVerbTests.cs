// The operator's side of bounce processing, run as a real process: members list --status,
// members show, enable and disable, and the status line for members disabled today.
using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Tests.Cli;

public sealed class MemberStatusVerbTests : IDisposable
{
    private const string List = "dev@example.org";
    private readonly TempInstance _instance = new();

    public MemberStatusVerbTests()
    {
        _instance.CreateList(List);
        _instance.AddMembers(List, [new Member("ann@example.com", "Ann"), new Member("bob@example.com", ""), new Member("cy@example.com", "")]);

        // Bob bounced three times and was disabled by bounces today.
        using var store = new ListStore(_instance.Paths.Database);
        var now = DateTimeOffset.UtcNow;
        store.RecordBounce(ListName.Parse(List), "bob@example.com", 5, now, disable: true);
        store.RecordBounceWarning(ListName.Parse(List), "bob@example.com", 1, now);

        // Cy reached the threshold on mailed reports: a probe waits for its bounce.
        var token = Mailman.Delivery.Verp.NewProbeToken();
        store.RecordProbe(ListName.Parse(List), "cy@example.com", 5, now, token);
        store.MarkProbeSent(ListName.Parse(List), "cy@example.com", token, now);
    }

    public void Dispose() => _instance.Dispose();

    private ProcessResult Run(params string[] args) => MailmanProcess.Run(_instance.Home, args);

    [Fact]
    public void What_members_list_writes_reads_back_with_add_file_whatever_the_names()
    {
        // Review 27: a display name with an address and a comma in it ("Bob <x@evil.test>, Carl")
        // was written unquoted and aborted the import of the whole list.
        _instance.AddMembers(List, [new Member("dan@example.com", "Bob <attacker@evil.test>, Carl"), new Member("eve@example.com", "Eve \"the\" (admin)"), new Member("fay@example.com", "Fäy Ünicode")]);
        var export = Path.Combine(_instance.Home, "export.txt");
        File.WriteAllText(export, Run("members", "list", List).Stdout);
        Assert.Equal(0, Run("lists", "create", "copy@example.org").ExitCode);
        var add = Run("members", "add", "copy@example.org", "--file", export, "--no-welcome");
        Assert.True(add.ExitCode == 0, add.Stderr);

        using var store = new ListStore(_instance.Paths.Database);
        var copied = store.MemberRecords(ListName.Parse("copy@example.org"), null).ToDictionary(m => m.Address, m => m.DisplayName);
        Assert.Equal(6, copied.Count);
        Assert.Equal("Bob <attacker@evil.test>, Carl", copied["dan@example.com"]);
        Assert.Equal("Eve \"the\" (admin)", copied["eve@example.com"]);
        Assert.Equal("Fäy Ünicode", copied["fay@example.com"]);
        Assert.Equal("", copied["bob@example.com"]);
    }

    [Fact]
    public void Members_list_filters_by_delivery_status_and_says_why_delivery_is_off()
    {
        Assert.Equal(["Ann <ann@example.com>", "bob@example.com\tdisabled: bounce", "cy@example.com"], Lines(Run("members", "list", List)));
        Assert.Equal(["Ann <ann@example.com>", "cy@example.com"], Lines(Run("members", "list", List, "--status", "enabled")));
        Assert.Equal(["bob@example.com\tdisabled: bounce"], Lines(Run("members", "list", List, "--status", "disabled")));
        var wrong = Run("members", "list", List, "--status", "sometimes");
        Assert.Equal(64, wrong.ExitCode);
        Assert.StartsWith("mailman: --status", wrong.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Members_show_gives_status_reason_score_last_bounce_and_warnings()
    {
        var show = Run("members", "show", List, "BOB@example.com");
        Assert.Equal(0, show.ExitCode);
        var fields = Fields(show);
        Assert.Equal("disabled", fields["delivery"]);
        Assert.Equal("bounce", fields["disabled_reason"]);
        Assert.Equal("5", fields["bounce_score"]);
        Assert.Equal("1", fields["warnings_sent"]);
        Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$", fields["last_bounce"]);
        Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$", fields["disabled_at"]);
        Assert.Equal("-", fields["probe_sent"]);
        var cy = Fields(Run("members", "show", List, "cy@example.com"));
        Assert.Equal(("enabled", "5"), (cy["delivery"], cy["bounce_score"]));
        Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$", cy["probe_sent"]);

        var nobody = Run("members", "show", List, "zed@example.com");
        Assert.Equal(67, nobody.ExitCode);
        Assert.Equal("mailman: zed@example.com is not a member of dev@example.org", nobody.Stderr.Trim());
    }

    [Fact]
    public void Enable_resets_the_score_and_disable_turns_delivery_off_naming_non_members()
    {
        var enable = Run("members", "enable", List, "bob@example.com");
        Assert.Equal(0, enable.ExitCode);
        Assert.Contains("1 enabled", enable.Stdout, StringComparison.Ordinal);
        var fields = Fields(Run("members", "show", List, "bob@example.com"));
        Assert.Equal(("enabled", "0", "0", "-"), (fields["delivery"], fields["bounce_score"], fields["warnings_sent"], fields["last_bounce"]));
        Assert.Equal(0, Run("members", "enable", List, "cy@example.com").ExitCode);
        var cy = Fields(Run("members", "show", List, "cy@example.com"));
        Assert.Equal(("0", "-"), (cy["bounce_score"], cy["probe_sent"]));

        var disable = Run("members", "disable", List, "ann@example.com", "zed@example.com");
        Assert.Equal(1, disable.ExitCode);
        Assert.Contains("mailman: zed@example.com is not a member of dev@example.org", disable.Stderr, StringComparison.Ordinal);
        Assert.Contains("1 disabled", disable.Stdout, StringComparison.Ordinal);
        Assert.Equal(["ann@example.com\tdisabled: moderator"], Lines(Run("members", "list", List, "--status", "disabled")).Select(l => l.Replace("Ann <ann@example.com>", "ann@example.com", StringComparison.Ordinal)));
    }

    [Fact]
    public void Status_counts_members_disabled_today_and_the_unrecognized_bounces()
    {
        var text = Run("status").Stdout;
        Assert.Contains("members disabled today: 1", text, StringComparison.Ordinal);
        Assert.Matches(@"unrecognized\s+0\s+0", text);
        Assert.Matches(@"bounces\s+0\s+0", text);
        var json = System.Text.Json.JsonDocument.Parse(Run("status", "--json").Stdout);
        Assert.Equal(1, json.RootElement.GetProperty("disabledToday").GetInt64());
    }

    [Fact]
    public void Lists_set_takes_the_bounce_settings_by_Mailmans_names()
    {
        foreach (var (key, value) in new[]
        {
            ("bounce_score_threshold", "2.5"), ("bounce_info_stale_after", "10d"), ("bounce_you_are_disabled_warnings", "1"),
            ("bounce_you_are_disabled_warnings_interval", "3"), ("bounce_notify_owner_on_disable", "false"), ("bounce_notify_owner_on_removal", "no"),
            ("process_bounces", "off"), ("verp_probes", "false"), ("verp_probe_wait", "2d"),
        })
        {
            var set = Run("lists", "set", List, key, value);
            Assert.True(set.ExitCode == 0, set.Stderr);
        }

        var show = Run("lists", "show", List).Stdout;
        foreach (var line in new[]
        {
            "bounce_score_threshold: 2.5", "bounce_info_stale_after: 10d", "bounce_you_are_disabled_warnings: 1",
            "bounce_you_are_disabled_warnings_interval: 3d", "bounce_notify_owner_on_disable: false", "bounce_notify_owner_on_removal: false", "process_bounces: false",
            "verp_probes: false", "verp_probe_wait: 2d",
        })
        {
            Assert.Contains(line, show, StringComparison.Ordinal);
        }

        Assert.NotEqual(0, Run("lists", "set", List, "bounce_score_threshold", "-1").ExitCode);
        Assert.NotEqual(0, Run("lists", "set", List, "bounce_info_stale_after", "a week").ExitCode);
        Assert.NotEqual(0, Run("lists", "set", List, "verp_probe_wait", "0").ExitCode);
    }

    // `members show`'s `key: value` lines.
    private static Dictionary<string, string> Fields(ProcessResult result) => Lines(result).Select(l => l.Split(": ", 2)).ToDictionary(p => p[0], p => p[1]);

    private static string[] Lines(ProcessResult result)
    {
        Assert.True(result.ExitCode == 0, result.Stderr);
        return result.Stdout.Trim().Split('\n');
    }
}
