// The database schema, as idempotent steps. Each feature owns its tables (lists and members
// here; roles, pending requests, automatic-reply counts and member status in their own files).
// Opening the store applies the steps only when the schema text changed since the database
// last saw it (its hash is kept in PRAGMA user_version), inside one IMMEDIATE transaction, so
// two processes opening an old database at once cannot both migrate it.
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.Sqlite;

namespace Mailman.Lists;

public sealed partial class ListStore
{
    // A step is plain DDL (CREATE ... IF NOT EXISTS), "COLUMN table name definition", which adds
    // the column when the table does not have it yet, "DATA name", a named rewrite of rows
    // that, like the others, changes nothing when run again, or "FORMAT name", which changes
    // nothing here: it marks a change of what the queues hold (an entry's or a checkpoint's
    // format) that an older build would misread, so that, counted as a step, such a build
    // refuses the instance (review 74: a build from before the batch window resumed a newer
    // checkpoint with a one-chunk window, skipped 48 of 5,000 members and sent 2,356 twice).
    private static readonly string[] SchemaSteps =
    [
        """
        CREATE TABLE IF NOT EXISTS lists (
            id INTEGER PRIMARY KEY,
            fqdn TEXT NOT NULL UNIQUE,
            settings TEXT NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS members (
            id INTEGER PRIMARY KEY,
            list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
            address TEXT NOT NULL,
            address_key TEXT NOT NULL,
            display_name TEXT NOT NULL DEFAULT '',
            delivery_enabled INTEGER NOT NULL DEFAULT 1,
            UNIQUE (list_id, address_key))
        """,
        .. MemberStatusSchema,
        .. RolesSchema,
        .. PendingSchema,
        .. AutoresponseSchema,
        MergedRowsSchema,
        .. OwedNoticeSchema,
        "DATA address-keys-idna",

        // How many of these steps the database has seen: a build that knows fewer is older
        // (review 42: an older build took a newer database without a word, undid its keys'
        // normalisation by writing rows the newer one merges, and set its own hash).
        "CREATE TABLE IF NOT EXISTS schema_steps (id INTEGER PRIMARY KEY CHECK (id = 1), steps INTEGER NOT NULL)",

        // The delivery checkpoint's first record gives the batch window ("C size max window").
        "FORMAT checkpoint-batch-window",
        .. SeenMessageSchema,

        // A held post's record expires at the end of 9999 until the moderators decide (an older
        // build would never let it go), found by its entry.
        "FORMAT seen-messages-kept-while-held",
        "CREATE INDEX IF NOT EXISTS seen_messages_entry ON seen_messages (entry)",

        // Requests used by a confirmation, and notices kept a week once paid: the confirming
        // entry, run again after a kill, finds what it did and answers as its first run did
        // (reviews 125, 126: "token unknown" to a person just subscribed, a confirm_then_moderate
        // request lost, a moderator's rejection never sent).
        .. UsedRequestSchema,
        "COLUMN owed_notices paid TEXT",
        "COLUMN owed_notices sent INTEGER",

        // The reason a moderator's refusal of a subscription gives, owed in the use of its
        // request: `pending discard N --reason R` killed after the use lost it.
        "COLUMN owed_notices reason TEXT",
    ];

    private static readonly int SchemaVersion = (int)(BinaryPrimitives.ReadUInt32BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n;\n", SchemaSteps)))) & 0x7fffffff);

    private void EnsureSchema()
    {
        if (UserVersion() == SchemaVersion)
        {
            return;
        }

        // IMMEDIATE: the write lock is taken before the check, so a concurrent opener waits here.
        using var tx = _db.BeginTransaction(deferred: false);
        if (UserVersion(tx) != SchemaVersion)
        {
            if (StepsSeen(tx) is { } seen && seen > SchemaSteps.Length)
            {
                throw new DatabaseUnusableException($"the list database {_db.DataSource} was brought up to date by a newer mailman ({seen} schema steps; this one knows {SchemaSteps.Length}): "
                    + "run that version, or restore a backup taken before it was first used; nothing was changed");
            }

            foreach (var step in SchemaSteps)
            {
                if (step.StartsWith("COLUMN ", StringComparison.Ordinal))
                {
                    var parts = step.Split(' ', 4);
                    EnsureColumn(parts[1], parts[2], parts[3], tx);
                }
                else if (step.StartsWith("DATA ", StringComparison.Ordinal))
                {
                    RewriteData(step[5..], tx);
                }
                else if (step.StartsWith("FORMAT ", StringComparison.Ordinal))
                {
                    // Counted only.
                }
                else
                {
                    Execute(step, tx);
                }
            }

            Execute($"INSERT OR REPLACE INTO schema_steps (id, steps) VALUES (1, {SchemaSteps.Length})", tx);
            Execute($"PRAGMA user_version = {SchemaVersion}", tx);
        }

        tx.Commit();
    }

    private void EnsureColumn(string table, string column, string definition, SqliteTransaction tx)
    {
        using var info = _db.CreateCommand();
        info.Transaction = tx;
        info.CommandText = $"SELECT 1 FROM pragma_table_info('{table}') WHERE name = $name";
        info.Parameters.AddWithValue("$name", column);
        if (info.ExecuteScalar() is null)
        {
            Execute($"ALTER TABLE {table} ADD COLUMN {column} {definition}", tx);
        }
    }

    private void RewriteData(string name, SqliteTransaction tx)
    {
        switch (name)
        {
            case "address-keys-idna":
                // Keys written before an internationalized domain was keyed by its A-labels:
                // x@bücher.example and x@xn--bcher-kva.example were two members, two copies.
                // Of two rows now one, the member who was getting mail stays (the first such),
                // with the stricter moderation action of the two; the first role; the pending
                // request created last (its token is the one mailed last); the day's counts add
                // up. What a merge dropped is kept, as JSON, in merged_rows.
                Rekey(tx, "members", "address_key", ["list_id"], "delivery_enabled DESC, rowid");
                Rekey(tx, "roles", "address_key", ["list_id", "role"], "rowid");
                Rekey(tx, "pending", "key", ["list_id", "kind"], "created DESC, rowid DESC",
                    $" AND kind IN ('{PendingKind.Subscribe}', '{PendingKind.Unsubscribe}', '{PendingKind.ModerateSubscription}')");
                Rekey(tx, "autoresponses", "address_key", ["list_id", "day"], null);
                break;
            default:
                throw new InvalidOperationException($"unknown data step {name}");
        }
    }

    // What a data step's merge of two rows dropped (table, the row kept, the dropped row as JSON).
    private const string MergedRowsSchema = """
        CREATE TABLE IF NOT EXISTS merged_rows (
            id INTEGER PRIMARY KEY,
            table_name TEXT NOT NULL,
            kept_rowid INTEGER NOT NULL,
            dropped TEXT NOT NULL,
            merged_at TEXT NOT NULL)
        """;

    /// <summary>
    /// The subscription serials of rows a re-keying merged into <paramref name="address"/>'s
    /// subscription: the one-click links in copies sent to the dropped spelling carry them. Not
    /// after a new subscription (it voids every earlier link, as a new serial does).
    /// </summary>
    public IReadOnlyList<string> MergedSerials(ListName list, string address)
    {
        var key = AddressKey(address);
        var listId = ListId(list);
        using var cmd = Command("""
            SELECT json_extract(dropped, '$.address_key'), json_extract(dropped, '$.serial') FROM merged_rows
            WHERE table_name = 'members' AND json_extract(dropped, '$.list_id') = $listText
              AND merged_at > (SELECT coalesce(joined_at, '') FROM members WHERE list_id = $list AND address_key = $key)
            """, ("$listText", listId.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("$list", listId), ("$key", key));
        using var reader = cmd.ExecuteReader();
        var serials = new List<string>();
        while (reader.Read())
        {
            if (!reader.IsDBNull(0) && !reader.IsDBNull(1) && AddressKey(reader.GetString(0)) == key)
            {
                serials.Add(reader.GetString(1));
            }
        }

        return serials;
    }

    // Moderation actions from the most lenient to the strictest.
    private const string ActionRank = "CASE moderation_action WHEN 'accept' THEN 0 WHEN 'defer' THEN 1 WHEN 'hold' THEN 2 WHEN 'reject' THEN 3 ELSE 4 END";

    // Re-keys the rows whose key has a character outside printable ASCII (only those can change)
    // by AddressKey, within the rows that share the scope columns. Where the new key is taken,
    // the row first by survivorOrder stays and the other is dropped (null: the counts add up).
    private void Rekey(SqliteTransaction tx, string table, string keyColumn, string[] scope, string? survivorOrder, string where = "")
    {
        var rows = new List<(long RowId, object[] Scope, string Key)>();
        using (var select = Command(tx, $"SELECT rowid, {string.Join(", ", scope)}, {keyColumn} FROM {table} WHERE {keyColumn} GLOB '*[^ -~]*'{where}"))
        using (var reader = select.ExecuteReader())
        {
            while (reader.Read())
            {
                rows.Add((reader.GetInt64(0), [.. scope.Select((_, i) => reader.GetValue(i + 1))], reader.GetString(scope.Length + 1)));
            }
        }

        var sameScope = string.Join(" AND ", scope.Select((c, i) => $"{c} = $s{i}"));
        foreach (var (rowId, values, key) in rows)
        {
            var newKey = AddressKey(key);
            if (newKey == key)
            {
                continue;
            }

            using var exists = Command(tx, $"SELECT 1 FROM {table} WHERE rowid = $row");
            exists.Parameters.AddWithValue("$row", rowId);
            if (exists.ExecuteScalar() is null)
            {
                continue; // merged away by an earlier row of this pass (a junk key another's became)
            }

            using var cmd = Command(tx, $"SELECT rowid FROM {table} WHERE {sameScope} AND {keyColumn} = $key");
            for (var i = 0; i < scope.Length; i++)
            {
                cmd.Parameters.AddWithValue($"$s{i}", values[i]);
            }

            cmd.Parameters.AddWithValue("$key", newKey);
            if (cmd.ExecuteScalar() is not long other)
            {
                Run(tx, $"UPDATE {table} SET {keyColumn} = $key WHERE rowid = $row", ("$key", newKey), ("$row", rowId));
                continue;
            }

            if (survivorOrder is null)
            {
                Run(tx, $"UPDATE {table} SET count = count + (SELECT count FROM {table} WHERE rowid = $row) WHERE rowid = $other; DELETE FROM {table} WHERE rowid = $row",
                    ("$row", rowId), ("$other", other));
                continue;
            }

            using var pick = Command(tx, $"SELECT rowid FROM {table} WHERE rowid IN ($row, $other) ORDER BY {survivorOrder} LIMIT 1");
            pick.Parameters.AddWithValue("$row", rowId);
            pick.Parameters.AddWithValue("$other", other);
            var kept = (long)pick.ExecuteScalar()!;
            var dropped = kept == rowId ? other : rowId;
            Run(tx, "INSERT INTO merged_rows (table_name, kept_rowid, dropped, merged_at) VALUES ($table, $kept, $row, $now)",
                ("$table", table), ("$kept", kept), ("$row", RowJson(tx, table, dropped)), ("$now", Timestamp(DateTimeOffset.UtcNow)));
            if (table == "members")
            {
                // The stricter moderation action, the higher bounce score with its date, and a
                // probe the dropped spelling waits on (its bounce must still find the member).
                Run(tx, $"""
                    UPDATE members SET moderation_action = (SELECT moderation_action FROM members WHERE rowid IN ($kept, $dropped) ORDER BY {ActionRank} DESC LIMIT 1) WHERE rowid = $kept;
                    UPDATE members SET (bounce_score, last_bounce) = (SELECT bounce_score, last_bounce FROM members WHERE rowid = $dropped)
                        WHERE rowid = $kept AND bounce_score < (SELECT bounce_score FROM members WHERE rowid = $dropped);
                    UPDATE members SET (probe_token, probe_sent) = (SELECT probe_token, probe_sent FROM members WHERE rowid = $dropped)
                        WHERE rowid = $kept AND probe_token IS NULL;
                    """, ("$kept", kept), ("$dropped", dropped));
            }

            Run(tx, $"DELETE FROM {table} WHERE rowid = $dropped; UPDATE {table} SET {keyColumn} = $key WHERE rowid = $kept",
                ("$dropped", dropped), ("$kept", kept), ("$key", newKey));
        }
    }

    // One row, every column, as a JSON object.
    private string RowJson(SqliteTransaction tx, string table, long rowId)
    {
        using var cmd = Command(tx, $"SELECT * FROM {table} WHERE rowid = $row");
        cmd.Parameters.AddWithValue("$row", rowId);
        using var reader = cmd.ExecuteReader();
        reader.Read();
        var row = new System.Text.Json.Nodes.JsonObject();
        for (var i = 0; i < reader.FieldCount; i++)
        {
            row[reader.GetName(i)] = reader.IsDBNull(i) ? null : System.Text.Json.Nodes.JsonValue.Create(reader.GetValue(i).ToString());
        }

        return row.ToJsonString();
    }

    private SqliteCommand Command(SqliteTransaction tx, string sql)
    {
        var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        return cmd;
    }

    private void Run(SqliteTransaction tx, string sql, params (string Name, object Value)[] parameters)
    {
        using var cmd = Command(tx, sql);
        foreach (var (n, v) in parameters)
        {
            cmd.Parameters.AddWithValue(n, v);
        }

        cmd.ExecuteNonQuery();
    }

    private long? StepsSeen(SqliteTransaction tx)
    {
        using var cmd = Command(tx, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_steps'");
        if (cmd.ExecuteScalar() is null)
        {
            return null;
        }

        using var steps = Command(tx, "SELECT steps FROM schema_steps WHERE id = 1");
        return steps.ExecuteScalar() as long?;
    }

    private long UserVersion(SqliteTransaction? tx = null)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "PRAGMA user_version";
        return (long)cmd.ExecuteScalar()!;
    }

    private void Execute(string sql, SqliteTransaction tx) => Run(tx, sql);
}
