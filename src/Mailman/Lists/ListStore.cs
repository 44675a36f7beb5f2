// Lists and members in SQLite (var/mailman.db). WAL mode so the daemon's recipient reads and an
// operator's `members add` do not block each other; members are read as a stream, never all at once.
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Mailman.Lists;

/// <summary>The list and member database of one instance. One file per feature (ListStore.*.cs).</summary>
public sealed partial class ListStore : IDisposable
{
    private readonly SqliteConnection _db;
    private SqliteTransaction? _transaction;

    /// <exception cref="SqliteException">The database cannot be opened or migrated.</exception>
    /// <exception cref="DatabaseUnusableException">The file is empty or not an SQLite database.</exception>
    /// <exception cref="DatabaseReadOnlyException">It opened read-only.</exception>
    /// <param name="databasePath">var/mailman.db.</param>
    /// <param name="create">
    /// Make the database when there is none: `serve` at start, `init` and `lists create` only.
    /// Anything else opening a missing one made a new empty one: every post after it refused as to
    /// no such list, and bounced by the MTA (review 40).
    /// </param>
    public ListStore(string databasePath, bool create = false)
    {
        // Neither can ever be opened: a configuration fault (serve 78, not a 75 that systemd
        // restarts every 5 s; review 40), and nothing is made in their place.
        if (Directory.Exists(databasePath))
        {
            throw new DatabaseUnusableException($"the list database {databasePath} is a directory, not a database: move it away, and restore the database from a backup");
        }

        if (Instance.FileOwner.DanglingLinkTarget(databasePath) is { } target)
        {
            throw new DatabaseUnusableException($"the list database {databasePath} is a symbolic link to {target}, which does not exist (a file system not mounted?)");
        }

        if (!File.Exists(databasePath))
        {
            if (!create)
            {
                ThrowMissing(databasePath);
            }

            Create(databasePath);
        }
        else if (File.Exists(databasePath) && new FileInfo(databasePath).Length == 0)
        {
            // A database is never empty once made (below): this one was truncated (a full disk, a
            // bad restore). Opened, it would become a new empty one, every list gone and every
            // post refused as to no such list (review 39).
            throw new DatabaseUnusableException($"the list database {databasePath} is empty (0 bytes): it was truncated; restore it from a backup, or remove it to start anew with no lists");
        }

        if (DeletedSideFile(databasePath) is { } deleted)
        {
            throw new DatabaseUnusableException($"{deleted} was deleted while this process had it open: this process and every other now see the list database {databasePath} differently, and changes can be lost. Stop the daemon and every mailman command, then check the lists and members (mailman lists list, members list) or restore the database from a backup. Never delete the -wal and -shm files: they are part of the database");
        }

        // ReadWrite, not create: a file removed since the look above is an error, not a new empty database.
        _pendingMark = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(databasePath))!, PendingMarkFile);
        _db = Connect(databasePath, SqliteOpenMode.ReadWrite, pooling: true);
        if (SQLitePCL.raw.sqlite3_db_readonly(_db.Handle, "main") == 1)
        {
            // SQLite falls back to reading a file it may not write: serve started on a 0400
            // database and failed at the first member change (review 40). Every user writes.
            _db.Dispose();
            throw new DatabaseReadOnlyException($"the list database {databasePath} cannot be written: {Unwritable(databasePath)}");
        }

        try
        {
            Execute(Pragmas);
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 26 or 11)
        {
            _db.Dispose();
            throw new DatabaseUnusableException($"the list database {databasePath} is not an SQLite database, or is damaged ({e.Message.ReplaceLineEndings(" ")}): restore it from a backup", e);
        }

        try
        {
            EnsureSchema();
        }
        catch (DatabaseUnusableException)
        {
            _db.Dispose();
            throw;
        }
    }

    private ListStore(SqliteConnection db) => _db = db;

    private static long _sideFilesLooked = -1000; // Environment.TickCount64 of the last look

    // The -wal or -shm this process holds open (pooled connections) and someone deleted: SQLite
    // goes on with the deleted files while every other process makes new ones (review 80: the
    // daemon delivered posts to 0 recipients, held posts a verb had let through, and on stop wrote
    // its view back, the members added since gone). Looked at once a second at most: the open
    // descriptors in /proc/self/fd.
    private static string? DeletedSideFile(string databasePath)
    {
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _sideFilesLooked);
        if (now - last < 1000 || Interlocked.CompareExchange(ref _sideFilesLooked, now, last) != last)
        {
            return null;
        }

        var full = System.IO.Path.GetFullPath(databasePath);
        try
        {
            foreach (var fd in new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos())
            {
                string? target;
                try
                {
                    target = fd.LinkTarget;
                }
                catch (IOException)
                {
                    continue; // closed since the listing
                }

                if (target is not null && target.EndsWith(" (deleted)", StringComparison.Ordinal)
                    && target[..^" (deleted)".Length] is var file && (file == full + "-wal" || file == full + "-shm"))
                {
                    return file;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No /proc: nothing to look at.
        }

        return null;
    }

    private const int BusySeconds = 10;

    private static readonly string Pragmas = $"PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout={BusySeconds * 1000}; PRAGMA foreign_keys=ON;";

    // Pooled: closing the last connection of a process checkpoints the WAL and fsyncs; the
    // daemon opens one per post and would pay that per post (13 posts/s measured).
    private static SqliteConnection Connect(string path, SqliteOpenMode mode, bool pooling)
    {
        // Microsoft.Data.Sqlite retries a busy statement for its command timeout (30 s by
        // default) around SQLite's own busy_timeout (Pragmas): the wait is 10 s, as the pragma says.
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = pooling, DefaultTimeout = BusySeconds }.ToString());
        db.Open();
        return db;
    }

    // A new database is made whole under another name and linked into place, so that the file
    // under the real name is never empty: an empty one is refused above. Two processes making it
    // at once: the first link wins and the other's copy is dropped.
    private static void Create(string path)
    {
        RemoveStaleTemporaries(path);
        var temp = $"{path}.new-{Guid.NewGuid():N}";
        try
        {
            using (var store = new ListStore(Connect(temp, SqliteOpenMode.ReadWriteCreate, pooling: false)))
            {
                // A rollback journal, not WAL, while it is made: each commit is in the file itself,
                // fsynced, or fails (SQLITE_FULL). In WAL the schema waited in the -wal file for the
                // closing checkpoint, whose failure on a full disk is silent: the file renamed into
                // place was damaged and the WAL deleted (review 40). The first open below turns WAL on.
                store.Execute("PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
                store.EnsureSchema();
                using var check = store.Command("PRAGMA quick_check");
                if (check.ExecuteScalar() is not "ok")
                {
                    throw new SqliteException("the new database failed its check", 11);
                }
            }

            // The first to link wins; another's copy is dropped (a rename would replace a database
            // the other process had already written lists into; review 41).
            Instance.FileOwner.TryLinkNew(temp, path);
        }
        catch (Exception e) when (e is UnauthorizedAccessException || e is SqliteException { SqliteErrorCode: 14 } && !File.Exists(path))
        {
            // Also a database that is there but cannot be seen (var/ unreadable to us): name the
            // real file, not the temporary one.
            throw new UnauthorizedAccessException($"Access to the list database {path} is denied.", e);
        }
        finally
        {
            foreach (var leftover in new[] { temp, temp + "-wal", temp + "-shm" })
            {
                try
                {
                    File.Delete(leftover);
                }
                catch (UnauthorizedAccessException)
                {
                    // var/ denies us: nothing of ours is there, and the error above says why.
                }
            }
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowMissing(string path)
    {
        var directory = System.IO.Path.GetDirectoryName(path)!;
        if (!Directory.Exists(directory))
        {
            // Not to be seen either when a directory above it is closed to this user (review
            // 133: a home of mode 0700 run as another user was "does not exist", 78, not 77).
            var below = directory;
            var above = System.IO.Path.GetDirectoryName(directory);
            while (above is not null && !Directory.Exists(above))
            {
                below = above;
                above = System.IO.Path.GetDirectoryName(above);
            }

            if (above is not null && !Searchable(above, System.IO.Path.GetFileName(below)))
            {
                throw new UnauthorizedAccessException($"Access to the list database {path} is denied ({above} is closed to this user).");
            }

            // SQLite's "unable to open" of a temporary name said nothing (review 40).
            throw new DatabaseUnusableException($"the list database {path} does not exist, nor does {directory} (a file system not mounted?)");
        }

        try
        {
            // Not there, or not to be seen: var/ closed to this user is a permission, not a loss.
            using var entries = Directory.EnumerateFileSystemEntries(directory).GetEnumerator();
            entries.MoveNext();
        }
        catch (UnauthorizedAccessException e)
        {
            throw new UnauthorizedAccessException($"Access to the list database {path} is denied.", e);
        }

        throw new DatabaseUnusableException($"the list database {path} does not exist (removed? var/ on a file system not mounted?): restore it from a backup, or `mailman lists create` makes a new, empty one");
    }

    // Whether this user may look inside the directory: read it, and search it for the child
    // (named there but neither file nor directory to this user: no search permission).
    private static bool Searchable(string directory, string child)
    {
        try
        {
            return !Directory.EnumerateFileSystemEntries(directory).Any(e => System.IO.Path.GetFileName(e) == child)
                || File.Exists(System.IO.Path.Combine(directory, child));
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
        catch (IOException)
        {
            return true; // gone meanwhile, or another fault: not a permission
        }
    }

    // "mailman.db mode 0400, mailman.db-shm mode 0400": SQLite makes -shm with the database's mode,
    // so a chmod of the database alone does not mend it.
    private static string Unwritable(string path)
    {
        var files = new[] { path, path + "-wal", path + "-shm" }.Where(File.Exists)
            .Select(f => $"{System.IO.Path.GetFileName(f)} is {Instance.FileOwner.Describe(f)}");
        return string.Join(", ", files) + $" (mailman runs as {Instance.FileOwner.UserName(Instance.FileOwner.EffectiveUid)}; a read-only file system?)";
    }

    // A process killed while it made the database leaves its temporary files (review 40): an
    // hour on, no making is still under way.
    private static void RemoveStaleTemporaries(string path)
    {
        try
        {
            foreach (var stale in new DirectoryInfo(System.IO.Path.GetDirectoryName(path)!).EnumerateFiles(System.IO.Path.GetFileName(path) + ".new-*"))
            {
                if (DateTime.UtcNow - stale.LastWriteTimeUtc > TimeSpan.FromHours(1))
                {
                    stale.Delete();
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not ours to remove, or gone: the making below reports what matters.
        }
    }

    /// <summary>
    /// SQLite's quick_check (every page read, O(size)): <c>serve</c> runs it once at start, so
    /// that a database damaged past its header is refused there (review 82: the daemon started
    /// and its runners logged errors) instead of found by each runner in turn.
    /// </summary>
    /// <exception cref="DatabaseUnusableException">It is damaged.</exception>
    public void CheckIntact()
    {
        string? verdict;
        try
        {
            using var check = Command("PRAGMA quick_check(1)");
            verdict = check.ExecuteScalar() as string;
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 11 or 26)
        {
            verdict = e.Message.ReplaceLineEndings(" ");
        }

        if (verdict != "ok")
        {
            throw new DatabaseUnusableException($"the list database {Path} is damaged ({verdict}): restore it from a backup");
        }
    }

    /// <summary>The database file, for error messages.</summary>
    public string Path => _db.DataSource;

    public void Dispose() => _db.Dispose();

    /// <exception cref="ListExistsException">The list exists already.</exception>
    public void CreateList(MailingList list)
    {
        using var cmd = Command("INSERT INTO lists (fqdn, settings) VALUES ($fqdn, $settings) ON CONFLICT DO NOTHING",
            ("$fqdn", list.Name.Fqdn), ("$settings", JsonSerializer.Serialize(list, MailingListJson.Default.MailingList)));
        if (cmd.ExecuteNonQuery() == 0)
        {
            throw new ListExistsException($"list {list.Name} already exists");
        }
    }

    public void SaveList(MailingList list)
    {
        using var cmd = Command("UPDATE lists SET settings = $settings WHERE fqdn = $fqdn",
            ("$fqdn", list.Name.Fqdn), ("$settings", JsonSerializer.Serialize(list, MailingListJson.Default.MailingList)));
        if (cmd.ExecuteNonQuery() == 0)
        {
            throw new NoSuchListException($"no such list: {list.Name}");
        }
    }

    public MailingList? FindList(ListName name)
    {
        using var cmd = Command("SELECT settings FROM lists WHERE fqdn = $fqdn", ("$fqdn", name.Fqdn));
        return cmd.ExecuteScalar() is string json ? Deserialize(name, json) : null;
    }

    /// <exception cref="InvalidOperationException">No such list.</exception>
    public MailingList GetList(ListName name) => FindList(name) ?? throw new NoSuchListException(
        $"no such list: {name}{(ListAddress.RoleAddressOf(name) is { } role ? $" ({role}, no list)" : "")}");

    public IReadOnlyList<MailingList> AllLists()
    {
        using var cmd = Command("SELECT fqdn, settings FROM lists ORDER BY fqdn");
        using var reader = cmd.ExecuteReader();
        var result = new List<MailingList>();
        while (reader.Read())
        {
            result.Add(Deserialize(ListName.Parse(reader.GetString(0)), reader.GetString(1)));
        }

        return result;
    }

    /// <summary>Adds members in one transaction; members already on the list are left as they are.</summary>
    /// <param name="list">The list.</param>
    /// <param name="members">The members to add.</param>
    /// <param name="added">Receives the members that were new (for welcome messages), when given.</param>
    /// <param name="inTransaction">Called for each new member inside the transaction (a welcome recorded as owed).</param>
    /// <returns>How many were new.</returns>
    public int AddMembers(ListName list, IEnumerable<Member> members, ICollection<Member>? added = null, Action<Member>? inTransaction = null)
    {
        using var tx = Begin();
        var listId = ListId(list);
        using var cmd = Command("""
            INSERT INTO members (list_id, address, address_key, display_name, delivery_enabled, disabled_reason, joined_at, serial)
            VALUES ($list, $address, $key, $name, $enabled, $reason, $joined, $serial) ON CONFLICT DO NOTHING
            """);
        var pList = cmd.Parameters.Add("$list", SqliteType.Integer);
        var pAddress = cmd.Parameters.Add("$address", SqliteType.Text);
        var pKey = cmd.Parameters.Add("$key", SqliteType.Text);
        var pName = cmd.Parameters.Add("$name", SqliteType.Text);
        var pEnabled = cmd.Parameters.Add("$enabled", SqliteType.Integer);
        var pReason = cmd.Parameters.Add("$reason", SqliteType.Text);
        var pSerial = cmd.Parameters.Add("$serial", SqliteType.Text);
        cmd.Parameters.AddWithValue("$joined", Timestamp(DateTimeOffset.UtcNow));
        cmd.Prepare();
        pList.Value = listId;
        var count = 0;
        foreach (var m in members)
        {
            pAddress.Value = m.Address;
            pKey.Value = AddressKey(m.Address);
            pName.Value = Member.Sanitize(m.DisplayName);
            pEnabled.Value = m.DeliveryEnabled ? 1 : 0;
            // Disabled for a reason not known (an import's "disabled: unknown") is stored without one.
            pReason.Value = m.DeliveryEnabled ? DisabledReason.None : m.DisabledReason is DisabledReason.Bounces or DisabledReason.User or DisabledReason.Moderator ? m.DisabledReason : DisabledReason.None;
            pSerial.Value = NewSerial();
            if (cmd.ExecuteNonQuery() > 0)
            {
                count++;
                added?.Add(m);
                inTransaction?.Invoke(m);
            }
        }

        tx.Commit();
        return count;
    }

    /// <returns>How many were removed.</returns>
    public int RemoveMembers(ListName list, IEnumerable<string> addresses)
    {
        using var tx = Begin();
        var listId = ListId(list);
        using var cmd = Command("DELETE FROM members WHERE list_id = $list AND address_key = $key", ("$list", listId), ("$key", ""));
        var removed = 0;
        foreach (var a in addresses)
        {
            cmd.Parameters["$key"].Value = AddressKey(a);
            removed += cmd.ExecuteNonQuery();
        }

        tx.Commit();
        return removed;
    }

    public bool IsMember(ListName list, string address)
    {
        using var cmd = Command("SELECT 1 FROM members m JOIN lists l ON l.id = m.list_id WHERE l.fqdn = $fqdn AND m.address_key = $key",
            ("$fqdn", list.Fqdn), ("$key", AddressKey(address)));
        return cmd.ExecuteScalar() is not null;
    }

    public long CountMembers(ListName list)
    {
        using var cmd = Command("SELECT COUNT(*) FROM members m JOIN lists l ON l.id = m.list_id WHERE l.fqdn = $fqdn", ("$fqdn", list.Fqdn));
        return (long)cmd.ExecuteScalar()!;
    }

    /// <summary>All members with their subscription serials, in the order they joined, streamed from the database.</summary>
    public IEnumerable<Member> Members(ListName list, bool deliveryEnabledOnly = false)
    {
        var listId = ListId(list);
        using var cmd = Command(
            "SELECT address, display_name, delivery_enabled, serial FROM members WHERE list_id = $list"
            + (deliveryEnabledOnly ? " AND delivery_enabled = 1" : "") + " ORDER BY id",
            ("$list", listId));
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            yield return new Member(reader.GetString(0), reader.GetString(1), reader.GetInt64(2) != 0) { Serial = reader.GetString(3) };
        }
    }

    /// <summary>
    /// What two spellings of one mailbox share, so that a member never gets two copies: trimmed,
    /// lower case (RFC 5321 allows a case-sensitive local part, but no list server treats one so),
    /// an internationalized domain as its A-labels (x@bücher.example is x@xn--bcher-kva.example).
    /// </summary>
    public static string AddressKey(string address) => Instance.SmtpOptions.WireAddress(address.Trim().ToLowerInvariant());

    /// <summary>True when the two addresses are one mailbox (<see cref="AddressKey"/>).</summary>
    public static bool SameAddress(string a, string b) => AddressKey(a) == AddressKey(b);

    // Read inside the writing transaction (after Begin): a list deleted by another process
    // meanwhile is then "no such list" (exit 67), not a foreign-key failure (75) with the rows of
    // a deleted list (review 37: members add racing lists delete).
    private long ListId(ListName list)
    {
        using var cmd = Command("SELECT id FROM lists WHERE fqdn = $fqdn", ("$fqdn", list.Fqdn));
        return cmd.ExecuteScalar() is long id ? id : throw new NoSuchListException($"no such list: {list}");
    }

    private static MailingList Deserialize(ListName name, string json)
    {
        var list = JsonSerializer.Deserialize(json, MailingListJson.Default.MailingList) ?? new MailingList();
        list.Name = name;
        return list;
    }

    private void Execute(string sql)
    {
        using var cmd = Command(sql);
        cmd.ExecuteNonQuery();
    }

    /// <summary>Runs <paramref name="action"/> in one transaction (batches of updates: one fsync).</summary>
    public T InTransaction<T>(Func<T> action)
    {
        using var tx = Begin();
        var result = action();
        tx.Commit();
        return result;
    }

    // An IMMEDIATE transaction every command of this store joins, or a no-op scope inside one
    // that is already open (InTransaction around methods that begin their own).
    private Scope Begin()
    {
        if (_transaction is not null)
        {
            return new Scope(this, null);
        }

        _transaction = _db.BeginTransaction(deferred: false);
        return new Scope(this, _transaction);
    }

    private sealed class Scope(ListStore store, SqliteTransaction? owned) : IDisposable
    {
        public void Commit() => owned?.Commit();

        public void Dispose()
        {
            if (owned is not null)
            {
                owned.Dispose();
                store._transaction = null;
            }
        }
    }

    private SqliteCommand Command(string sql, params (string Name, object Value)[] parameters)
    {
        var cmd = _db.CreateCommand();
        cmd.Transaction = _transaction;
        cmd.CommandText = sql;
        foreach (var (n, v) in parameters)
        {
            cmd.Parameters.AddWithValue(n, v);
        }

        return cmd;
    }
}

/// <summary>The list named does not exist (the CLI's exit 67).</summary>
public sealed class NoSuchListException(string message) : InvalidOperationException(message);

/// <summary>A list of that name exists already (the CLI's exit 73).</summary>
public sealed class ListExistsException(string message) : InvalidOperationException(message);

/// <summary>The list database file cannot be used (empty, or not SQLite): one line naming it, never a new empty database in its place.</summary>
public sealed class DatabaseUnusableException(string message, Exception? inner = null) : InvalidOperationException(message, inner);

/// <summary>The database opened read-only (its mode, its -shm's, a read-only mount): a permission (77; inject 75).</summary>
public sealed class DatabaseReadOnlyException(string message) : UnauthorizedAccessException(message);
