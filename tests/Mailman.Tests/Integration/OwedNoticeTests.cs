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
        using (var store = new ListStore(_instance.Paths.Database))
        {
            Assert.Empty(store.OwedNotices());
        }

        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: env).ExitCode);
        Assert.Single(sink.Messages());
    }
}
