// Joining and leaving as members do it themselves (by mail, by one click, confirmed or not):
// a join adds the address or re-enables a member who had stopped delivery, always with a fresh
// subscription serial, so a one-click link from before the join no longer works.
namespace Mailman.Lists;

/// <summary>What a join did.</summary>
public enum JoinResult
{
    /// <summary>The address is a new member.</summary>
    Added,

    /// <summary>A member whose delivery was off (by themselves or by bounces) receives mail again.</summary>
    Reenabled,

    /// <summary>Already a member with delivery on (or off by a moderator, which a join does not undo).</summary>
    AlreadyMember,
}

public sealed partial class ListStore
{
    /// <summary>
    /// Subscribes <paramref name="address"/>: adds it, or re-enables a member whose delivery was
    /// disabled by the member or by bounces. Either gives the subscription a new serial.
    /// </summary>
    public JoinResult Join(ListName list, string address, string displayName, DateTimeOffset now)
    {
        using var tx = Begin();
        var listId = ListId(list);
        var existing = FindMember(list, address);
        JoinResult result;
        if (existing is null)
        {
            using var insert = Command("""
                INSERT INTO members (list_id, address, address_key, display_name, delivery_enabled, disabled_reason, joined_at, serial)
                VALUES ($list, $address, $key, $name, 1, '', $now, $serial)
                """, ("$list", listId), ("$address", address.Trim()), ("$key", AddressKey(address)), ("$name", Member.Sanitize(displayName)),
                ("$now", Timestamp(now)), ("$serial", NewSerial()));
            insert.ExecuteNonQuery();
            result = JoinResult.Added;
        }
        else if (!existing.DeliveryEnabled && existing.DisabledReason is DisabledReason.User or DisabledReason.Bounces)
        {
            using var enable = Command("""
                UPDATE members SET delivery_enabled = 1, disabled_reason = '', disabled_at = NULL, bounce_score = 0, last_bounce = NULL, last_bounce_said = NULL,
                    last_warning = NULL, warnings_sent = 0, joined_at = $now, serial = $serial, probe_token = NULL, probe_sent = NULL
                WHERE list_id = $list AND address_key = $key
                """, ("$list", listId), ("$key", AddressKey(address)), ("$now", Timestamp(now)), ("$serial", NewSerial()));
            enable.ExecuteNonQuery();
            result = JoinResult.Reenabled;
        }
        else
        {
            result = JoinResult.AlreadyMember;
        }

        tx.Commit();
        return result;
    }

    /// <summary>One pending request by its number (`mailman pending show 12`), live or expired, or null.</summary>
    public PendingRequest? FindPending(long id)
    {
        using var cmd = Command(PendingSelect + " WHERE p.id = $id", ("$id", id));
        return ReadPending(cmd).FirstOrDefault();
    }
}
