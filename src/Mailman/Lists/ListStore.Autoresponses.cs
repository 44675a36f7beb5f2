// How many automatic replies each address got from each list today: the cap that keeps a
// forged flood of requests from turning the server into a mail cannon against one victim
// (Mailman 3's max_autoresponses_per_day). The same table keeps a list's own daily counters
// (the moderators' notices, the daily summary) under keys that start with '#', which no
// address key does.
namespace Mailman.Lists;

public sealed partial class ListStore
{
    private static string[] AutoresponseSchema =>
    [
        """
        CREATE TABLE IF NOT EXISTS autoresponses (
            list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
            address_key TEXT NOT NULL,
            day TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (list_id, address_key, day))
        """,
    ];

    /// <summary>
    /// Counts one automatic reply to <paramref name="address"/> on <paramref name="day"/> (UTC)
    /// if fewer than <paramref name="limit"/> were sent that day; atomically.
    /// </summary>
    /// <returns>True when the reply may be sent (and was counted).</returns>
    public bool TryCountAutoresponse(ListName list, string address, DateOnly day, int limit)
    {
        if (limit <= 0)
        {
            return true; // 0: no limit, as in Mailman
        }

        using var tx = Begin();
        var listId = ListId(list);
        // A week of days is kept, not today's alone: a clock that swings back and forth (a bad
        // time source, a virtual machine's snapshot) found each day's count gone and sent the
        // day's replies again at each swing (review 88).
        using var cleanup = Command("DELETE FROM autoresponses WHERE list_id = $list AND day < $old AND address_key NOT LIKE '#%'", ("$list", listId), ("$old", Day(day.AddDays(-7))));
        cleanup.ExecuteNonQuery();
        using var cmd = Command("""
            INSERT INTO autoresponses (list_id, address_key, day, count) VALUES ($list, $key, $day, 1)
            ON CONFLICT (list_id, address_key, day) DO UPDATE SET count = count + 1 WHERE count < $limit
            """, ("$list", listId), ("$key", MailboxKey(address)), ("$day", Day(day)), ("$limit", limit));
        var counted = cmd.ExecuteNonQuery() > 0;
        tx.Commit();
        return counted;
    }

    /// <summary>Takes back one count of <see cref="TryCountAutoresponse"/>: the reply it let through could not be queued.</summary>
    public void UncountAutoresponse(ListName list, string address, DateOnly day)
    {
        using var cmd = Command("UPDATE autoresponses SET count = count - 1 WHERE list_id = $list AND address_key = $key AND day = $day AND count > 0",
            ("$list", ListId(list)), ("$key", MailboxKey(address)), ("$day", Day(day)));
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// Counts one more on a list's own daily counter <paramref name="counter"/> for
    /// <paramref name="day"/>, atomically, and returns the count after it.
    /// </summary>
    public int CountDaily(ListName list, string counter, DateOnly day)
    {
        using var tx = Begin();
        var listId = ListId(list);
        var key = CounterKey(counter);

        // A week of the list's own counters is kept: the day may be a local one, behind or ahead of UTC's.
        using var cleanup = Command("DELETE FROM autoresponses WHERE list_id = $list AND address_key LIKE '#%' AND day < $old",
            ("$list", listId), ("$old", Day(day.AddDays(-7))));
        cleanup.ExecuteNonQuery();
        using var cmd = Command("""
            INSERT INTO autoresponses (list_id, address_key, day, count) VALUES ($list, $key, $day, 1)
            ON CONFLICT (list_id, address_key, day) DO UPDATE SET count = count + 1
            RETURNING count
            """, ("$list", listId), ("$key", key), ("$day", Day(day)));
        var count = Convert.ToInt32(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        tx.Commit();
        return count;
    }

    /// <summary>Takes back one count of <see cref="CountDaily"/>: what it counted could not be queued.</summary>
    public void UncountDaily(ListName list, string counter, DateOnly day)
    {
        using var cmd = Command("UPDATE autoresponses SET count = count - 1 WHERE list_id = $list AND address_key = $key AND day = $day AND count > 0",
            ("$list", ListId(list)), ("$key", CounterKey(counter)), ("$day", Day(day)));
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// Counts <paramref name="item"/> once on a list's daily counter <paramref name="counter"/>:
    /// the first time it takes the next number, atomically; asked again the same day (a run
    /// repeated after a crash) it gets the number it took, so what was decided by it is decided
    /// again the same way (review 54: a kill between counting and queueing counted twice, and
    /// the note past the limit was never sent).
    /// </summary>
    public int CountDailyOnce(ListName list, string counter, string item, DateOnly day)
    {
        using var tx = Begin();
        var listId = ListId(list);
        var itemKey = CounterKey(counter + "/" + item);
        using var find = Command("SELECT count FROM autoresponses WHERE list_id = $list AND address_key = $key AND day = $day",
            ("$list", listId), ("$key", itemKey), ("$day", Day(day)));
        if (find.ExecuteScalar() is long taken)
        {
            return (int)taken;
        }

        var count = CountDaily(list, counter, day);
        using var mark = Command("INSERT INTO autoresponses (list_id, address_key, day, count) VALUES ($list, $key, $day, $count)",
            ("$list", listId), ("$key", itemKey), ("$day", Day(day)), ("$count", count));
        mark.ExecuteNonQuery();
        tx.Commit();
        return count;
    }

    /// <summary>
    /// Takes <paramref name="item"/>'s turn under a list's daily limit of items told one by one
    /// (<paramref name="limit"/>; 0: none): on its own within it; past it, the first item past
    /// brings the note that says so, also when the limit was lowered during the day below what
    /// was told (review 103: only the limit + 1st did, and then none). Counted once a day per
    /// item (<see cref="CountDailyOnce"/>): a run repeated after a crash is decided as the first.
    /// </summary>
    public DailyTurn TakeDailyTurn(ListName list, string counter, string item, DateOnly day, int limit)
        => limit <= 0 || CountDailyOnce(list, counter, item, day) <= limit ? DailyTurn.OnItsOwn
            : CountDailyOnce(list, counter + PastSuffix, item, day) == 1 ? DailyTurn.FirstPast
            : DailyTurn.Past;

    /// <summary>Takes back <see cref="TakeDailyTurn"/>: what it decided could not be queued.</summary>
    public void ReturnDailyTurn(ListName list, string counter, string item, DateOnly day)
    {
        UncountDailyOnce(list, counter, item, day);
        UncountDailyOnce(list, counter + PastSuffix, item, day);
    }

    // The counter of the items past a daily limit, beside the limit's own.
    private const string PastSuffix = "-past";

    /// <summary>Takes back <see cref="CountDailyOnce"/>: what it counted could not be queued.</summary>
    public void UncountDailyOnce(ListName list, string counter, string item, DateOnly day)
    {
        using var tx = Begin();
        using var cmd = Command("DELETE FROM autoresponses WHERE list_id = $list AND address_key = $key AND day = $day",
            ("$list", ListId(list)), ("$key", CounterKey(counter + "/" + item)), ("$day", Day(day)));
        if (cmd.ExecuteNonQuery() > 0)
        {
            UncountDaily(list, counter, day);
        }

        tx.Commit();
    }

    /// <summary>A list's own daily counter <paramref name="counter"/> on <paramref name="day"/> (0: nothing counted).</summary>
    public int DailyCount(ListName list, string counter, DateOnly day)
    {
        using var cmd = Command("SELECT count FROM autoresponses WHERE list_id = $list AND address_key = $key AND day = $day",
            ("$list", ListId(list)), ("$key", CounterKey(counter)), ("$day", Day(day)));
        return cmd.ExecuteScalar() is long n ? (int)n : 0;
    }

    private static string CounterKey(string counter) => "#" + counter;

    // The mailbox the replies land in: user+1@ ... user+30@ are one victim's, counted together;
    // so are Gmail's u.s.e.r@ spellings, and googlemail.com is gmail.com.
    internal static string MailboxKey(string address)
    {
        // One mailbox however it is spelled: quoted or not ("vi\ctim"@host is victim@host, RFC
        // 5321 4.1.2; review 84: each spelling had its own count), with or without the root dot.
        var key = AddressKey(ListAddress.Comparable(address));
        var at = key.LastIndexOf('@');
        var plus = at > 0 ? key.IndexOf('+', StringComparison.Ordinal) : -1;
        key = plus > 0 && plus < at ? key[..plus] + key[at..] : key;
        at = key.LastIndexOf('@');
        var domain = at > 0 ? key[(at + 1)..].ToLowerInvariant() : "";
        return domain is "gmail.com" or "googlemail.com" && !key.Contains('"', StringComparison.Ordinal)
            ? key[..at].Replace(".", "", StringComparison.Ordinal) + "@gmail.com"
            : key;
    }

    private static string Day(DateOnly day) => day.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>An item's turn under a list's daily limit of items told one by one (<see cref="ListStore.TakeDailyTurn"/>).</summary>
public enum DailyTurn
{
    /// <summary>Within the limit (or there is none): told on its own.</summary>
    OnItsOwn,

    /// <summary>The first item past the limit today: not told on its own; the note that says so goes with it.</summary>
    FirstPast,

    /// <summary>Past the limit, the note already sent.</summary>
    Past,
}
