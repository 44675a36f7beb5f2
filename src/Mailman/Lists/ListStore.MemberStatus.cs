// A member's delivery status and its history: why delivery is disabled (bounces, the member,
// a moderator), the bounce score, warnings sent, the per-member moderation action, and the
// subscription serial that changes on every (re-)subscription (one-click links hash it).
using Microsoft.Data.Sqlite;

namespace Mailman.Lists;

/// <summary>Why a member's delivery is off (Mailman 3's DeliveryStatus).</summary>
public static class DisabledReason
{
    public const string None = "";
    public const string Bounces = "bounce";
    public const string User = "user";
    public const string Moderator = "moderator";
}

/// <summary>Everything the store knows about one member (`members show`).</summary>
public sealed record MemberRecord(
    string Address,
    string DisplayName,
    bool DeliveryEnabled,
    string DisabledReason,
    DateTimeOffset? DisabledAt,
    double BounceScore,
    DateTimeOffset? LastBounce,
    DateTimeOffset? LastWarning,
    int WarningsSent,
    string ModerationAction,
    DateTimeOffset? JoinedAt,
    string Serial)
{
    /// <summary>When the outstanding VERP probe was sent (Bounces/BounceScoring); null: none.</summary>
    public DateTimeOffset? ProbeSent { get; init; }

    /// <summary>The outstanding probe's token (its envelope sender's); never shown.</summary>
    public string? ProbeToken { get; init; }

    /// <summary>What the last bounce that scored said (how it came, the status and the remote server's words, one line), or null.</summary>
    public string? LastBounceSaid { get; init; }
}

public sealed partial class ListStore
{
    private const string MemberColumns = """
        address, display_name, delivery_enabled, disabled_reason, disabled_at, bounce_score, last_bounce,
        last_warning, warnings_sent, moderation_action, joined_at, serial, probe_sent, probe_token, last_bounce_said
        """;

    private static string[] MemberStatusSchema =>
    [
        "COLUMN members disabled_reason TEXT NOT NULL DEFAULT ''",
        "COLUMN members disabled_at TEXT",
        "COLUMN members bounce_score REAL NOT NULL DEFAULT 0",
        "COLUMN members last_bounce TEXT",
        "COLUMN members last_warning TEXT",
        "COLUMN members warnings_sent INTEGER NOT NULL DEFAULT 0",
        "COLUMN members moderation_action TEXT NOT NULL DEFAULT 'defer'",
        "COLUMN members joined_at TEXT",
        "COLUMN members serial TEXT NOT NULL DEFAULT ''",
        "COLUMN members probe_token TEXT",
        "COLUMN members probe_sent TEXT",
        "COLUMN members last_bounce_said TEXT",
        "CREATE INDEX IF NOT EXISTS members_probe_token ON members (list_id, probe_token) WHERE probe_token IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS members_disabled ON members (list_id, delivery_enabled, disabled_at)",
    ];

    /// <summary>
    /// Members of every list whose address is at <paramref name="domain"/> (a list's: A-labels)
    /// and starts with <paramref name="localPrefix"/> (in any case), with their list: who may be
    /// an address of a list named so.
    /// </summary>
    public IReadOnlyList<(ListName List, string Address)> MembersStartingWith(string localPrefix, string domain)
    {
        var pattern = LikePrefix(localPrefix, domain);
        using var cmd = Command("SELECT l.fqdn, m.address FROM members m JOIN lists l ON l.id = m.list_id WHERE m.address_key LIKE $pattern ESCAPE '\\' ORDER BY l.fqdn, m.address_key",
            ("$pattern", pattern));
        using var reader = cmd.ExecuteReader();
        var result = new List<(ListName, string)>();
        while (reader.Read())
        {
            result.Add((ListName.Parse(reader.GetString(0)), reader.GetString(1)));
        }

        return result;
    }

    /// <summary>Owners and moderators of any list whose address starts with <paramref name="localPrefix"/> at <paramref name="domain"/>: the candidates for a new list's addresses.</summary>
    public IReadOnlyList<(ListName List, string Role, string Address)> RolesStartingWith(string localPrefix, string domain)
    {
        using var cmd = Command("SELECT l.fqdn, r.role, r.address FROM roles r JOIN lists l ON l.id = r.list_id WHERE r.address_key LIKE $pattern ESCAPE '\\' ORDER BY l.fqdn, r.role, r.address_key",
            ("$pattern", LikePrefix(localPrefix, domain)));
        using var reader = cmd.ExecuteReader();
        var result = new List<(ListName, string, string)>();
        while (reader.Read())
        {
            result.Add((ListName.Parse(reader.GetString(0)), reader.GetString(1), reader.GetString(2)));
        }

        return result;
    }

    // address_key LIKE 'PREFIX%@DOMAIN', the prefix's own % and _ escaped.
    private static string LikePrefix(string localPrefix, string domain)
    {
        static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal);
        return Escape(localPrefix.ToLowerInvariant()) + "%@" + Escape(domain.ToLowerInvariant());
    }

    /// <summary>One member with its status, or null when the address is not a member.</summary>
    public MemberRecord? FindMember(ListName list, string address)
    {
        using var cmd = Command($"SELECT {MemberColumns} FROM members WHERE list_id = $list AND address_key = $key",
            ("$list", ListId(list)), ("$key", AddressKey(address)));
        using var reader = cmd.ExecuteReader();
        return reader.Read() ? ReadMemberRecord(reader) : null;
    }

    /// <summary>Members with their status, streamed in join order; <paramref name="enabled"/> null means all.</summary>
    public IEnumerable<MemberRecord> MemberRecords(ListName list, bool? enabled = null)
    {
        var listId = ListId(list);
        using var cmd = Command(
            $"SELECT {MemberColumns} FROM members WHERE list_id = $list"
            + (enabled is null ? "" : " AND delivery_enabled = $enabled") + " ORDER BY id",
            ("$list", listId), ("$enabled", enabled == true ? 1 : 0));
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            yield return ReadMemberRecord(reader);
        }
    }

    /// <summary>
    /// Turns a member's delivery off for <paramref name="reason"/>, or on (reason
    /// <see cref="DisabledReason.None"/>), which also resets the bounce score and warnings; either ends an outstanding bounce probe.
    /// </summary>
    /// <returns>False when the address is not a member.</returns>
    public bool SetDelivery(ListName list, string address, string reason, DateTimeOffset now)
    {
        var enable = reason.Length == 0;
        using var cmd = enable
            ? Command("""
                UPDATE members SET delivery_enabled = 1, disabled_reason = '', disabled_at = NULL,
                    bounce_score = 0, last_bounce = NULL, last_bounce_said = NULL, last_warning = NULL, warnings_sent = 0, probe_token = NULL, probe_sent = NULL
                WHERE list_id = $list AND address_key = $key
                """, ("$list", ListId(list)), ("$key", AddressKey(address)))
            : Command("""
                UPDATE members SET delivery_enabled = 0, disabled_reason = $reason, disabled_at = $now, probe_token = NULL, probe_sent = NULL
                WHERE list_id = $list AND address_key = $key
                """, ("$list", ListId(list)), ("$key", AddressKey(address)), ("$reason", reason), ("$now", Timestamp(now)));
        return cmd.ExecuteNonQuery() > 0;
    }

    /// <summary>Sets a member's moderation action (defer, accept, hold, reject, discard).</summary>
    /// <returns>False when the address is not a member.</returns>
    public bool SetModerationAction(ListName list, string address, string action)
    {
        using var cmd = Command("UPDATE members SET moderation_action = $action WHERE list_id = $list AND address_key = $key",
            ("$list", ListId(list)), ("$key", AddressKey(address)), ("$action", action));
        return cmd.ExecuteNonQuery() > 0;
    }

    /// <summary>Members whose delivery was disabled at or after <paramref name="since"/> (status: "disabled today").</summary>
    public long CountDisabledSince(DateTimeOffset since)
    {
        using var cmd = Command("SELECT COUNT(*) FROM members WHERE delivery_enabled = 0 AND disabled_at >= $since", ("$since", Timestamp(since)));
        return (long)cmd.ExecuteScalar()!;
    }

    /// <summary>ISO 8601 in UTC with a fixed width, so timestamps compare as text.</summary>
    internal static string Timestamp(DateTimeOffset t) => t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    internal static DateTimeOffset? ReadTimestamp(SqliteDataReader reader, int i)
        => reader.IsDBNull(i) ? null : DateTimeOffset.Parse(reader.GetString(i), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal);

    /// <summary>A fresh subscription serial: 64 random bits.</summary>
    internal static string NewSerial() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    private static MemberRecord ReadMemberRecord(SqliteDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetInt64(2) != 0, r.GetString(3), ReadTimestamp(r, 4), r.GetDouble(5), ReadTimestamp(r, 6),
        ReadTimestamp(r, 7), r.GetInt32(8), r.GetString(9), ReadTimestamp(r, 10), r.GetString(11)) { ProbeSent = ReadTimestamp(r, 12), ProbeToken = r.IsDBNull(13) ? null : r.GetString(13), LastBounceSaid = r.IsDBNull(14) ? null : r.GetString(14) };
}
