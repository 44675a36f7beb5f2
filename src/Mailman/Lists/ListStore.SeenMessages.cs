// What each list took in lately, by Message-ID (a week) or, for mail without a usable one, by
// its content (an hour): a post, or owner mail, that the list already took from another queue
// entry is a duplicate (Sympa's msgid table). One SMTP transaction to dev+1@ ... dev+30@
// (Postfix's recipient_delimiter brings each to the list) or thirty pipe runs of one message were
// thirty posts, every member getting each (review 110); without a Message-ID too (review 111).
// The entry that first carried the key is kept with it: the same entry taken up again (after a
// crash, or unshunted: entries keep their names) is no duplicate of itself.
using System.Security.Cryptography;
using System.Text;
using MimeKit;
using MimeKit.Utils;

namespace Mailman.Lists;

/// <summary>What a list takes in by Message-ID, each kind on its own.</summary>
public static class SeenKind
{
    public const string Post = "post";
    public const string Owner = "owner";
}

/// <summary>The entry that first carried a message to a list, and when.</summary>
public sealed record SeenMessage(string Entry, DateTimeOffset Seen);

/// <summary>What identifies a message for <see cref="ListStore.SeenBefore"/>, and how long it is remembered.</summary>
public sealed record SeenKey(string Key, TimeSpan Life, string Shown)
{
    /// <summary>How long a list remembers a Message-ID it took in.</summary>
    public static readonly TimeSpan MessageIdLife = TimeSpan.FromDays(7);

    /// <summary>
    /// How long it remembers a message without one by its content: long enough for every copy an
    /// MTA fans out, short enough that a script's identical daily mail is not taken for a copy.
    /// </summary>
    public static readonly TimeSpan ContentLife = TimeSpan.FromHours(1);

    // Enough of a body to tell posts apart; its length is counted whole.
    private const int HashedBody = 1 << 20;

    /// <summary>
    /// The key of a message whose Message-ID is <paramref name="messageId"/> (as intake read it),
    /// or, without a usable one ("&lt; &gt;", "(comment)", no '@'), of its content as
    /// <paramref name="open"/> reads it: From:, Subject:, Date: and the body. Null when neither
    /// can be had.
    /// </summary>
    public static SeenKey? Of(string? messageId, Func<Stream> open)
    {
        if (ById(messageId) is { } key)
        {
            return key;
        }

        using var stream = open();
        HeaderList headers;
        try
        {
            headers = HeaderList.Load(stream);
        }
        catch (FormatException)
        {
            return null;
        }

        // An entry written without intake's reading of it (none is, but a test's or an older one).
        return messageId is null && ById(headers[HeaderId.MessageId]) is { } read ? read
            : new SeenKey("content:" + Content(headers, stream), ContentLife, "(none; by its content)");
    }

    private static SeenKey? ById(string? messageId)
        => !string.IsNullOrWhiteSpace(messageId) && MimeUtils.ParseMessageId(messageId) is { Length: > 0 } id && id.Contains('@', StringComparison.Ordinal)
            // Hashed: an id of any length (a header of megabytes) is one short key.
            ? new SeenKey("id:" + Hash(Encoding.UTF8.GetBytes(id)), MessageIdLife, id)
            : null;

    // The header fields every copy shares (not Received:, Delivered-To:, X-Original-To:, which an
    // MTA writes per recipient) and the body as it came.
    private static string Content(HeaderList headers, Stream stream)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var id in (ReadOnlySpan<HeaderId>)[HeaderId.From, HeaderId.Subject, HeaderId.Date])
        {
            sha.AppendData(headers[id] is { } value ? Encoding.UTF8.GetBytes(value.Trim()) : []);
            sha.AppendData("\0"u8);
        }

        // HeaderList.Load reads ahead: the body (after the first empty line) is found again from
        // the start, and read no further than is hashed (a post of 300 MB is not read whole).
        stream.Position = 0;
        var buffer = new byte[81920];
        var lineStart = true;
        long offset = 0; // of the buffer's first byte
        long bodyStart = -1;
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            var from = 0;
            for (; bodyStart < 0 && from < read; from++)
            {
                var b = buffer[from];
                if (b == (byte)'\n')
                {
                    bodyStart = lineStart ? offset + from + 1 : -1;
                    lineStart = true;
                }
                else if (b != (byte)'\r')
                {
                    lineStart = false;
                }
            }

            if (bodyStart >= 0)
            {
                var take = (int)Math.Clamp(bodyStart + HashedBody - (offset + from), 0, read - from);
                sha.AppendData(buffer.AsSpan(from, take));
                if (take < read - from)
                {
                    break;
                }
            }

            offset += read;
        }

        sha.AppendData(BitConverter.GetBytes(bodyStart < 0 ? 0 : stream.Length - bodyStart));
        return Convert.ToBase64String(sha.GetHashAndReset());
    }

    private static string Hash(byte[] bytes) => Convert.ToBase64String(SHA256.HashData(bytes));
}

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
            expires TEXT NOT NULL,
            PRIMARY KEY (list_id, kind, message_key))
        """,
        "CREATE INDEX IF NOT EXISTS seen_messages_expires ON seen_messages (list_id, expires)",
    ];

    /// <summary>
    /// Records that <paramref name="entry"/> brings the message <paramref name="key"/> names to
    /// the list as <paramref name="kind"/> (post, owner), atomically, unless another entry
    /// brought it within the key's life: then that entry is returned and nothing is recorded.
    /// </summary>
    public SeenMessage? SeenBefore(ListName list, string kind, SeenKey key, string entry, DateTimeOffset now)
    {
        using var tx = Begin();
        var listId = ListId(list);
        using (var cleanup = Command("DELETE FROM seen_messages WHERE list_id = $list AND expires < $now", ("$list", listId), ("$now", Timestamp(now))))
        {
            cleanup.ExecuteNonQuery();
        }

        using (var insert = Command("""
            INSERT INTO seen_messages (list_id, kind, message_key, entry, seen, expires) VALUES ($list, $kind, $key, $entry, $now, $expires)
            ON CONFLICT (list_id, kind, message_key) DO NOTHING
            """, ("$list", listId), ("$kind", kind), ("$key", key.Key), ("$entry", entry), ("$now", Timestamp(now)), ("$expires", Timestamp(now + key.Life))))
        {
            if (insert.ExecuteNonQuery() > 0)
            {
                tx.Commit();
                return null;
            }
        }

        SeenMessage first;
        using (var query = Command("SELECT entry, seen FROM seen_messages WHERE list_id = $list AND kind = $kind AND message_key = $key", ("$list", listId), ("$kind", kind), ("$key", key.Key)))
        using (var reader = query.ExecuteReader())
        {
            reader.Read();
            first = new SeenMessage(reader.GetString(0), ReadTimestamp(reader, 1) ?? now);
        }

        tx.Commit();
        return first.Entry == entry ? null : first;
    }

    /// <summary>
    /// Forgets what <paramref name="entry"/> brought to the list as <paramref name="kind"/>: the
    /// same message may come again (a post the moderators rejected, sent again after a fix).
    /// </summary>
    public void ForgetSeen(ListName list, string kind, string entry)
    {
        using var delete = Command("DELETE FROM seen_messages WHERE list_id = (SELECT id FROM lists WHERE fqdn = $fqdn) AND kind = $kind AND entry = $entry",
            ("$fqdn", list.Fqdn), ("$kind", kind), ("$entry", entry));
        delete.ExecuteNonQuery();
    }

    // What a held post brought stays until the moderators decide: held longer than its key's
    // life (a week; max_days_to_hold is for ever by default), its resend would be held again,
    // and two approvals would deliver it twice. Entry names are unique across lists and kinds.
    private const string WhileHeld = "9999-12-31T23:59:59.999Z";

    /// <summary>Keeps what <paramref name="entry"/> brought as <paramref name="kind"/> remembered while it is held.</summary>
    /// <returns>How many records it has (0: none, the check failed open or the database is older).</returns>
    public int KeepSeen(string kind, string entry)
    {
        using var update = Command("UPDATE seen_messages SET expires = $held WHERE kind = $kind AND entry = $entry",
            ("$held", WhileHeld), ("$kind", kind), ("$entry", entry));
        return update.ExecuteNonQuery();
    }

    /// <summary>Records that the held <paramref name="entry"/> brings <paramref name="key"/>, kept while it is held, unless another entry brought it.</summary>
    public void RememberHeld(ListName list, string kind, SeenKey key, string entry, DateTimeOffset seen)
    {
        using var insert = Command("""
            INSERT INTO seen_messages (list_id, kind, message_key, entry, seen, expires) VALUES ($list, $kind, $key, $entry, $seen, $held)
            ON CONFLICT (list_id, kind, message_key) DO NOTHING
            """, ("$list", ListId(list)), ("$kind", kind), ("$key", key.Key), ("$entry", entry), ("$seen", Timestamp(seen)), ("$held", WhileHeld));
        insert.ExecuteNonQuery();
    }

    /// <summary>
    /// Remembers what the held <paramref name="entry"/> brought for its key's life from
    /// <paramref name="now"/> (approved: the list took it in now; or gone from hold).
    /// </summary>
    public void ReleaseSeen(string entry, DateTimeOffset now)
    {
        using var update = Command("UPDATE seen_messages SET expires = CASE WHEN message_key LIKE 'id:%' THEN $byId ELSE $byContent END WHERE entry = $entry AND expires = $held",
            ("$byId", Timestamp(now + SeenKey.MessageIdLife)), ("$byContent", Timestamp(now + SeenKey.ContentLife)), ("$held", WhileHeld), ("$entry", entry));
        update.ExecuteNonQuery();
    }

    /// <summary>The entries whose records are kept while held, taken in before <paramref name="before"/>.</summary>
    public IReadOnlyList<string> HeldSeenEntries(DateTimeOffset before)
    {
        var entries = new List<string>();
        using var query = Command("SELECT DISTINCT entry FROM seen_messages WHERE expires = $held AND seen < $before", ("$held", WhileHeld), ("$before", Timestamp(before)));
        using var reader = query.ExecuteReader();
        while (reader.Read())
        {
            entries.Add(reader.GetString(0));
        }

        return entries;
    }
}
