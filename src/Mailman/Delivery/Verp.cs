// VERP envelope senders in Mailman's format: LIST-bounces+LOCAL=DOMAIN@HOST. A bounce to that
// address names the member it was for without parsing the bounce body. Only a member address
// whose local part is a dot-atom and whose domain is a host name can be written that way; a
// quoted local part ("a b"@x) or an address literal (u@[192.0.2.1]) would make the sender an
// invalid address, so those members' copies go out with the plain bounces address and their
// bounces are recognized from the report instead (RFC 5321 allows such addresses; we keep them).
// A probe (Bounces/BounceScoring) goes from LIST-bounces+probe-TOKEN@HOST instead: no '=' in it,
// so it is never taken for a member's address, and only the member's mail path sees the token.
using Mailman.Lists;

namespace Mailman.Delivery;

public static class Verp
{
    /// <summary>The VERP sender for <paramref name="recipient"/> on <paramref name="list"/>, or the list's plain bounces address when it cannot be encoded.</summary>
    public static string Encode(ListName list, string recipient)
        => TryEncode(list, recipient) ?? list.BouncesAddress;

    /// <summary>The VERP sender, or null when <paramref name="recipient"/> cannot be written into one.</summary>
    public static string? TryEncode(ListName list, string recipient)
    {
        var at = recipient.LastIndexOf('@');
        if (at <= 0 || at == recipient.Length - 1)
        {
            return null;
        }

        var local = recipient.AsSpan(0, at);
        var domain = recipient.AsSpan(at + 1);
        if (!IsDotAtom(local) || !IsHostName(domain))
        {
            return null;
        }

        // MAIL FROM must be ASCII for a server without SMTPUTF8: an IDN domain goes as its
        // A-labels, lower case first (BÜCHER is bücher, as the member's key and RCPT TO have it).
        if (!System.Text.Ascii.IsValid(domain))
        {
            domain = Instance.SmtpOptions.DestinationDomain(domain.ToString());
            if (!System.Text.Ascii.IsValid(domain))
            {
                return null;
            }
        }

        return string.Concat(list.LocalPart, "-bounces+", recipient.AsSpan(0, at)) + "=" + string.Concat(domain, "@", list.Domain);
    }

    /// <summary>The member address encoded in a VERP address, or null if it is not one of <paramref name="list"/>'s.</summary>
    public static string? Decode(ListName list, string verpAddress)
    {
        // Quoted, or with the domain's U-labels (an entry queued before intake kept A-labels): the same address.
        verpAddress = ListAddress.Comparable(verpAddress);
        var prefix = list.LocalPart + "-bounces+";
        var suffix = "@" + list.Domain;
        if (!verpAddress.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || !verpAddress.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var middle = verpAddress[prefix.Length..^suffix.Length];
        var eq = middle.LastIndexOf('=');
        return eq <= 0 || eq == middle.Length - 1 ? null : middle[..eq] + "@" + middle[(eq + 1)..];
    }

    private const string ProbeMark = "probe-";

    /// <summary>A new probe token: 128 random bits as 32 lowercase hex digits (no '=', so never a member's VERP).</summary>
    public static string NewProbeToken() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    /// <summary>The envelope sender of a VERP probe: LIST-bounces+probe-TOKEN@HOST; its bounce names the probe, not an address anyone can write.</summary>
    public static string ProbeAddress(ListName list, string token) => string.Concat(list.LocalPart, "-bounces+", ProbeMark, token, "@", list.Domain);

    /// <summary>The token of a probe address of <paramref name="list"/>, or null if <paramref name="address"/> is not one.</summary>
    public static string? DecodeProbe(ListName list, string address)
    {
        address = ListAddress.Comparable(address);
        var prefix = list.LocalPart + "-bounces+" + ProbeMark;
        var suffix = "@" + list.Domain;
        if (address.Length != prefix.Length + 32 + suffix.Length
            || !address.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || !address.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var token = address.Substring(prefix.Length, 32).ToLowerInvariant();
        return token.All(char.IsAsciiHexDigitLower) ? token : null;
    }

    /// <summary>
    /// <paramref name="address"/> for a log line: the token of a probe address or of a
    /// confirmation address (LIST-confirm+TOKEN@) cut to its first four digits (whoever reads the
    /// log could otherwise bounce the probe, or approve a held post with a token still live:
    /// review 69, the intake's line named it whole).
    /// </summary>
    public static string Redact(string address)
    {
        var mark = "-bounces+" + ProbeMark;
        var at = address.IndexOf(mark, StringComparison.OrdinalIgnoreCase);
        if (at < 0)
        {
            mark = ListAddress.Confirm + "+";
            at = address.IndexOf(mark, StringComparison.OrdinalIgnoreCase);
        }

        if (at < 0)
        {
            return address;
        }

        var start = at + mark.Length;
        var end = start;
        while (end < address.Length && char.IsAsciiHexDigit(address[end]))
        {
            end++;
        }

        return end - start <= 4 ? address : string.Concat(address.AsSpan(0, start + 4), "...", address.AsSpan(end));
    }

    // RFC 5322 §3.2.3 dot-atom: atext runs separated by single dots; atext includes UTF-8
    // (RFC 6532 §3.2), so jörg@example.com gets dev-bounces+jörg=example.com@HOST: its copy needs
    // SMTPUTF8 anyway (without it the copy is never sent), and the sender rides on it.
    private static bool IsDotAtom(ReadOnlySpan<char> s)
    {
        if (s.IsEmpty || s[0] == '.' || s[^1] == '.')
        {
            return false;
        }

        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c == '.')
            {
                if (s[i - 1] == '.')
                {
                    return false;
                }
            }
            else if (!(char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-/=?^_`{|}~".Contains(c) || IsVisibleNonAscii(s, ref i)))
            {
                return false;
            }
        }

        return true;
    }

    // A non-ASCII character that shows in a log line as itself: not a control, space, format
    // character (bidi overrides, zero-width ones: they would reorder or hide what the log says)
    // or a lone surrogate; a surrogate pair is stepped over whole.
    private static bool IsVisibleNonAscii(ReadOnlySpan<char> s, ref int i)
    {
        var c = s[i];
        if (c <= '\x7f' || char.IsControl(c) || char.IsWhiteSpace(c) || char.IsLowSurrogate(c)
            || System.Globalization.CharUnicodeInfo.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format)
        {
            return false;
        }

        if (char.IsHighSurrogate(c))
        {
            if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1])
                || System.Globalization.CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(c, s[i + 1])) == System.Globalization.UnicodeCategory.Format)
            {
                return false;
            }

            i++;
        }

        return true;
    }

    // Letters, digits, hyphens and dots (IDNs arrive as A-labels or UTF-8; UTF-8 is left to the MTA).
    private static bool IsHostName(ReadOnlySpan<char> s)
    {
        if (s.IsEmpty || s[0] is '.' or '-' or '[')
        {
            return false;
        }

        foreach (var c in s)
        {
            if (!(char.IsLetterOrDigit(c) || c is '-' or '.'))
            {
                return false;
            }
        }

        return true;
    }
}
