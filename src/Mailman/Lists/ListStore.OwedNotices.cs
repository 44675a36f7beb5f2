// Notices a membership change owes (a welcome, a goodbye, a moderator's refusal): written in
// the change's own transaction and marked paid once the notice is queued, so a crash or an
// unwritable out queue between the two cannot lose it (review 36: a join whose run was killed
// after its commit was answered "already a member" on the replay, and the welcome never went).
// Whoever finds one owed later sends it under the name it would have had (Requests/Membership).
// A paid record is kept a week, so that a confirmation run again after a kill past the queuing
// answers as its first run did (review 126), and then deleted; one a command line pays itself
// is deleted then.
using Microsoft.Data.Sqlite;

namespace Mailman.Lists;

/// <summary>
/// A notice owed: its template, for whom, and the entry (or trigger) and purpose that name it;
/// once <see cref="Paid"/>, whether it was <see cref="Sent"/> (queued, or a rule said not to);
/// the <see cref="Reason"/> a refusal gives.
/// </summary>
public sealed record OwedNotice(long Id, ListName List, string Template, string Address, string DisplayName, string Trigger, string Purpose, DateTimeOffset Created,
    DateTimeOffset? Paid = null, bool Sent = false, string? Reason = null);

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
    /// per trigger and purpose while owed (a paid one is owed again: a second change of the entry).
    /// </summary>
    public void OweNotice(ListName list, string template, string address, string displayName, string trigger, string purpose, DateTimeOffset now, string? reason = null)
    {
        using var cmd = Command("""
            INSERT INTO owed_notices (list_id, template, address, display_name, trigger, purpose, created, reason)
            VALUES ($list, $template, $address, $name, $trigger, $purpose, $now, $reason)
            ON CONFLICT (trigger, purpose) DO UPDATE SET display_name = excluded.display_name, created = excluded.created, reason = excluded.reason, paid = NULL, sent = NULL
            WHERE owed_notices.paid IS NOT NULL
            """, ("$list", ListId(list)), ("$template", template), ("$address", address), ("$name", Member.Sanitize(displayName)),
            ("$trigger", trigger), ("$purpose", purpose), ("$now", Timestamp(now)), ("$reason", (object?)reason ?? DBNull.Value));
        cmd.ExecuteNonQuery();
    }

    /// <summary>The notice <paramref name="trigger"/> owes (or paid) for <paramref name="purpose"/>, or null.</summary>
    public OwedNotice? FindOwedNotice(string trigger, string purpose)
    {
        using var cmd = Command(OwedSelect + " WHERE o.trigger = $trigger AND o.purpose = $purpose", ("$trigger", trigger), ("$purpose", purpose));
        return ReadOwed(cmd).FirstOrDefault();
    }

    /// <summary>Every notice owed and not paid yet, oldest first.</summary>
    public IReadOnlyList<OwedNotice> OwedNotices()
    {
        using var cmd = Command(OwedSelect + " WHERE o.paid IS NULL ORDER BY o.id");
        return ReadOwed(cmd).ToList();
    }

    /// <summary>How long a paid record is kept for its entry run again.</summary>
    public static readonly TimeSpan PaidNoticeKept = TimeSpan.FromDays(7);

    /// <summary>
    /// The notice is queued (or a rule said not to send it: <paramref name="sent"/> false): no
    /// longer owed. With <paramref name="now"/>, the record is kept, paid, for
    /// <see cref="PaidNoticeKept"/> (older paid ones go); without, it is deleted.
    /// </summary>
    public void PaidNotice(string trigger, string purpose, bool sent = true, DateTimeOffset? now = null)
    {
        using var cmd = now is { } at
            ? Command("""
                UPDATE owed_notices SET paid = $now, sent = $sent WHERE trigger = $trigger AND purpose = $purpose;
                DELETE FROM owed_notices WHERE paid IS NOT NULL AND paid < $cutoff;
                """, ("$trigger", trigger), ("$purpose", purpose), ("$now", Timestamp(at)), ("$sent", sent ? 1 : 0), ("$cutoff", Timestamp(at - PaidNoticeKept)))
            : Command("DELETE FROM owed_notices WHERE trigger = $trigger AND purpose = $purpose", ("$trigger", trigger), ("$purpose", purpose));
        cmd.ExecuteNonQuery();
    }

    private const string OwedSelect = """
        SELECT o.id, l.fqdn, o.template, o.address, o.display_name, o.trigger, o.purpose, o.created, o.paid, o.sent, o.reason
        FROM owed_notices o JOIN lists l ON l.id = o.list_id
        """;

    private static IEnumerable<OwedNotice> ReadOwed(SqliteCommand cmd)
    {
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            yield return new OwedNotice(r.GetInt64(0), ListName.Parse(r.GetString(1)), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6),
                ReadTimestamp(r, 7)!.Value, ReadTimestamp(r, 8), !r.IsDBNull(9) && r.GetInt64(9) != 0, r.IsDBNull(10) ? null : r.GetString(10));
        }
    }
}
