// One recipient line of a queue entry: "address TAB display-name LF".
namespace Mailman.Queues;

/// <summary>An address to deliver to, with the member's display name (may be empty).</summary>
public readonly record struct Recipient(string Address, string DisplayName)
{
    public string Domain
    {
        get
        {
            var at = Address.LastIndexOf('@');
            return at < 0 ? "" : Address[(at + 1)..].ToLowerInvariant();
        }
    }
}
