// Deleting a list: the list row, and with it (ON DELETE CASCADE) its members, owners and
// moderators, pending requests and automatic-reply counts, in one statement.
namespace Mailman.Lists;

public sealed partial class ListStore
{
    /// <summary>Deletes <paramref name="list"/> and everything the database keeps for it.</summary>
    /// <returns>False when there was no such list.</returns>
    public bool DeleteList(ListName list)
    {
        using var cmd = Command("DELETE FROM lists WHERE fqdn = $fqdn", ("$fqdn", list.Fqdn));
        return cmd.ExecuteNonQuery() > 0;
    }
}
