// Small, allocation-light string rules for addresses as bounce reports write them.
using System.Buffers;

namespace Mailman.Bounces;

public static class AddressText
{
    private static readonly SearchValues<char> NotInAddress = SearchValues.Create(" \t\r\n<>(),;[]");

    /// <summary>Longest address kept (RFC 5321: 64 + 1 + 255).</summary>
    public const int MaxLength = 320;

    /// <summary>Trims whitespace, an <c>rfc822;</c> (any address-type) prefix, surrounding quotes
    /// and angle brackets; otherwise the address stays as written. Returns "" for nothing usable.</summary>
    public static string Clean(string? raw)
    {
        var s = (raw ?? "").AsSpan().Trim();
        var semicolon = s.IndexOf(';');
        if (semicolon > 0 && s[..semicolon].IndexOfAny('@', '<', '"') < 0)
        {
            s = s[(semicolon + 1)..].Trim();
        }

        for (var round = 0; round < 3 && s.Length > 0; round++)
        {
            var before = s.Length;
            if (s.Length >= 2 && ((s[0] == '<' && s[^1] == '>') || (s[0] == '"' && s[^1] == '"') || (s[0] == '\'' && s[^1] == '\'')))
            {
                s = s[1..^1].Trim();
            }
            else
            {
                s = s.TrimStart('<').TrimEnd('>').Trim();
            }

            if (s.Length == before)
            {
                break;
            }
        }

        return s.Length is 0 or > MaxLength ? "" : s.ToString();
    }

    /// <summary>
    /// One <c>@</c> with something on both sides, no whitespace or brackets but a domain
    /// literal's (<c>x@[192.0.2.1]</c>, a member address `members add` takes): an address, loosely.
    /// </summary>
    public static bool LooksLikeAddress(ReadOnlySpan<char> s)
    {
        var at = s.LastIndexOf('@');
        return s.Length <= MaxLength && at > 0 && at < s.Length - 1
            && s[..at].IndexOfAny(NotInAddress) < 0
            && (s[(at + 1)..].IndexOfAny(NotInAddress) < 0 || IsDomainLiteral(s[(at + 1)..]));
    }

    /// <summary>
    /// An address literal as RFC 5321 4.1.3 writes one: <c>[192.0.2.1]</c>, <c>[IPv6:2001:db8::1]</c>
    /// (review 106: a member at one was never recognized in its bounces, which went to the owners).
    /// </summary>
    public static bool IsDomainLiteral(ReadOnlySpan<char> domain)
    {
        if (domain.Length < 3 || domain[0] != '[' || domain[^1] != ']')
        {
            return false;
        }

        // An IPv4 address in four decimal parts, or "IPv6:" and an IPv6 address (review 107:
        // [dead], [::] and [.] passed a looser rule).
        var inner = domain[1..^1];
        if (inner.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase))
        {
            // Without a scope id (fe80::1%eth0 parses, and is no RFC 5321 literal: review 108).
            return !inner.Contains('%') && System.Net.IPAddress.TryParse(inner[5..], out var v6)
                && v6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && !v6.Equals(System.Net.IPAddress.IPv6Any);
        }

        var parts = 0;
        foreach (var part in inner.Split('.'))
        {
            var text = inner[part];
            if (++parts > 4 || text.Length is 0 or > 3 || !byte.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
            {
                return false;
            }
        }

        return parts == 4;
    }

    /// <summary>Mailman 2.1's sanity check for heuristically found addresses: a local part of
    /// printable ASCII without <c>&lt; &gt; @</c>, then <c>@</c> and a domain starting with
    /// <c>[a-z0-9._]</c>, or an address literal.</summary>
    public static bool IsPlausible(ReadOnlySpan<char> s)
    {
        var at = s.IndexOf('@');
        if (at <= 0 || at + 1 >= s.Length)
        {
            return false;
        }

        foreach (var c in s[..at])
        {
            if (c is < '!' or > '~' or '<' or '>')
            {
                return false;
            }
        }

        var d = s[at + 1];
        return char.IsAsciiLetterOrDigit(d) || d is '.' or '_' || IsDomainLiteral(s[(at + 1)..]);
    }

    /// <summary>
    /// The address inside a word as warnings write it: after a leading <c>&lt;</c> (or the
    /// last one before the <c>@</c>: <c>TO:&lt;anne@example.com&gt;:</c>), up to the first
    /// <c>&gt; , ; ) "</c> after the <c>@</c>, without trailing dots or colons
    /// (Sendmail's <c>&lt;anne@example.com&gt;...</c>). Null for null.
    /// </summary>
    public static string? Trimmed(string? word)
    {
        if (word is null)
        {
            return null;
        }

        var s = word.AsSpan();
        var at = s.LastIndexOf('@');
        if (at < 0)
        {
            return word;
        }

        var open = s[..at].LastIndexOfAny('<', '"');
        if (open >= 0)
        {
            s = s[(open + 1)..];
            at -= open + 1;
        }

        var close = s[at..].IndexOfAny(">,;)\"");
        if (close >= 0)
        {
            s = s[..(at + close)];
        }

        return s.TrimEnd(".:").ToString();
    }

    /// <summary>The first whitespace-delimited word with an <c>@</c> that has something on
    /// both sides, as written (what <c>\S+@\S+</c> matches, found without a regex: that
    /// pattern's capture phase is quadratic on a long line of "a@a@a@").</summary>
    public static string? FirstAddressWord(string line)
    {
        var i = 0;
        while (i < line.Length)
        {
            while (i < line.Length && char.IsWhiteSpace(line[i]))
            {
                i++;
            }

            var start = i;
            while (i < line.Length && !char.IsWhiteSpace(line[i]))
            {
                i++;
            }

            if (i - start >= 3 && line.AsSpan(start + 1, i - start - 2).Contains('@'))
            {
                return line[start..i];
            }
        }

        return null;
    }

    /// <summary>The words of a line that are addresses once quotes, brackets and trailing
    /// punctuation are trimmed ("calvin@example.com", &lt;a@b&gt;, a@b:).</summary>
    public static IEnumerable<string> AddressesIn(string line)
    {
        foreach (var word in line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            var address = Clean(word.TrimEnd(':', ',', ';', '.'));
            if (LooksLikeAddress(address))
            {
                yield return address;
            }
        }
    }

    /// <summary>The first RFC 3463 status code (<c>5.1.1</c>) in a text, or null.</summary>
    public static string? FindStatus(ReadOnlySpan<char> text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] is '2' or '4' or '5' && (i == 0 || !IsCodeChar(text[i - 1])) && StatusLength(text[i..]) is > 0 and var n)
            {
                return text.Slice(i, n).ToString();
            }
        }

        return null;
    }

    /// <summary>Length of a status code (<c>d.ddd.ddd</c>) at the start of the text, else 0.</summary>
    private static int StatusLength(ReadOnlySpan<char> s)
    {
        if (s.Length < 5 || s[1] != '.')
        {
            return 0;
        }

        var i = 2;
        var digits = 0;
        while (i < s.Length && char.IsAsciiDigit(s[i]) && digits < 3)
        {
            i++;
            digits++;
        }

        if (digits == 0 || i >= s.Length || s[i] != '.')
        {
            return 0;
        }

        i++;
        digits = 0;
        while (i < s.Length && char.IsAsciiDigit(s[i]) && digits < 3)
        {
            i++;
            digits++;
        }

        return digits == 0 || (i < s.Length && IsCodeChar(s[i])) ? 0 : i;
    }

    private static bool IsCodeChar(char c) => char.IsAsciiDigit(c) || c == '.';
}
