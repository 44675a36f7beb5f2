// What bounce processing writes about a member: the score and the day of the last bounce,
// delivery disabled by bounces, warnings sent, removal. Every write is conditional on the state
// it was decided from, so a decision taken on a stale read (an operator re-enabled the member
// meanwhile) changes nothing. The columns are MemberStatus's; no schema of its own.
namespace Mailman.Lists;

public sealed partial class ListStore
{
    /// <summary>
    /// Records a scored bounce: the new score and when; with <paramref name="disable"/> the
    /// member's delivery is turned off for bounces at <paramref name="when"/> and the warning
    /// count starts again. Only a member whose delivery is still on is changed.
    /// </summary>
    /// <returns>False when the address is not an enabled member (any more).</returns>
    public bool RecordBounce(ListName list, string address, double score, DateTimeOffset when, bool disable)
    {
        using var cmd = Command(
            "UPDATE members SET bounce_score = $score, last_bounce = $when"
            + (disable ? ", delivery_enabled = 0, disabled_reason = $reason, disabled_at = $when, warnings_sent = 0, last_warning = NULL" : "")
            + " WHERE list_id = (SELECT id FROM lists WHERE fqdn = $fqdn) AND address_key = $key AND delivery_enabled = 1",
            ("$fqdn", list.Fqdn), ("$key", AddressKey(address)), ("$score", score), ("$when", Timestamp(when)), ("$reason", DisabledReason.Bounces));
        return cmd.ExecuteNonQuery() > 0;
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
