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
    // the column when the table does not have it yet, or "DATA name", a named rewrite of rows
    // that, like the others, changes nothing when run again.
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
        "DATA address-keys-idna",
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
                else
                {
                    Execute(step, tx);
                }
            }

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
                Rekey(tx, "members", "address_key", ["list_id"], Survivor.First, "");
                Rekey(tx, "roles", "address_key", ["list_id", "role"], Survivor.First, "");
                Rekey(tx, "pending", "key", ["list_id", "kind"], Survivor.Latest,
                    $" AND kind IN ('{PendingKind.Subscribe}', '{PendingKind.Unsubscribe}', '{PendingKind.ModerateSubscription}')");
                Rekey(tx, "autoresponses", "address_key", ["list_id", "day"], Survivor.Sum, "");
                break;
            default:
                throw new InvalidOperationException($"unknown data step {name}");
        }
    }

    // Which row stays where the old and the new key are both there: the first (adding a member
    // who is one leaves the first subscription as it is), the latest (a renewed request voids the
    // earlier token), or the one holding the sum of both counts.
    private enum Survivor { First, Latest, Sum }

    // Re-keys the rows whose key has a character outside printable ASCII (only those can change)
    // by AddressKey, within the rows that share the scope columns.
    private void Rekey(SqliteTransaction tx, string table, string keyColumn, string[] scope, Survivor survivor, string where)
    {
        var rows = new List<(long RowId, object[] Scope, string Key)>();
        using (var select = _db.CreateCommand())
        {
            select.Transaction = tx;
            select.CommandText = $"SELECT rowid, {string.Join(", ", scope)}, {keyColumn} FROM {table} WHERE {keyColumn} GLOB '*[^ -~]*'{where}";
            using var reader = select.ExecuteReader();
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

            using var cmd = _db.CreateCommand();
            cmd.Transaction = tx;
            for (var i = 0; i < scope.Length; i++)
            {
                cmd.Parameters.AddWithValue($"$s{i}", values[i]);
            }

            cmd.Parameters.AddWithValue("$row", rowId);
            cmd.Parameters.AddWithValue("$key", newKey);
            cmd.CommandText = $"SELECT rowid FROM {table} WHERE {sameScope} AND {keyColumn} = $key";
            var other = cmd.ExecuteScalar() as long?;
            cmd.CommandText = (other, survivor) switch
            {
                (null, _) => $"UPDATE {table} SET {keyColumn} = $key WHERE rowid = $row",
                (_, Survivor.Sum) => $"UPDATE {table} SET count = count + (SELECT count FROM {table} WHERE rowid = $row) WHERE {sameScope} AND {keyColumn} = $key; DELETE FROM {table} WHERE rowid = $row",
                (long o, Survivor.First) when o < rowId => $"DELETE FROM {table} WHERE rowid = $row",
                (long o, Survivor.Latest) when o > rowId => $"DELETE FROM {table} WHERE rowid = $row",
                _ => $"DELETE FROM {table} WHERE {sameScope} AND {keyColumn} = $key; UPDATE {table} SET {keyColumn} = $key WHERE rowid = $row",
            };
            cmd.ExecuteNonQuery();
        }
    }

    private long UserVersion(SqliteTransaction? tx = null)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "PRAGMA user_version";
        return (long)cmd.ExecuteScalar()!;
    }

    private void Execute(string sql, SqliteTransaction tx)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }
}
