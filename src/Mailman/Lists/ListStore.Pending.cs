// Requests that wait for someone: a subscription or unsubscription to be confirmed by the
// address, one to be approved by a moderator, a held post to be reviewed. Each carries a random
// token (128 bits, sent by mail or shown to a moderator) of which only the SHA-256 hash is
// stored; a token is single use and expires.
using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.Sqlite;

namespace Mailman.Lists;

/// <summary>What a pending request waits for.</summary>
public static class PendingKind
{
    /// <summary>The address confirms its subscription.</summary>
    public const string Subscribe = "subscribe";

    /// <summary>The address confirms its unsubscription.</summary>
    public const string Unsubscribe = "unsubscribe";

    /// <summary>A moderator approves a subscription.</summary>
    public const string ModerateSubscription = "moderate-subscribe";

    /// <summary>A moderator reviews a held post (the key is its hold queue entry name).</summary>
    public const string HeldPost = "held-post";
}

/// <summary>
/// A pending request as stored (without its token: only the hash is kept).
/// <see cref="Replayed"/>: one this queue entry used already
/// (it is run again after a kill), with what its use did (<see cref="ListStore.UsedOutcome"/>).
/// </summary>
public sealed record PendingRequest(
    long Id, ListName List, string Kind, string Key, string Address, string DisplayName, string Data, DateTimeOffset Created, DateTimeOffset Expires,
    string? Replayed = null);

public sealed partial class ListStore
{
    private static string[] PendingSchema =>
    [
        """
        CREATE TABLE IF NOT EXISTS pending (
            id INTEGER PRIMARY KEY,
            list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            address TEXT NOT NULL,
            display_name TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL DEFAULT '',
            token_hash TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL,
            expires TEXT NOT NULL,
            UNIQUE (list_id, kind, key))
        """,

        // The highest number a request was ever given: `pending confirm N` names a request by its
        // number, and SQLite gives a deleted row's number to the next (review 77: after the
        // newest request went, the next one was 1 again, and a moderator acting on an older
        // `pending list` would have confirmed another request).
        "CREATE TABLE IF NOT EXISTS pending_last_id (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)",
    ];

    private static string[] UsedRequestSchema =>
    [
        """
        CREATE TABLE IF NOT EXISTS used_requests (
            token_hash TEXT PRIMARY KEY,
            trigger TEXT NOT NULL,
            list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            address TEXT NOT NULL,
            display_name TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL DEFAULT '',
            used TEXT NOT NULL)
        """,
    ];

    /// <summary>True for text that has the shape of a token (32 lower-case hex digits).</summary>
    public static bool IsTokenShaped(string? token)
        => token is { Length: 32 } && token.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');

    /// <summary>
    /// Creates the request (list, kind, key), or renews the one that exists: a second request
    /// never makes a second entry; it gets a fresh token (the old one stops working) and a
    /// fresh expiry. Returns the token, which is not stored and cannot be recovered later.
    /// <paramref name="token"/> is one the caller derived (a secret HMAC of the request's queue
    /// entry, so a crashed run that is repeated stores the token it already mailed); null: random.
    /// </summary>
    public (string Token, bool Renewed) UpsertPending(ListName list, string kind, string key, string address, string displayName, string data, DateTimeOffset now, DateTimeOffset expires, string? token = null)
    {
        if (token is not null && !IsTokenShaped(token))
        {
            throw new ArgumentException("a token is 32 lower-case hex digits", nameof(token));
        }

        token ??= Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        using var tx = Begin();
        var listId = ListId(list);
        var mark = ReadPendingMark();
        using var find = Command("SELECT id FROM pending WHERE list_id = $list AND kind = $kind AND key = $key", ("$list", listId), ("$kind", kind), ("$key", key));
        var existing = find.ExecuteScalar();
        using var write = existing is long id
            ? Command("UPDATE pending SET token_hash = $hash, address = $address, display_name = $name, data = $data, created = $now, expires = $expires WHERE id = $id",
                ("$id", id), ("$hash", Hash(token)), ("$address", address), ("$name", Member.Sanitize(displayName)), ("$data", data), ("$now", Timestamp(now)), ("$expires", Timestamp(expires)))
            : Command("""
                INSERT INTO pending (id, list_id, kind, key, address, display_name, data, token_hash, created, expires)
                VALUES (max((SELECT coalesce(max(id), 0) FROM pending), (SELECT coalesce(max(last), 0) FROM pending_last_id), $mark) + 1,
                    $list, $kind, $key, $address, $name, $data, $hash, $now, $expires);
                INSERT INTO pending_last_id (id, last) VALUES (1, last_insert_rowid()) ON CONFLICT (id) DO UPDATE SET last = excluded.last;
                """, ("$list", listId), ("$kind", kind), ("$key", key), ("$address", address), ("$name", Member.Sanitize(displayName)), ("$data", data),
                ("$hash", Hash(token)), ("$now", Timestamp(now)), ("$expires", Timestamp(expires)), ("$mark", mark));
        write.ExecuteNonQuery();
        if (existing is null)
        {
            using var last = Command("SELECT last FROM pending_last_id WHERE id = 1");
            WritePendingMark((long)last.ExecuteScalar()!, mark);
        }

        tx.Commit();
        return (token, existing is not null);
    }

    /// <summary>var/pending.last: the highest request number given, outside the database.</summary>
    public const string PendingMarkFile = "pending.last";

    // The database keeps the highest number given (pending_last_id), but a database restored from
    // a backup has the backup's, and numbers given since were given again: `pending confirm N`
    // from a listing taken before the restore acted on another request (review 98). The mark
    // beside the database survives the restore. Written under the write transaction (so two
    // writers never read the same mark), before the commit: a crash between leaves a gap, never
    // a number twice. Best effort: the database's own count still holds without a restore.
    private readonly string? _pendingMark;

    private long ReadPendingMark()
    {
        try
        {
            return _pendingMark is not null && File.Exists(_pendingMark)
                && long.TryParse(File.ReadAllText(_pendingMark).Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var mark)
                ? mark : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    private void WritePendingMark(long last, long mark)
    {
        if (_pendingMark is null || last <= mark)
        {
            return;
        }

        var temp = _pendingMark + ".tmp";
        try
        {
            File.WriteAllText(temp, last.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(temp, _pendingMark, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>The live request a token names, or null (unknown, malformed, or expired at <paramref name="now"/>).</summary>
    public PendingRequest? FindPending(string token, DateTimeOffset now)
    {
        if (!IsTokenShaped(token))
        {
            return null;
        }

        using var cmd = Command(PendingSelect + " WHERE p.token_hash = $hash AND p.expires > $now", ("$hash", Hash(token)), ("$now", Timestamp(now)));
        return ReadPending(cmd).FirstOrDefault();
    }

    /// <summary>The request (list, kind, key), live or expired, or null.</summary>
    public PendingRequest? FindPending(ListName list, string kind, string key)
    {
        using var cmd = Command(PendingSelect + " WHERE l.fqdn = $fqdn AND p.kind = $kind AND p.key = $key", ("$fqdn", list.Fqdn), ("$kind", kind), ("$key", key));
        return ReadPending(cmd).FirstOrDefault();
    }

    /// <summary>Every request, or those of one list, oldest first.</summary>
    public IReadOnlyList<PendingRequest> PendingRequests(ListName? list = null)
    {
        using var cmd = list is null
            ? Command(PendingSelect + " ORDER BY p.id")
            : Command(PendingSelect + " WHERE l.fqdn = $fqdn ORDER BY p.id", ("$fqdn", list.Fqdn));
        return ReadPending(cmd).ToList();
    }

    /// <summary>Removes a request: used (single use), discarded or expired.</summary>
    /// <returns>False when it was gone already (someone else used it first).</returns>
    public bool DeletePending(long id)
    {
        using var cmd = Command("DELETE FROM pending WHERE id = $id", ("$id", id));
        return cmd.ExecuteNonQuery() > 0;
    }

    /// <summary>How long a used request is remembered for the entry that used it.</summary>
    public static readonly TimeSpan UsedRequestKept = TimeSpan.FromDays(7);

    /// <summary>
    /// Uses a request (in the caller's transaction, beside what its confirmation changes):
    /// deletes it and remembers for <see cref="UsedRequestKept"/> that <paramref name="trigger"/>
    /// used it, so that the entry run again after a kill finds it (<see cref="FindUsedRequest"/>).
    /// Returns its token's hash, for <see cref="UsedOutcome"/>; null when it was gone.
    /// </summary>
    public string? TakePending(long id, string trigger, DateTimeOffset now)
    {
        using (var remember = Command("""
            DELETE FROM used_requests WHERE used < $cutoff;
            INSERT OR REPLACE INTO used_requests (token_hash, trigger, list_id, kind, key, address, display_name, data, used)
            SELECT token_hash, $trigger, list_id, kind, key, address, display_name, data, $now FROM pending WHERE id = $id;
            """, ("$id", id), ("$trigger", trigger), ("$now", Timestamp(now)), ("$cutoff", Timestamp(now - UsedRequestKept))))
        {
            remember.ExecuteNonQuery();
        }

        using var cmd = Command("DELETE FROM pending WHERE id = $id RETURNING token_hash", ("$id", id));
        return cmd.ExecuteScalar() as string;
    }

    /// <summary>What the use of the request did ("Added", "left", ...), for its replay; in the use's transaction.</summary>
    public void UsedOutcome(string tokenHash, string outcome)
    {
        using var cmd = Command("UPDATE used_requests SET outcome = $outcome WHERE token_hash = $hash", ("$hash", tokenHash), ("$outcome", outcome));
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// Makes a used request live again under its own number, with <paramref name="token"/>;
    /// false when its (list, kind, key) has a request already (made again meanwhile).
    /// </summary>
    public bool RestorePending(PendingRequest request, string token)
    {
        using var cmd = Command("""
            INSERT OR IGNORE INTO pending (id, list_id, kind, key, address, display_name, data, token_hash, created, expires)
            VALUES ($id, $list, $kind, $key, $address, $name, $data, $hash, $created, $expires)
            """, ("$id", request.Id), ("$list", ListId(request.List)), ("$kind", request.Kind), ("$key", request.Key), ("$address", request.Address),
            ("$name", Member.Sanitize(request.DisplayName)), ("$data", request.Data), ("$hash", Hash(token)), ("$created", Timestamp(request.Created)),
            ("$expires", Timestamp(request.Expires)));
        return cmd.ExecuteNonQuery() > 0;
    }

    /// <summary>What <paramref name="trigger"/>'s use of the request (kind, key) did, once it is known.</summary>
    public void UsedOutcome(string trigger, string kind, string key, string outcome)
    {
        using var cmd = Command("UPDATE used_requests SET outcome = $outcome WHERE trigger = $trigger AND kind = $kind AND key = $key",
            ("$trigger", trigger), ("$kind", kind), ("$key", key), ("$outcome", outcome));
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// Settles every provisional outcome ('?' first) of uses of the request (kind, key), another
    /// having decided it: one that begins with <paramref name="keep"/> stands (made final), any
    /// other becomes <paramref name="outcome"/>.
    /// </summary>
    public void SettleProvisionalOutcomes(string kind, string key, string? keep, string outcome)
    {
        using var cmd = Command("""
            UPDATE used_requests SET outcome = CASE WHEN $keep <> '' AND substr(outcome, 2, length($keep)) = $keep THEN substr(outcome, 2) ELSE $outcome END
            WHERE kind = $kind AND key = $key AND outcome LIKE '?%'
            """, ("$kind", kind), ("$key", key), ("$keep", keep ?? ""), ("$outcome", outcome));
        cmd.ExecuteNonQuery();
    }

    /// <summary>The entry that used the request (kind, key) last, within <see cref="UsedRequestKept"/>; null when none did.</summary>
    public string? UsedBy(string kind, string key)
    {
        using var cmd = Command("SELECT trigger FROM used_requests WHERE kind = $kind AND key = $key ORDER BY used DESC LIMIT 1", ("$kind", kind), ("$key", key));
        return cmd.ExecuteScalar() as string;
    }

    /// <summary>Forgets <paramref name="trigger"/>'s use of the request (kind, key): it is made live again.</summary>
    public void ForgetUse(string trigger, string kind, string key)
    {
        using var cmd = Command("DELETE FROM used_requests WHERE trigger = $trigger AND kind = $kind AND key = $key", ("$trigger", trigger), ("$kind", kind), ("$key", key));
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// The request of <paramref name="token"/> on <paramref name="list"/> that
    /// <paramref name="trigger"/> used (the entry is run again), with <see cref="PendingRequest.Replayed"/>
    /// set to what its use did; null for any other entry, list or token.
    /// </summary>
    public PendingRequest? FindUsedRequest(string token, string trigger, ListName list)
    {
        if (!IsTokenShaped(token))
        {
            return null;
        }

        using var cmd = Command("""
            SELECT l.fqdn, u.kind, u.key, u.address, u.display_name, u.data, u.used, u.outcome
            FROM used_requests u JOIN lists l ON l.id = u.list_id
            WHERE u.token_hash = $hash AND u.trigger = $trigger AND l.fqdn = $fqdn
            """, ("$hash", Hash(token)), ("$trigger", trigger), ("$fqdn", list.Fqdn));
        return ReadUsed(cmd);
    }

    /// <summary>
    /// The request of <paramref name="token"/> on <paramref name="list"/> as whoever used it last
    /// left it (within <see cref="UsedRequestKept"/>), with <see cref="PendingRequest.Replayed"/>
    /// set to what the use did; null when no use of it is remembered.
    /// </summary>
    public PendingRequest? FindUsedToken(string token, ListName list)
    {
        if (!IsTokenShaped(token))
        {
            return null;
        }

        using var cmd = Command("""
            SELECT l.fqdn, u.kind, u.key, u.address, u.display_name, u.data, u.used, u.outcome
            FROM used_requests u JOIN lists l ON l.id = u.list_id
            WHERE u.token_hash = $hash AND l.fqdn = $fqdn
            """, ("$hash", Hash(token)), ("$fqdn", list.Fqdn));
        return ReadUsed(cmd);
    }

    private static PendingRequest? ReadUsed(SqliteCommand cmd)
    {
        using var r = cmd.ExecuteReader();
        return r.Read()
            ? new PendingRequest(0, ListName.Parse(r.GetString(0)), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5),
                ReadTimestamp(r, 6)!.Value, ReadTimestamp(r, 6)!.Value, r.GetString(7))
            : null;
    }

    /// <summary>Requests whose expiry is at or before <paramref name="now"/>.</summary>
    public IReadOnlyList<PendingRequest> ExpiredPending(DateTimeOffset now)
    {
        using var cmd = Command(PendingSelect + " WHERE p.expires <= $now ORDER BY p.id", ("$now", Timestamp(now)));
        return ReadPending(cmd).ToList();
    }

    private const string PendingSelect = """
        SELECT p.id, l.fqdn, p.kind, p.key, p.address, p.display_name, p.data, p.created, p.expires
        FROM pending p JOIN lists l ON l.id = p.list_id
        """;

    private static IEnumerable<PendingRequest> ReadPending(SqliteCommand cmd)
    {
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            yield return new PendingRequest(r.GetInt64(0), ListName.Parse(r.GetString(1)), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6),
                ReadTimestamp(r, 7)!.Value, ReadTimestamp(r, 8)!.Value);
        }
    }

    private static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(token)));
}
