// Review 80: what a verb says of a database it cannot write or that is damaged past its header.
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class DatabaseErrorTests : IDisposable
{
    private const string List = "dev@example.org";
    private readonly TempInstance _instance = new();

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _ = PostfixInstance.Run("chown", "-R", "root:root", _instance.Home);
        File.SetUnixFileMode(Path.GetDirectoryName(_instance.Paths.Database)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _instance.Dispose();
    }

    // A read-only var/ for the instance's own user: SQLite cannot make its -wal and -shm, and
    // the verb said "attempt to write a readonly database", exit 75, as if waiting would mend it.
    [Fact]
    public void A_var_directory_the_instances_user_cannot_write_is_a_permission_naming_it()
    {
        _instance.CreateList(List);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Assert.Equal(0, PostfixInstance.Run("chown", "-R", "nobody:nogroup", _instance.Home));
        var var = Path.GetDirectoryName(_instance.Paths.Database)!;
        File.SetUnixFileMode(var, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var add = MailmanProcess.Run(_instance.Home, ["members", "add", List, "--no-welcome", "anne@example.com"], runAs: "nobody");
        Assert.Equal(77, add.ExitCode);
        Assert.Contains($"SQLite writes its -wal and -shm files in {var}, which is owned by nobody, mode 0555", add.Stderr, StringComparison.Ordinal);
    }

    // A page damaged past the header: 'database disk image is malformed', exit 75; as a damaged
    // header, 78 and the backup named.
    [Fact]
    public void A_database_damaged_past_its_header_is_refused_with_78()
    {
        _instance.CreateList(List);
        _instance.AddMembers(List, TempInstance.NumberedMembers(5000));
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        var length = new FileInfo(_instance.Paths.Database).Length;
        Assert.True(length > 64 * 4096, $"the database is {length} bytes");
        using (var db = new FileStream(_instance.Paths.Database, FileMode.Open, FileAccess.Write))
        {
            db.Position = length / 2 / 4096 * 4096;
            db.Write(Enumerable.Repeat((byte)0xA5, 4096 * 8).ToArray());
        }

        var listed = MailmanProcess.Run(_instance.Home, ["members", "list", List]);
        Assert.Equal(78, listed.ExitCode);
        Assert.Contains("is damaged", listed.Stderr, StringComparison.Ordinal);
        Assert.Contains("restore it from a backup", listed.Stderr, StringComparison.Ordinal);

        // Review 82: serve started on it and each runner logged the damage in turn.
        var serve = MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"]);
        Assert.Equal(78, serve.ExitCode);
        Assert.Contains("is damaged", serve.Stderr, StringComparison.Ordinal);
    }
}
