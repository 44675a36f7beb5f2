// The Message-IDs each list took in, for a week: a post, or owner mail, whose Message-ID the list
// already took from another queue entry is a duplicate (Sympa's msgid table). One SMTP
// transaction to dev+1@ ... dev+30@ (Postfix's recipient_delimiter brings each to the list) or
// thirty pipe runs of one message were thirty posts, every member getting each (review 110).
// The entry that first carried the id is kept with it: the same entry taken up again (after a
// crash, or unshunted: entries keep their names) is no duplicate of itself.
using System.Security.Cryptography;
using System.Text;

namespace Mailman.Lists;

/// <summary>What a list takes in by Message-ID, each kind on its own.</summary>
public static class SeenKind
{
    public const string Post = "post";
    public const string Owner = "owner";
}

/// <summary>The entry that first carried a Message-ID to a list, and when.</summary>
public sealed record SeenMessage(string Entry, DateTimeOffset Seen);

public sealed partial class ListStore
{
    private static string[] SeenMessageSchema =>
    [
        """
        CREATE TABLE IF NOT EXISTS seen_messages (
            list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            message_key TEXT NOT NULL,
            entry TEXT NOT NULL,
            seen TEXT NOT NULL,
            PRIMARY KEY (list_id, kind, message_key))
        """,
        "CREATE INDEX IF NOT EXISTS seen_messages_seen ON seen_messages (list_id, seen)",
    ];

    /// <summary>How long a list remembers a Message-ID it took in.</summary>
    public static readonly TimeSpan SeenMessageLife = TimeSpan.FromDays(7);

    /// <summary>
    /// Records that <paramref name="entry"/> brings <paramref name="messageId"/> to the list as
    /// <paramref name="kind"/> (post, owner), atomically, unless another entry brought it within
    /// <see cref="SeenMessageLife"/>: then that entry is returned and nothing is recorded.
    /// </summary>
    public SeenMessage? SeenBefore(ListName list, string kind, string messageId, string entry, DateTimeOffset now)
    {
        using var tx = Begin();
        var listId = ListId(list);
        using (var cleanup = Command("DELETE FROM seen_messages WHERE list_id = $list AND seen < $old", ("$list", listId), ("$old", Timestamp(now - SeenMessageLife))))
        {
            cleanup.ExecuteNonQuery();
        }

        // Hashed: an id of any length (a header of megabytes) is one short key.
        var key = Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(messageId)));
        using (var insert = Command("""
            INSERT INTO seen_messages (list_id, kind, message_key, entry, seen) VALUES ($list, $kind, $key, $entry, $now)
            ON CONFLICT (list_id, kind, message_key) DO NOTHING
            """, ("$list", listId), ("$kind", kind), ("$key", key), ("$entry", entry), ("$now", Timestamp(now))))
        {
            if (insert.ExecuteNonQuery() > 0)
            {
                tx.Commit();
                return null;
            }
        }

        SeenMessage first;
        using (var query = Command("SELECT entry, seen FROM seen_messages WHERE list_id = $list AND kind = $kind AND message_key = $key", ("$list", listId), ("$kind", kind), ("$key", key)))
        using (var reader = query.ExecuteReader())
        {
            reader.Read();
            first = new SeenMessage(reader.GetString(0), ReadTimestamp(reader, 1) ?? now);
        }

        tx.Commit();
        return first.Entry == entry ? null : first;
    }
}
