// `mailman bounces scan` as an operator runs it: a real process, saved messages, no instance.
using System.Text.Json;
using Mailman.Cli;
using Mailman.TestSupport;

namespace Mailman.Tests.Cli;

public sealed class BouncesCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mailman-bounces-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>An instance directory that does not exist and must not be created.</summary>
    private string Home => Path.Combine(_dir, "no-instance");

    private string Save(string name, byte[] raw)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, raw);
        return path;
    }

    [Fact]
    public void Scan_prints_kind_addresses_and_detector_per_file_and_needs_no_instance()
    {
        var dsn = Save("dsn.eml", BounceMessages.Dsn([BounceMessages.Recipient("anne@example.com"), BounceMessages.Recipient("bob@example.com")]));
        var policy = Save("policy.eml", BounceMessages.Dsn([BounceMessages.Recipient("erin@example.com", status: "5.7.1", diagnostic: "smtp; 550 5.7.1 Message rejected as spam"), BounceMessages.Recipient("fred@example.com")]));
        var delay = Save("delay.eml", BounceMessages.Dsn([BounceMessages.Recipient("carol@example.com", "delayed", "4.4.1")]));
        var arf = Save("arf.eml", BounceMessages.Arf("abuse", originalRcptTo: "dave@example.com"));
        var vacation = Save("vacation.eml", BounceMessages.Vacation());
        var post = Save("post.eml", Posts.Plain());

        var result = MailmanProcess.Run(Home, ["bounces", "scan", dsn, policy, delay, arf, vacation, post]);

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        Assert.Equal(
            [
                $"{dsn}: permanent, anne@example.com bob@example.com, DSN",
                $"{policy}: permanent, erin@example.com fred@example.com, DSN, not scored (erin@example.com 5.7.1: about the message or our server, not the address)", // review 50

                $"{delay}: temporary, carol@example.com, DSN",
                $"{arf}: not-a-bounce, -, ARF, complaint abuse by dave@example.com",
                $"{vacation}: not-a-bounce, -, AutoReply",
                $"{post}: unrecognized, -, -",
            ],
            result.Stdout.TrimEnd('\n').Split('\n'));
        Assert.Equal("", result.Stderr);
        Assert.False(Directory.Exists(Home), "scan must not create an instance");
    }

    [Fact]
    public void Json_prints_one_object_a_line()
    {
        var dsn = Save("dsn.eml", BounceMessages.Dsn([BounceMessages.Recipient("anne@example.com")]));
        var garbage = Save("garbage.bin", [0xff, 0x00, 0xfe, 0x0a, 0x0d]);
        var arf = Save("arf.eml", BounceMessages.Arf("abuse", originalRcptTo: "dave@example.com"));

        var result = MailmanProcess.Run(Home, ["bounces", "scan", "--json", dsn, garbage, arf]);

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        var lines = result.Stdout.TrimEnd('\n').Split('\n').Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(3, lines.Count);
        Assert.Equal(dsn, lines[0].GetProperty("file").GetString());
        Assert.Equal("permanent", lines[0].GetProperty("kind").GetString());
        Assert.Equal(["anne@example.com"], lines[0].GetProperty("addresses").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal("DSN", lines[0].GetProperty("detector").GetString());
        Assert.Equal("unrecognized", lines[1].GetProperty("kind").GetString());
        Assert.Equal(JsonValueKind.Null, lines[1].GetProperty("detector").ValueKind);
        Assert.Empty(lines[1].GetProperty("addresses").EnumerateArray());
        Assert.False(lines[1].TryGetProperty("complaint", out _));
        Assert.Equal("not-a-bounce", lines[2].GetProperty("kind").GetString());
        Assert.Equal("abuse", lines[2].GetProperty("complaint").GetProperty("feedbackType").GetString());
        Assert.Equal(["dave@example.com"], lines[2].GetProperty("complaint").GetProperty("recipients").EnumerateArray().Select(a => a.GetString()));
    }

    [Fact]
    public void An_unreadable_file_is_reported_on_stderr_the_others_are_scanned_and_the_exit_is_66()
    {
        var dsn = Save("dsn.eml", BounceMessages.Dsn([BounceMessages.Recipient("anne@example.com")]));
        var missing = Path.Combine(_dir, "missing.eml");

        var result = MailmanProcess.Run(Home, ["bounces", "scan", missing, dsn]);

        Assert.Equal(ExitCodes.NoInput, result.ExitCode);
        Assert.Equal($"{dsn}: permanent, anne@example.com, DSN", result.Stdout.Trim());
        var line = Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.StartsWith($"mailman: {missing}: ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);

        // A directory is called one, not "Access ... denied" (review 39).
        var directory = MailmanProcess.Run(Home, ["bounces", "scan", _dir, dsn]);
        Assert.Equal(ExitCodes.NoInput, directory.ExitCode);
        Assert.Equal($"mailman: {_dir} is a directory, not a file", directory.Stderr.Trim());
    }
}
