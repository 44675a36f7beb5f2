// A list's owners and moderators: people, with display names, kept beside the members.
namespace Mailman.Lists;

/// <summary>The roles a person can have on a list besides membership.</summary>
public static class ListRole
{
    public const string Owner = "owner";
    public const string Moderator = "moderator";

    public static bool IsValid(string role) => role is Owner or Moderator;
}

public sealed partial class ListStore
{
    private static string[] RolesSchema =>
    [
        """
        CREATE TABLE IF NOT EXISTS roles (
            id INTEGER PRIMARY KEY,
            list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            address TEXT NOT NULL,
            address_key TEXT NOT NULL,
            display_name TEXT NOT NULL DEFAULT '',
            UNIQUE (list_id, role, address_key))
        """,
    ];

    /// <summary>Gives <paramref name="people"/> the role; those who have it already are left as they are.</summary>
    /// <returns>How many were new.</returns>
    public int AddRole(ListName list, string role, IEnumerable<Member> people)
    {
        CheckRole(role);
        using var tx = Begin();
        var listId = ListId(list);
        var added = 0;
        foreach (var p in people)
        {
            using var cmd = Command(
                "INSERT INTO roles (list_id, role, address, address_key, display_name) VALUES ($list, $role, $address, $key, $name) ON CONFLICT DO NOTHING",
                ("$list", listId), ("$role", role), ("$address", p.Address), ("$key", AddressKey(p.Address)), ("$name", Member.Sanitize(p.DisplayName)));
            added += cmd.ExecuteNonQuery();
        }

        tx.Commit();
        return added;
    }

    /// <returns>How many had the role.</returns>
    public int RemoveRole(ListName list, string role, IEnumerable<string> addresses)
    {
        CheckRole(role);
        using var tx = Begin();
        var listId = ListId(list);
        var removed = 0;
        foreach (var a in addresses)
        {
            using var cmd = Command("DELETE FROM roles WHERE list_id = $list AND role = $role AND address_key = $key",
                ("$list", listId), ("$role", role), ("$key", AddressKey(a)));
            removed += cmd.ExecuteNonQuery();
        }

        tx.Commit();
        return removed;
    }

    /// <summary>The people with <paramref name="role"/> on the list, in the order they got it.</summary>
    public IReadOnlyList<Member> Roles(ListName list, string role)
    {
        CheckRole(role);
        using var cmd = Command("SELECT address, display_name FROM roles WHERE list_id = $list AND role = $role ORDER BY id",
            ("$list", ListId(list)), ("$role", role));
        using var reader = cmd.ExecuteReader();
        var result = new List<Member>();
        while (reader.Read())
        {
            result.Add(new Member(reader.GetString(0), reader.GetString(1)));
        }

        return result;
    }

    public bool HasRole(ListName list, string role, string address)
    {
        CheckRole(role);
        using var cmd = Command("SELECT 1 FROM roles WHERE list_id = $list AND role = $role AND address_key = $key",
            ("$list", ListId(list)), ("$role", role), ("$key", AddressKey(address)));
        return cmd.ExecuteScalar() is not null;
    }

    private static void CheckRole(string role)
    {
        if (!ListRole.IsValid(role))
        {
            throw new ArgumentException($"unknown role '{role}': expected owner or moderator", nameof(role));
        }
    }
}
