// Review 36: a welcome or goodbye owed by a run that stopped before queuing it (a killed daemon,
// a command line) is sent when the daemon starts, once, under the name it would have had.
using System.Globalization;
using Mailman.Lists;
using Mailman.Notices;
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class OwedNoticeTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void A_welcome_left_owed_is_sent_when_the_daemon_starts_and_only_once()
    {
        _instance.CreateList("dev@example.org");
        _instance.AddMembers("dev@example.org", [new Member("anne@example.com", "Anne")]);
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.OweNotice(ListName.Parse("dev@example.org"), NoticeTemplates.Welcome, "anne@example.com", "Anne", "17961428495653330-28502773",
                NoticeTemplates.Welcome + ":anne@example.com", DateTimeOffset.UtcNow.AddMinutes(-5));
        }

        using var sink = SmtpSink.Start();
        var env = new Dictionary<string, string> { ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture) };
        var serve = MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: env);
        Assert.Equal(0, serve.ExitCode);
        var welcome = Assert.Single(sink.Messages());
        Assert.Equal(["anne@example.com"], welcome.Recipients);
        Assert.Equal("Welcome to the \"dev\" mailing list", welcome.Header("Subject"));
        var log = string.Concat(Directory.GetFiles(_instance.Paths.LogsDirectory, "mailman-*.log").Select(File.ReadAllText));
        Assert.Contains("Notice list:user:notice:welcome ", log, StringComparison.Ordinal); // not "Post ... delivered" (review 121)
        using (var store = new ListStore(_instance.Paths.Database))
        {
            Assert.Empty(store.OwedNotices());
        }

        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: env).ExitCode);
        Assert.Single(sink.Messages());
    }

    // Review 91: `members add --welcome` killed before its transaction owed nothing and left its
    // lock in var/owing/ for good, one per kill.
    [Fact]
    public void The_lock_of_a_command_line_killed_before_it_owed_anything_is_removed_and_a_held_one_stays()
    {
        _instance.CreateList("dev@example.org");
        var killed = _instance.Paths.OwingLock("17961428495653330-28502774");
        var running = _instance.Paths.OwingLock("17961428495653330-28502775");
        var fresh = _instance.Paths.OwingLock("17961428495653330-28502776");
        Directory.CreateDirectory(Path.GetDirectoryName(killed)!);
        File.WriteAllText(killed, "");
        File.SetLastWriteTimeUtc(killed, DateTime.UtcNow.AddHours(-1));
        File.WriteAllText(fresh, "");
        using var held = new FileStream(running, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        File.SetLastWriteTimeUtc(running, DateTime.UtcNow.AddHours(-1));

        using var sink = SmtpSink.Start();
        var serve = MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: new Dictionary<string, string> { ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture) });

        Assert.True(serve.ExitCode == 0, serve.Stderr);
        Assert.False(File.Exists(killed), "the killed command line's lock stayed");
        Assert.True(File.Exists(running), "a lock held by a running command line was removed");
        Assert.True(File.Exists(fresh), "a lock made an instant ago was removed");
        Assert.Empty(sink.Messages());
    }
}
