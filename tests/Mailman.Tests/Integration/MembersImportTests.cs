// Review 80: what `members add` promises of its welcomes and of a list read back.
using System.Globalization;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class MembersImportTests : IDisposable
{
    private const string List = "dev@example.org";
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    private IReadOnlyList<OwedNotice> Owed()
    {
        using var store = new ListStore(_instance.Paths.Database);
        return store.OwedNotices();
    }

    // A kill -9 or a full out queue between the add's commit and its welcomes lost them for
    // good: nothing was owed, and the add run again said "already members".
    [Fact]
    public void Welcomes_the_out_queue_could_not_take_stay_owed_and_the_daemon_sends_each_once()
    {
        _instance.CreateList(List);
        ProcessResult add;
        using (var full = Tmpfs.Mount(_instance.QueueDir(QueueSet.Out), "1m"))
        {
            full.Fill();
            add = MailmanProcess.Run(_instance.Home, ["members", "add", List, "--welcome", "anne@example.com", "Bob <bob@example.com>", "carl@example.com"]);
        }

        Assert.Equal(0, add.ExitCode);
        Assert.Contains("dev@example.org: 3 added", add.Stdout, StringComparison.Ordinal);
        Assert.Contains("3 welcomes could not be queued", add.Stderr, StringComparison.Ordinal);
        Assert.Contains("owed", add.Stderr, StringComparison.Ordinal);
        Assert.Equal(["anne@example.com", "bob@example.com", "carl@example.com"], Owed().Select(o => o.Address).Order());
        var owing = Path.Combine(Path.GetDirectoryName(_instance.Paths.Database)!, "owing");
        Assert.Single(Directory.GetFiles(owing)); // its lock left unheld: the daemon need not wait an hour

        using var sink = SmtpSink.Start();
        var env = new Dictionary<string, string> { ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture) };
        using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_instance.Paths.Database}"))
        {
            // Owed for more than a minute: no command line is still queuing them.
            db.Open();
            using var age = db.CreateCommand();
            age.CommandText = "UPDATE owed_notices SET created = '2000-01-01T00:00:00.000Z'";
            Assert.Equal(3, age.ExecuteNonQuery());
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: env).ExitCode);
        Assert.Equal(["anne@example.com", "bob@example.com", "carl@example.com"], sink.Messages().SelectMany(m => m.Recipients).Order());
        Assert.All(sink.Messages(), m => Assert.Equal("Welcome to the \"dev\" mailing list", m.Header("Subject")));
        Assert.Empty(Owed());
        Assert.Empty(Directory.GetFiles(owing));
    }

    [Fact]
    public void Welcomes_queued_are_no_longer_owed()
    {
        _instance.CreateList(List);
        var add = MailmanProcess.Run(_instance.Home, ["members", "add", List, "--welcome", "anne@example.com", "bob@example.com"]);
        Assert.Equal(0, add.ExitCode);
        Assert.Contains("2 added, 0 already members, 2 welcomed", add.Stdout, StringComparison.Ordinal);
        Assert.Empty(Owed());
        Assert.Equal(2, Directory.GetFiles(_instance.QueueDir(QueueSet.Out), "*" + Switchboard.EntryExtension).Length);
    }

    // A list moved with `members list` and `add --file` came back with every member enabled.
    [Fact]
    public void A_member_list_read_back_keeps_who_is_disabled_and_why()
    {
        _instance.CreateList(List);
        _instance.AddMembers(List, [new Member("anne@example.com", "Anne"), new Member("bob@example.com", "")]);
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["members", "disable", List, "bob@example.com"]).ExitCode);
        var listed = MailmanProcess.Run(_instance.Home, ["members", "list", List]);
        Assert.Contains("bob@example.com\tdisabled: moderator", listed.Stdout, StringComparison.Ordinal);

        _instance.CreateList("copy@example.org");
        var file = Path.Combine(_instance.Home, "members.txt");
        File.WriteAllText(file, listed.Stdout + "carl@example.com\tdisabled: bounce\ndora@example.com\tdisabled: unknown\nerin@example.com\tdisabled\n");
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["members", "add", "copy@example.org", "--no-welcome", "--file", file]).ExitCode);
        var copied = MailmanProcess.Run(_instance.Home, ["members", "list", "copy@example.org"]).Stdout.ReplaceLineEndings("\n");
        Assert.Equal("Anne <anne@example.com>\nbob@example.com\tdisabled: moderator\ncarl@example.com\tdisabled: bounce\n"
            + "dora@example.com\tdisabled: unknown\nerin@example.com\tdisabled: unknown\n", copied);
        Assert.Contains("disabled_reason: unknown", MailmanProcess.Run(_instance.Home, ["members", "show", "copy@example.org", "dora@example.com"]).Stdout, StringComparison.Ordinal);

        foreach (var odd in (string[])["something else", "disabledfoo", "disabled: bogus"])
        {
            File.WriteAllText(file, $"dave@example.com\t{odd}\n");
            var refused = MailmanProcess.Run(_instance.Home, ["members", "add", "copy@example.org", "--file", file]);
            Assert.Equal(65, refused.ExitCode);
            Assert.Contains("expected what members list writes (disabled: bounce, user, moderator or unknown)", refused.Stderr, StringComparison.Ordinal);
        }
    }
}
