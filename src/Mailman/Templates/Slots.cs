// Per-recipient slots: the pipeline writes a token where a per-recipient value goes (the To:
// header, $user_address in a footer, ...); the outgoing runner splits the flattened post at the
// tokens once and splices each recipient's values in. The token carries a random per-post nonce,
// so no sender can forge a slot in their own text.
using System.Security.Cryptography;

namespace Mailman.Templates;

public enum SlotKind : byte
{
    /// <summary>The raw value of the To: header (after "To:"), folded and RFC 2047 encoded.</summary>
    ToHeader = (byte)'T',

    Address = (byte)'A',

    Name = (byte)'N',

    DeliveredTo = (byte)'D',

    /// <summary>
    /// The per-recipient part (<c>ADDRESS/TOKEN</c>) of the one-click link in List-Unsubscribe:
    /// a header slot, spliced like To:.
    /// </summary>
    ListUnsubscribe = (byte)'U',
}

public static class Slots
{
    public const string Prefix = "MMSLOT";

    /// <summary>Prefix + 16 hex digits of nonce + one kind letter.</summary>
    public const int TokenLength = 6 + 16 + 1;

    public static string NewNonce() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    public static string Token(string nonce, SlotKind kind) => Marker(nonce) + (char)kind;

    /// <summary>What every token of a post starts with: the prefix and the post's nonce.</summary>
    public static string Marker(string nonce) => Prefix + nonce;

    /// <summary>The slot for a recipient placeholder name, or null if the name is not per recipient.</summary>
    public static SlotKind? ForPlaceholder(string name) => name switch
    {
        "user_address" or "user_email" => SlotKind.Address,
        "user_delivered_to" => SlotKind.DeliveredTo,
        "user_name" => SlotKind.Name,
        _ => null,
    };
}
