// VERP envelope senders in Mailman's format: LIST-bounces+LOCAL=DOMAIN@HOST. A bounce to that
// address names the member it was for without parsing the bounce body.
using Mailman.Lists;

namespace Mailman.Delivery;

public static class Verp
{
    /// <summary>The VERP sender for <paramref name="recipient"/> on <paramref name="list"/>.</summary>
    public static string Encode(ListName list, string recipient)
    {
        var at = recipient.LastIndexOf('@');
        var local = at < 0 ? recipient : recipient[..at];
        var domain = at < 0 ? "" : recipient[(at + 1)..];
        return string.Concat(list.LocalPart, "-bounces+", local, "=", domain, "@", list.Domain);
    }

    /// <summary>The member address encoded in a VERP address, or null if it is not one of <paramref name="list"/>'s.</summary>
    public static string? Decode(ListName list, string verpAddress)
    {
        var prefix = list.LocalPart + "-bounces+";
        var suffix = "@" + list.Domain;
        if (!verpAddress.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || !verpAddress.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var middle = verpAddress[prefix.Length..^suffix.Length];
        var eq = middle.LastIndexOf('=');
        return eq <= 0 ? null : middle[..eq] + "@" + middle[(eq + 1)..];
    }
}
