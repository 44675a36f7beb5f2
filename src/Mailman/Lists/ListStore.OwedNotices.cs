// Notices a membership change owes (a welcome, a goodbye): written in the change's own
// transaction and deleted once the notice is queued, so a crash or an unwritable out queue
// between the two cannot lose it (review 36: a join whose run was killed after its commit was
// answered "already a member" on the replay, and the welcome never went). Whoever finds one
// owed later sends it under the name it would have had (Requests/Membership).
using Microsoft.Data.Sqlite;

namespace Mailman.Lists;

/// <summary>A notice owed: its template, for whom, and the entry (or trigger) and purpose that name it.</summary>
public sealed record OwedNotice(long Id, ListName List, string Template, string Address, string DisplayName, string Trigger, string Purpose, DateTimeOffset Created);

public sealed partial class ListStore
{
    private static string[] OwedNoticeSchema =>
    [
        """
        CREATE TABLE IF NOT EXISTS owed_notices (
            id INTEGER PRIMARY KEY,
            list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
            template TEXT NOT NULL,
            address TEXT NOT NULL,
            display_name TEXT NOT NULL DEFAULT '',
            trigger TEXT NOT NULL,
            purpose TEXT NOT NULL,
            created TEXT NOT NULL,
            UNIQUE (trigger, purpose))
        """,
    ];

    /// <summary>
    /// Records a notice owed (in the caller's transaction, beside the change that owes it); once
    /// per trigger and purpose. <paramref name="tokenHash"/>: the confirmed request's, from
    /// <see cref="TakePending"/>.
    /// </summary>
    public void OweNotice(ListName list, string template, string address, string displayName, string trigger, string purpose, DateTimeOffset now, string? tokenHash = null)
    {
        using var cmd = Command("""
            INSERT INTO owed_notices (list_id, template, address, display_name, trigger, purpose, created, token_hash)
            VALUES ($list, $template, $address, $name, $trigger, $purpose, $now, $hash)
            ON CONFLICT (trigger, purpose) DO NOTHING
            """, ("$list", ListId(list)), ("$template", template), ("$address", address), ("$name", Member.Sanitize(displayName)),
            ("$trigger", trigger), ("$purpose", purpose), ("$now", Timestamp(now)), ("$hash", (object?)tokenHash ?? DBNull.Value));
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// The notice <paramref name="trigger"/> owes for the request it confirmed with
    /// <paramref name="token"/> (the entry is run again: the request is gone), or null.
    /// </summary>
    public OwedNotice? FindOwedNotice(string trigger, string token, ListName list)
    {
        if (!IsTokenShaped(token))
        {
            return null;
        }

        using var cmd = Command(OwedSelect + " WHERE o.trigger = $trigger AND o.token_hash = $hash AND l.fqdn = $fqdn", ("$trigger", trigger), ("$hash", Hash(token)), ("$fqdn", list.Fqdn));
        return ReadOwed(cmd).FirstOrDefault();
    }

    /// <summary>The notice <paramref name="trigger"/> owes for <paramref name="purpose"/>, or null.</summary>
    public OwedNotice? FindOwedNotice(string trigger, string purpose)
    {
        using var cmd = Command(OwedSelect + " WHERE o.trigger = $trigger AND o.purpose = $purpose", ("$trigger", trigger), ("$purpose", purpose));
        return ReadOwed(cmd).FirstOrDefault();
    }

    /// <summary>Every notice owed, oldest first.</summary>
    public IReadOnlyList<OwedNotice> OwedNotices()
    {
        using var cmd = Command(OwedSelect + " ORDER BY o.id");
        return ReadOwed(cmd).ToList();
    }

    /// <summary>The notice is queued (or a rule said not to send it): no longer owed.</summary>
    public void PaidNotice(string trigger, string purpose)
    {
        using var cmd = Command("DELETE FROM owed_notices WHERE trigger = $trigger AND purpose = $purpose", ("$trigger", trigger), ("$purpose", purpose));
        cmd.ExecuteNonQuery();
    }

    private const string OwedSelect = """
        SELECT o.id, l.fqdn, o.template, o.address, o.display_name, o.trigger, o.purpose, o.created
        FROM owed_notices o JOIN lists l ON l.id = o.list_id
        """;

    private static IEnumerable<OwedNotice> ReadOwed(SqliteCommand cmd)
    {
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            yield return new OwedNotice(r.GetInt64(0), ListName.Parse(r.GetString(1)), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6),
                ReadTimestamp(r, 7)!.Value);
        }
    }
}
