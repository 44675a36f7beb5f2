// `mailman inject` as Postfix runs it: a real process, the message on stdin, sysexits codes.
using System.Text;
using Mailman.Cli;
using Mailman.Queues;
using Mailman.TestSupport;

namespace Mailman.Tests.Cli;

public sealed class InjectTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public InjectTests() => _instance.CreateList("dev@example.org");

    public void Dispose() => _instance.Dispose();

    private ProcessResult Inject(string list, byte[] stdin, params string[] extra)
        => MailmanProcess.Run(_instance.Home, ["inject", list, .. extra], stdin);

    // Review 40: inject made a new, empty database and refused the post as to no such list (67: Postfix bounced it).
    [Fact]
    public void A_database_that_went_away_is_not_made_anew_by_inject_which_exits_75()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var file in Directory.GetFiles(_instance.Paths.VarDirectory, "mailman.db*"))
        {
            File.Delete(file);
        }

        var result = Inject("dev@example.org", Posts.Plain());
        Assert.True(result.ExitCode == ExitCodes.TempFail, result.Stderr);
        Assert.Contains($"the list database {_instance.Paths.Database} does not exist", Assert.Single(result.Stderr.Trim().Split('\n')), StringComparison.Ordinal);
        Assert.False(File.Exists(_instance.Paths.Database));
        Assert.Equal(0, _instance.Count(QueueSet.In));
    }

    [Fact]
    public void A_message_is_on_disk_in_the_in_queue_when_inject_exits_0()
    {
        var raw = Posts.Plain();
        var result = Inject("dev@example.org", raw, "--sender", "poster@example.com");
        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        var file = Assert.Single(Directory.GetFiles(_instance.QueueDir("in"), "*.msg"));
        var bytes = File.ReadAllBytes(file);
        Assert.True(bytes.AsSpan().IndexOf(raw) > 0, "the raw message bytes are kept exactly as received");
        Assert.Contains("\"Sender\":\"poster@example.com\"", Encoding.UTF8.GetString(bytes), StringComparison.Ordinal);
    }

    // Review 39: started with descriptor 0 closed, inject read the runtime's own pipe and waited forever.
    [Fact]
    public async Task Closed_standard_input_exits_66_at_once_and_a_pipe_is_still_read()
    {
        var inner = MailmanProcess.StartInfo(_instance.Home, ["inject", "dev@example.org"]);
        var psi = new System.Diagnostics.ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-c", "exec \"$@\" <&-", "sh", inner.FileName }.Concat(inner.ArgumentList))
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in inner.Environment)
        {
            psi.Environment[k] = v;
        }

        using var process = System.Diagnostics.Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(1)), "inject with standard input closed did not exit");
        Assert.Equal(ExitCodes.NoInput, process.ExitCode);
        Assert.Equal("mailman: standard input is closed: give the message on standard input or with --file", (await stderr).Trim());
        Assert.False(Directory.Exists(_instance.QueueDir("in")) && Directory.GetFiles(_instance.QueueDir("in")).Length > 0);

        Assert.Equal(ExitCodes.Ok, Inject("dev@example.org", Posts.Plain()).ExitCode);
        Assert.Single(Directory.GetFiles(_instance.QueueDir("in"), "*.msg"));
    }

    // The day-one review: a sender or an address with a line break wrote a forged line of its
    // own into the logs; a sender starting with '-' was taken for an option (64: Postfix bounced).
    [Fact]
    public void Control_characters_in_the_sender_or_address_are_refused_and_a_dash_sender_is_an_address()
    {
        var forged = Inject("dev@example.org", Posts.Plain(), "--sender", "evil@x.y\n2026-12-01T00:00:00.000+00:00 [INF] FAKE LINE");
        Assert.Equal(ExitCodes.Usage, forged.ExitCode);
        var address = Inject("dev-bounces+a\nFAKE=b.c@example.org", Posts.Plain());
        Assert.Equal(ExitCodes.NoUser, address.ExitCode);

        // Review 95: a 100 KB sender was queued, and its held post's notice broke the relay's
        // connection: longer than an SMTP path, it is refused as LMTP refuses it.
        var longest = Inject("dev@example.org", Posts.Plain(), "--sender", new string('a', 249) + "@b.c");
        Assert.True(longest.ExitCode == ExitCodes.Ok, longest.Stderr);
        var huge = Inject("dev@example.org", Posts.Plain(), "--sender", new string('a', 100_000) + "@b.c");
        Assert.Equal(ExitCodes.Usage, huge.ExitCode);
        Assert.Contains("--sender is 100,004 characters, over the 254 an SMTP path holds", huge.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, _instance.Count("in"));
        File.Delete(Assert.Single(Directory.GetFiles(_instance.QueueDir("in"), "*.msg")));

        var dash = MailmanProcess.Run(_instance.Home, ["inject", "--sender=-oops@example.com", "--", "dev@example.org"], Posts.Plain());
        Assert.True(dash.ExitCode == ExitCodes.Ok, dash.Stderr);
        Assert.Contains("\"Sender\":\"-oops@example.com\"", File.ReadAllText(Assert.Single(Directory.GetFiles(_instance.QueueDir("in"), "*.msg"))), StringComparison.Ordinal);
    }

    [Fact]
    public void A_leading_From_line_is_dropped_and_with_Return_Path_gives_the_sender_when_none_is_given()
    {
        var raw = Posts.Plain();
        var piped = Encoding.ASCII.GetBytes("From bounce@example.com  Tue Dec  1 19:00:00 2026\nReturn-Path: <poster@example.com>\n").Concat(raw).ToArray();
        Assert.Equal(ExitCodes.Ok, Inject("dev@example.org", piped).ExitCode);
        var text = Encoding.UTF8.GetString(File.ReadAllBytes(Assert.Single(Directory.GetFiles(_instance.QueueDir("in"), "*.msg"))));
        Assert.Contains("\"Sender\":\"poster@example.com\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain("From bounce@example.com", text, StringComparison.Ordinal);
        Assert.Contains("Return-Path: <poster@example.com>\n" + Encoding.UTF8.GetString(raw), text, StringComparison.Ordinal);
    }

    // Postfix's flag R writes Return-Path: <MAILER-DAEMON> for the null sender (a bounce).
    [Fact]
    public void A_Return_Path_of_MAILER_DAEMON_is_the_null_sender()
    {
        var piped = Encoding.ASCII.GetBytes("Return-Path: <MAILER-DAEMON>\n").Concat(Posts.Plain()).ToArray();
        Assert.Equal(ExitCodes.Ok, Inject("dev@example.org", piped).ExitCode);
        var text = Encoding.UTF8.GetString(File.ReadAllBytes(Assert.Single(Directory.GetFiles(_instance.QueueDir("in"), "*.msg"))));
        Assert.Contains("\"Sender\":\"\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public void An_explicit_sender_wins_over_the_From_line()
    {
        var piped = Encoding.ASCII.GetBytes("From other@example.com Tue Dec  1 19:00:00 2026\n").Concat(Posts.Plain()).ToArray();
        Assert.Equal(ExitCodes.Ok, Inject("dev@example.org", piped, "--sender", "poster@example.com").ExitCode);
        var text = Encoding.UTF8.GetString(File.ReadAllBytes(Assert.Single(Directory.GetFiles(_instance.QueueDir("in"), "*.msg"))));
        Assert.Contains("\"Sender\":\"poster@example.com\"", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("nobody@example.org", ExitCodes.NoUser)]
    [InlineData("../../etc@example.org", ExitCodes.NoUser)]
    [InlineData("dev list@example.org", ExitCodes.NoUser)]
    public void Unknown_or_unsafe_lists_exit_67(string list, int code)
    {
        var result = Inject(list, Posts.Plain());
        Assert.Equal(code, result.ExitCode);
        Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.Equal(0, _instance.Count("in"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n  \n")]
    [InlineData("\0\u0001\u0002 binary garbage \u00ff")]
    public void Empty_input_or_something_that_is_not_a_message_exits_65(string stdin)
    {
        var result = Inject("dev@example.org", Encoding.Latin1.GetBytes(stdin));
        Assert.Equal(ExitCodes.DataError, result.ExitCode);
        Assert.StartsWith("mailman: ", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, _instance.Count("in"));
    }

    [Fact]
    public void A_header_block_over_the_limits_exits_65_and_queues_nothing()
    {
        var fields = string.Concat(Enumerable.Range(0, Intake.MaxHeaderFields + 1).Select(i => $"X-F{i}: x\n"));
        var result = Inject("dev@example.org", Encoding.ASCII.GetBytes("From: a@example.com\n" + fields + "\nbody\n"));
        Assert.Equal(ExitCodes.DataError, result.ExitCode);
        Assert.Contains("more than 20,000 header fields", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, _instance.Count("in"));
    }

    // The note of review 30: a million one-line fields in a message/rfc822 part (13 MB) cost
    // 771 MB in each runner that parsed the post. Counted as the bytes stream in.
    [Fact]
    public void Header_blocks_of_parts_over_the_limits_exit_65_and_queue_nothing()
    {
        var fields = string.Concat(Enumerable.Range(0, MimeShape.MaxFields).Select(i => $"X-F{i}: x\n"));
        var result = Inject("dev@example.org", Encoding.ASCII.GetBytes(
            $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n{fields}\nbody\n--b--\n"));
        Assert.Equal(ExitCodes.DataError, result.ExitCode);
        Assert.Contains("more than 100,000 header fields in the message and its parts", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, _instance.Count("in"));
        Assert.Equal(0, _instance.Count("in", ".tmp"));
    }

    [Fact]
    public void An_unwritable_queue_exits_75_so_the_MTA_retries()
    {
        var queue = _instance.QueueDir("in");
        if (Directory.Exists(queue))
        {
            Directory.Delete(queue, recursive: true);
        }

        File.WriteAllText(queue, "not a directory");
        var result = Inject("dev@example.org", Posts.Plain());
        Assert.Equal(ExitCodes.TempFail, result.ExitCode);
    }

    [Fact]
    public void Bad_arguments_exit_64()
        => Assert.Equal(ExitCodes.Usage, MailmanProcess.Run(_instance.Home, ["inject"], []).ExitCode);
}
