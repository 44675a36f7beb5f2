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
    // A step is either plain DDL (CREATE ... IF NOT EXISTS) or "COLUMN table name definition",
    // which adds the column when the table does not have it yet.
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
