// Validates and splits fully qualified list names (LIST@HOST). Every list name becomes part of a
// path or a queue record, so the alphabet is strict: nothing here ever reaches the file system
// unvalidated.
using System.Diagnostics.CodeAnalysis;

namespace Mailman.Lists;

/// <summary>A validated, lower-cased fully qualified list name such as <c>dev@example.org</c>.</summary>
public sealed record ListName
{
    private ListName(string local, string domain)
    {
        LocalPart = local;
        Domain = domain;
    }

    /// <summary>The part before '@' (e.g. <c>dev</c>).</summary>
    public string LocalPart { get; }

    /// <summary>The mail host (e.g. <c>example.org</c>).</summary>
    public string Domain { get; }

    /// <summary>The posting address, <c>LIST@HOST</c>.</summary>
    public string Fqdn => LocalPart + "@" + Domain;

    /// <summary>RFC 2919 list identifier, <c>LIST.HOST</c>.</summary>
    public string ListId => LocalPart + "." + Domain;

    /// <summary>The address that receives bounces: <c>LIST-bounces@HOST</c>.</summary>
    public string BouncesAddress => LocalPart + "-bounces@" + Domain;

    public string RequestAddress => LocalPart + "-request@" + Domain;

    public string OwnerAddress => LocalPart + "-owner@" + Domain;

    public override string ToString() => Fqdn;

    /// <summary>Parses <paramref name="text"/>.</summary>
    /// <exception cref="FormatException">The name is not a safe <c>LIST@HOST</c>.</exception>
    public static ListName Parse(string text)
        => TryParse(text, out var name, out var error) ? name : throw new FormatException(error);

    public static bool TryParse(string? text, [NotNullWhen(true)] out ListName? name, [NotNullWhen(false)] out string? error)
    {
        name = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "a list name is required (LIST@HOST)";
            return false;
        }

        var at = text.IndexOf('@', StringComparison.Ordinal);
        if (at <= 0 || at != text.LastIndexOf('@') || at == text.Length - 1)
        {
            error = $"'{Printable(text)}' is not a list name of the form LIST@HOST";
            return false;
        }

        var local = text[..at].ToLowerInvariant();
        var domain = text[(at + 1)..].ToLowerInvariant();
        if (local.Length > 64 || !IsLocalPart(local))
        {
            error = $"'{Printable(text)}': the list part may use only a-z, 0-9, '.', '_' and '-', must start with a letter or digit, and be at most 64 characters";
            return false;
        }

        if (domain.Length > 253 || !IsDomain(domain))
        {
            error = $"'{Printable(text)}': '{Printable(domain)}' is not a valid host name{AsciiForm(domain)}";
            return false;
        }

        name = new ListName(local, domain);
        error = null;
        return true;
    }

    // An internationalized host name is written in its ASCII (xn--) form, as DNS and Postfix have it (review 94).
    private static string AsciiForm(string domain)
    {
        if (System.Text.Ascii.IsValid(domain))
        {
            return "";
        }

        try
        {
            var ascii = new System.Globalization.IdnMapping().GetAscii(domain);
            // Only a form a list may have (review 107: dev@bücher was told xn--bcher-kva, which
            // lists create then refused for having no dot).
            return IsDomain(ascii) && IsInternetDomain(ascii) ? $"; give its ASCII form, {ascii}" : "";
        }
        catch (ArgumentException)
        {
            return "";
        }
    }

    // Special-use names that never leave a site (RFC 6761, 6762, 8375; localdomain and internal
    // by custom): t@x.localhost is loopback, t@localhost.localdomain local delivery (review 108).
    private static readonly string[] LocalSuffixes = [".localhost", ".local", ".localdomain", ".invalid", ".internal", ".home.arpa"];

    /// <summary>Whether <paramref name="address"/>'s domain is one mail from the Internet reaches (<see cref="IsInternetDomain"/>).</summary>
    public static bool IsInternetAddress(string address) => IsInternetDomain(address[(address.LastIndexOf('@') + 1)..]);

    /// <summary>
    /// A domain mail from the Internet can reach: a name with a dot, without a trailing one, not
    /// an address literal ([192.0.2.1]) nor an IP address (its last label not all digits), nor
    /// under a special-use name that stays on a site (.localhost, .local, .localdomain, ...).
    /// </summary>
    public static bool IsInternetDomain(string domain)
        => domain.Contains('.', StringComparison.Ordinal) && !domain.EndsWith('.') && !domain.StartsWith('[')
            && !System.Net.IPAddress.TryParse(domain, out _) && !domain[(domain.LastIndexOf('.') + 1)..].All(char.IsAsciiDigit)
            && !LocalSuffixes.Any(s => domain.EndsWith(s, StringComparison.OrdinalIgnoreCase));

    private static bool IsLocalPart(string s)
    {
        if (!char.IsAsciiLetterOrDigit(s[0]) || s.Contains("..", StringComparison.Ordinal) || s.EndsWith('.'))
        {
            return false;
        }

        foreach (var c in s)
        {
            if (!(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsDomain(string s)
    {
        foreach (var label in s.Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-')
            {
                return false;
            }

            foreach (var c in label)
            {
                if (!(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static string Printable(string s)
    {
        var chars = s.Length > 80 ? s[..80].ToCharArray() : s.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsControl(chars[i]))
            {
                chars[i] = '?';
            }
        }

        return new string(chars);
    }
}
