// What bounce processing writes about a member: the score and the day of the last bounce,
// delivery disabled by bounces, the outstanding VERP probe, warnings sent, removal. Every write
// is conditional on the state it was decided from, so a decision taken on a stale read (an
// operator re-enabled the member meanwhile) changes nothing. The columns are MemberStatus's; no
// schema of its own.
namespace Mailman.Lists;

public sealed partial class ListStore
{
    /// <summary>
    /// Records a scored bounce: the new score and when; with <paramref name="disable"/> the
    /// member's delivery is turned off for bounces at <paramref name="when"/> and the warning
    /// count starts again. A disable, or <paramref name="clearProbe"/> (the probe went through),
    /// ends the member's outstanding probe. Only a member whose delivery is still on is changed,
    /// and with <paramref name="whileProbe"/> only while that probe is the member's.
    /// </summary>
    /// <param name="said">What the bounce said, for the owners' notice (null keeps what was recorded).</param>
    /// <returns>False when the address is not an enabled member (any more).</returns>
    public bool RecordBounce(ListName list, string address, double score, DateTimeOffset when, bool disable, bool clearProbe = false, string? whileProbe = null, string? said = null)
    {
        using var cmd = Command(
            "UPDATE members SET bounce_score = $score, last_bounce = $when, last_bounce_said = COALESCE($said, last_bounce_said)"
            + (disable ? ", delivery_enabled = 0, disabled_reason = $reason, disabled_at = $when, warnings_sent = 0, last_warning = NULL" : "")
            + (disable || clearProbe ? ", probe_token = NULL, probe_sent = NULL" : "")
            + " WHERE list_id = (SELECT id FROM lists WHERE fqdn = $fqdn) AND address_key = $key AND delivery_enabled = 1"
            + (whileProbe is null ? "" : " AND probe_token = $token"),
            ("$fqdn", list.Fqdn), ("$key", AddressKey(address)), ("$score", score), ("$when", Timestamp(when)), ("$reason", DisabledReason.Bounces), ("$token", (object?)whileProbe ?? DBNull.Value),
            ("$said", (object?)said ?? DBNull.Value));
        return cmd.ExecuteNonQuery() > 0;
    }

    /// <summary>
    /// Records a bounce that reached the threshold of a list that probes: the score, and the
    /// probe about to be queued under <paramref name="token"/> (its envelope sender's token), not
    /// sent yet (<see cref="MarkProbeSent"/>). Only a member whose delivery is still on is changed.
    /// </summary>
    /// <returns>False when the address is not an enabled member (any more).</returns>
    public bool RecordProbe(ListName list, string address, double score, DateTimeOffset when, string token, string? said = null)
    {
        using var cmd = Command("""
            UPDATE members SET bounce_score = $score, last_bounce = $when, last_bounce_said = COALESCE($said, last_bounce_said), probe_token = $token, probe_sent = NULL
            WHERE list_id = (SELECT id FROM lists WHERE fqdn = $fqdn) AND address_key = $key AND delivery_enabled = 1
            """, ("$fqdn", list.Fqdn), ("$key", AddressKey(address)), ("$score", score), ("$when", Timestamp(when)), ("$token", token),
            ("$said", (object?)said ?? DBNull.Value));
        return cmd.ExecuteNonQuery() > 0;
    }

    /// <summary>The probe <paramref name="token"/> is queued: its wait for a bounce starts at <paramref name="when"/>.</summary>
    public bool MarkProbeSent(ListName list, string address, string token, DateTimeOffset when)
    {
        using var cmd = Command("""
            UPDATE members SET probe_sent = $when
            WHERE list_id = (SELECT id FROM lists WHERE fqdn = $fqdn) AND address_key = $key AND probe_token = $token AND delivery_enabled = 1
            """, ("$fqdn", list.Fqdn), ("$key", AddressKey(address)), ("$token", token), ("$when", Timestamp(when)));
        return cmd.ExecuteNonQuery() > 0;
    }

    /// <summary>Forgets the probe <paramref name="token"/> (it could not be sent): the next report at the threshold probes again.</summary>
    public bool ClearProbe(ListName list, string address, string token)
    {
        using var cmd = Command("""
            UPDATE members SET probe_token = NULL, probe_sent = NULL
            WHERE list_id = (SELECT id FROM lists WHERE fqdn = $fqdn) AND address_key = $key AND probe_token = $token
            """, ("$fqdn", list.Fqdn), ("$key", AddressKey(address)), ("$token", token));
        return cmd.ExecuteNonQuery() > 0;
    }

    /// <summary>The member whose outstanding probe carries <paramref name="token"/>, or null (none: answered, ended, or never sent).</summary>
    public MemberRecord? FindProbe(ListName list, string token)
    {
        using var cmd = Command($"SELECT {MemberColumns} FROM members WHERE list_id = $list AND probe_token = $token",
            ("$list", ListId(list)), ("$token", token));
        using var reader = cmd.ExecuteReader();
        return reader.Read() ? ReadMemberRecord(reader) : null;
    }

    /// <summary>Members whose delivery bounces disabled, oldest disable first (the warning sweep).</summary>
    public IReadOnlyList<MemberRecord> BounceDisabledMembers(ListName list)
    {
        using var cmd = Command($"""
            SELECT {MemberColumns} FROM members
            WHERE list_id = $list AND delivery_enabled = 0 AND disabled_reason = $reason ORDER BY disabled_at, id
            """, ("$list", ListId(list)), ("$reason", DisabledReason.Bounces));
        using var reader = cmd.ExecuteReader();
        var result = new List<MemberRecord>();
        while (reader.Read())
        {
            result.Add(ReadMemberRecord(reader));
        }

        return result;
    }

    /// <summary>
    /// Records warning number <paramref name="warning"/> as sent at <paramref name="when"/>, if the
    /// member is still disabled by bounces with one warning fewer.
    /// </summary>
    /// <returns>False when the member's state moved on (re-enabled, removed, warned by another run).</returns>
    public bool RecordBounceWarning(ListName list, string address, int warning, DateTimeOffset when)
    {
        using var cmd = Command("""
            UPDATE members SET warnings_sent = $n, last_warning = $when
            WHERE list_id = (SELECT id FROM lists WHERE fqdn = $fqdn) AND address_key = $key
              AND delivery_enabled = 0 AND disabled_reason = $reason AND warnings_sent = $n - 1
            """, ("$fqdn", list.Fqdn), ("$key", AddressKey(address)), ("$n", warning), ("$when", Timestamp(when)), ("$reason", DisabledReason.Bounces));
        return cmd.ExecuteNonQuery() > 0;
    }

    /// <summary>Removes a member whose delivery bounces disabled; one an operator re-enabled meanwhile stays.</summary>
    /// <returns>False when the member was not (or no longer) disabled by bounces.</returns>
    public bool RemoveBounceDisabled(ListName list, string address)
    {
        using var cmd = Command("""
            DELETE FROM members
            WHERE list_id = (SELECT id FROM lists WHERE fqdn = $fqdn) AND address_key = $key AND delivery_enabled = 0 AND disabled_reason = $reason
            """, ("$fqdn", list.Fqdn), ("$key", AddressKey(address)), ("$reason", DisabledReason.Bounces));
        return cmd.ExecuteNonQuery() > 0;
    }
}
