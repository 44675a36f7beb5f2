// Bad input, each with its expected outcome: a clear exit code from inject, or the message
// processed as MimeKit parses it, or kept in shunt/hold/bad with a reason. Never a crashed
// runner, never a file outside the instance.
using System.Text;
using Mailman.Cli;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.Tests.Runners;
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class BadInputTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public BadInputTests()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", [new Member("ann@example.com", "Ann"), new Member("bob@example.com", "Bob")]);
    }

    public void Dispose() => _instance.Dispose();

    // Review 103: the post was on disk, but its "queued" line met a closed stderr (134: .NET calls
    // EBADF UnauthorizedAccessException) or a full one (75), and the MTA would send it again.
    [Theory]
    [InlineData("2>&-")]
    [InlineData("2>/dev/full")]
    public void Inject_exits_0_once_the_post_is_on_disk_whatever_its_stderr(string redirect)
    {
        using (var refused = InjectWithStderr(redirect, "--bogus"))
        {
            Assert.Equal(ExitCodes.Usage, refused.ExitCode); // review 104: 134 on a parse error
        }

        Assert.Equal(0, _instance.Count(QueueSet.In));
        using var process = InjectWithStderr(redirect);
        Assert.Equal(ExitCodes.Ok, process.ExitCode);
        Assert.Equal(1, _instance.Count(QueueSet.In));
    }

    // inject run through bash with its stderr redirected so, a post on stdin; exited.
    private System.Diagnostics.Process InjectWithStderr(string redirect, params string[] extra)
    {
        var psi = MailmanProcess.StartInfo(_instance.Home, ["inject", "dev@example.org", .. extra]);
        psi.ArgumentList.Insert(0, psi.FileName);
        psi.ArgumentList.Insert(0, "mailman-inject");
        psi.ArgumentList.Insert(0, $"exec \"$@\" {redirect}");
        psi.ArgumentList.Insert(0, "-c");
        psi.FileName = "bash";
        var process = System.Diagnostics.Process.Start(psi)!;
        try
        {
            process.StandardInput.Write("From: ann@example.com\nSubject: hi\nMessage-Id: <stderr@example.com>\n\nhello\n");
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // It refused before reading (the parse error): its exit code says so.
        }

        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(1)), "inject did not exit");
        return process;
    }

    public static TheoryData<string> Malformed() =>
    [
        "only-headers", "no-blank-line", "huge-header-line", "ten-thousand-headers", "bad-boundaries",
        "deep-nesting", "bad-charsets", "eight-bit-headers", "nul-bytes",
    ];

    private static byte[] Build(string kind)
    {
        const string head = "From: poster@example.com\nTo: dev@example.org\nMessage-Id: <bad@example.com>\n";
        string text = kind switch
        {
            "only-headers" => head + "Subject: nothing else",
            "no-blank-line" => head + "Subject: s\nthis line is not a header\nnor this one\n",
            "huge-header-line" => head + "Subject: huge\nX-Huge: " + new string('x', 1 << 20) + "\n\nbody\n",
            "ten-thousand-headers" => head + string.Concat(Enumerable.Range(0, 10_000).Select(i => $"X-H{i}: v{i}\n")) + "\nbody\n",
            "bad-boundaries" => head + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"A\"\n\n--B\nContent-Type: text/plain\n\nlost part\n--A\nContent-Type: multipart/alternative; boundary=\n\n--\n--A",
            "deep-nesting" => head + "MIME-Version: 1.0\n" + Nested(1000),
            "bad-charsets" => head + "Subject: =?x-no-such-charset?q?caf=E9?= =?utf-8?b?!!!notbase64?=\nMIME-Version: 1.0\nContent-Type: text/plain; charset=x-unknown-charset\n\ncaf\u00e9\n",
            "eight-bit-headers" => head + "Subject: Grüße aus Köln \u00ff\nX-Name: J\u00fcrgen\n\nbody\n",
            _ => head + "Subject: nul\n\nbefore\0after\n",
        };
        return Encoding.Latin1.GetBytes(text);
    }

    private static string Nested(int depth)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < depth; i++)
        {
            sb.Append($"Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n");
        }

        sb.Append("Content-Type: text/plain\n\ndeep\n");
        for (var i = depth - 1; i >= 0; i--)
        {
            sb.Append($"--b{i}--\n");
        }

        return sb.ToString();
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_messages_are_accepted_and_delivered_as_MimeKit_parses_them_and_the_runners_go_on(string kind)
    {
        using var sink = SmtpSink.Start();
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = sink.Port);
        // The decision (README, Guarantees): a message that starts with a header block is accepted
        // and processed as MimeKit parses it; mail servers see worse every day.
        var inject = MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Build(kind));
        Assert.True(inject.ExitCode == ExitCodes.Ok, $"inject exited {inject.ExitCode}: {inject.Stderr}");

        // A good post behind the bad one proves the runners go on.
        h.Inject("dev@example.org", Posts.Plain(messageId: "good@example.com"));
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        RunnerHarness.Drain(h.Outgoing);

        var copies = sink.Messages();
        var good = copies.Count(m => m.Header("Message-Id") == "<good@example.com>");
        var bad = copies.Count(m => m.Header("Message-Id") == "<bad@example.com>");
        Assert.Equal(2, good);
        Assert.True(bad == 2, $"{kind}: {bad} copies delivered; shunt {_instance.Count(QueueSet.Shunt)}, bad {_instance.Count(QueueSet.Bad)}");
        Assert.Equal(0, _instance.Count(QueueSet.In) + _instance.Count(QueueSet.Pipeline) + _instance.Count(QueueSet.Out));
    }

    // A 1 MB Subject line is taken in (one line parses in a tenth of a second), but the list's
    // prefix made it 17,000 encoded words, one a line: each of the outgoing runner's parses of
    // it cost 11 s of CPU, 36 s a post with two members (and grows with the square of its size).
    [Fact]
    public void A_post_whose_prefixed_Subject_would_fold_over_thousands_of_lines_is_held_and_if_approved_shunted()
    {
        using var sink = SmtpSink.Start();
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = sink.Port);
        var post = Encoding.ASCII.GetBytes("From: poster@example.com\nTo: dev@example.org\nMessage-Id: <long@example.com>\nSubject: " + new string('x', 1 << 20) + "\n\nbody\n");
        Assert.Equal(ExitCodes.Ok, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], post).ExitCode);
        h.Inject("dev@example.org", Posts.Plain(messageId: "good@example.com"));
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        RunnerHarness.Drain(h.Outgoing);

        Assert.Equal(2, sink.Messages().Count(m => m.Header("Message-Id") == "<good@example.com>"));
        Assert.Equal(0, _instance.Count(QueueSet.Out) + _instance.Count(QueueSet.Shunt));
        var held = Assert.Single(h.Held.List());
        Assert.Equal("long@example.com", held.MessageId);
        Assert.Contains(held.Reasons, r => r.Contains("the post as the list rewrites it", StringComparison.Ordinal) && r.Contains("folded over too many lines, to be parsed in time", StringComparison.Ordinal));

        // Approved, it cannot be sent as it is: shunted with why, never delivered.
        Assert.True(h.Held.Approve(held.Id, "cli:test").Done);
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        RunnerHarness.Drain(h.Outgoing);
        Assert.Equal(0, sink.Messages().Count(m => m.Header("Message-Id") == "<long@example.com>"));
        var shunt = h.Queues[QueueSet.Shunt];
        Assert.Contains("a moderator approved it", shunt.ReadMetadata(Assert.Single(shunt.Pending())).Error, StringComparison.Ordinal);
        Assert.Equal(0, _instance.Count(QueueSet.Out));
    }

    // Review 44: a post of as many parts as intake takes was held when the list's footer added
    // one ("... beyond what can be delivered in time: more than 50,000 MIME parts"), and approved
    // it went to shunt: taken in, never deliverable. Decoration has room over intake's counts.
    [Fact]
    public void A_post_at_intakes_part_limit_gets_its_footer_and_is_delivered()
    {
        using var sink = SmtpSink.Start();
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = sink.Port);
        var post = Encoding.ASCII.GetBytes("From: poster@example.com\nTo: dev@example.org\nMessage-Id: <parts@example.com>\nSubject: parts\nContent-Type: multipart/mixed; boundary=b\n\n"
            + string.Concat(Enumerable.Repeat("--b\n\nx\n", MimeShape.MaxParts - 1)) + "--b--\n");
        var taken = MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], post);
        Assert.True(taken.ExitCode == ExitCodes.Ok, taken.Stderr);
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        RunnerHarness.Drain(h.Outgoing);

        Assert.Empty(h.Held.List());
        var copies = sink.Messages().Where(m => m.Header("Message-Id") == "<parts@example.com>").ToList();
        Assert.Equal(2, copies.Count);
        Assert.All(copies, c => Assert.Contains("mailing list -- dev@example.org", c.Text, StringComparison.Ordinal));
        Assert.Equal(0, _instance.Count(QueueSet.Out) + _instance.Count(QueueSet.Shunt) + _instance.Count(QueueSet.Bad));
    }

    // "Access to the path ... is denied" of a directory sent the operator to the permissions (review 39).
    [Fact]
    public void Inject_from_a_directory_says_it_is_one_with_66_and_queues_nothing()
    {
        var result = MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org", "--file", _instance.Home]);
        Assert.True(result.ExitCode == ExitCodes.NoInput, result.Stderr);
        Assert.Equal($"mailman: cannot read the message: {_instance.Home} is a directory, not a file", result.Stderr.Trim());
        Assert.Equal(0, _instance.Count(QueueSet.In));
    }

    [Fact]
    public void A_100_MB_post_above_the_lists_limit_is_held()
    {
        var path = Path.Combine(_instance.Home, "huge.eml");
        using (var file = File.Create(path))
        {
            file.Write(Encoding.ASCII.GetBytes("From: poster@example.com\nTo: dev@example.org\nSubject: huge\n\n"));
            var line = Encoding.ASCII.GetBytes(new string('x', 1023) + "\n");
            for (var i = 0; i < 100 * 1024; i++)
            {
                file.Write(line);
            }
        }

        Assert.Equal(ExitCodes.Ok, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org", "--file", path]).ExitCode);
        using var h = new RunnerHarness(_instance);
        RunnerHarness.Drain(h.Incoming);
        var hold = h.Queues[QueueSet.Hold];
        var metadata = hold.ReadMetadata(Assert.Single(hold.Pending()));
        Assert.Contains("exceeds the list's limit", metadata.Error, StringComparison.Ordinal);
        Assert.Empty(h.Queues[QueueSet.Pipeline].Pending());
    }

    [Theory]
    [InlineData("../../../tmp/evil@example.org")]
    [InlineData("dev@example.org/../../x")]
    [InlineData("a b@example.org")]
    public void A_queue_entry_naming_an_unsafe_list_is_shunted_and_touches_nothing_outside(string list)
    {
        using var h = new RunnerHarness(_instance);
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = list }, Posts.Plain());
        var before = Directory.GetFileSystemEntries(Path.GetTempPath()).ToHashSet(StringComparer.Ordinal);
        RunnerHarness.Drain(h.Incoming);
        var shunt = h.Queues[QueueSet.Shunt];
        Assert.Contains("list", shunt.ReadMetadata(Assert.Single(shunt.Pending())).Error, StringComparison.Ordinal);
        Assert.False(File.Exists("/tmp/evil@example.org"));

        // Nothing named by the list's parts appeared in the temp directory. Not a count of its
        // entries: the tests running beside this one make and remove their own there.
        var parts = list.Split('/').Where(p => p is not ("" or "." or "..")).Append(list).ToHashSet(StringComparer.Ordinal);
        Assert.DoesNotContain(Directory.GetFileSystemEntries(Path.GetTempPath()).Where(e => !before.Contains(e)), e => parts.Contains(Path.GetFileName(e)));
    }

    [Fact]
    public void A_full_disk_while_injecting_exits_75_and_leaves_no_partial_entry()
    {
        var queue = _instance.QueueDir(QueueSet.In);
        Directory.CreateDirectory(queue);
        if (!Mount(queue))
        {
            Assert.Fail("cannot mount a tmpfs here (needs root); the disk-full guarantee is untested");
        }

        try
        {
            var big = Posts.Plain(body: new string('x', 12 << 20));
            var result = MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], big);
            Assert.Equal(ExitCodes.TempFail, result.ExitCode);
            Assert.Contains("No space left on device", result.Stderr, StringComparison.Ordinal);
            Assert.Empty(Directory.GetFiles(queue));

            // A small message still fits: the failed write left nothing behind.
            Assert.Equal(ExitCodes.Ok, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain()).ExitCode);
            Assert.Single(Directory.GetFiles(queue, "*.msg"));

            // Review 44: posts taken until the disk was full stayed in `in` for good (each hop
            // writes its next copy before it deletes the last). One that would leave less than
            // twice its size and 8 MiB free is refused, and nothing of it is left.
            var leaving = new DriveInfo(queue).AvailableFreeSpace;
            var tooBig = Posts.Plain(body: new string('x', (int)((leaving - Intake.ReserveBytes) / 2) + (64 << 10)));
            var refused = MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], tooBig);
            Assert.Equal(ExitCodes.TempFail, refused.ExitCode);
            Assert.Contains("left free (room for the daemon to move it on)", refused.Stderr, StringComparison.Ordinal);
            Assert.Single(Directory.GetFileSystemEntries(queue));
            var fits = Posts.Plain(body: new string('x', (int)((leaving - Intake.ReserveBytes) / 4)));
            Assert.Equal(ExitCodes.Ok, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], fits).ExitCode);
            Assert.Equal(2, Directory.GetFiles(queue, "*.msg").Length);
        }
        finally
        {
            Run("umount", queue);
        }
    }

    private static bool Mount(string dir) => Run("mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", dir) == 0;

    private static int Run(string file, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = System.Diagnostics.Process.Start(psi)!;
        p.WaitForExit();
        return p.ExitCode;
    }
}
