// Maps any address of a list (dev@, dev-bounces+VERP@, dev-request@, dev-join@, dev-confirm+TOKEN@,
// ...) to the list and the queue its mail belongs in, as Mailman's own aliases do.
using System.Diagnostics.CodeAnalysis;

namespace Mailman.Lists;

/// <summary>Which list an address belongs to and what kind of mail goes there.</summary>
public sealed record ListAddress(ListName List, string Queue)
{
    /// <summary>
    /// The address suffixes a list answers to, the queue each feeds, and the command mail to it
    /// stands for whatever it says (null: the body's commands, or none).
    /// </summary>
    public static readonly IReadOnlyList<(string Suffix, string Queue, string? Command)> Suffixes =
    [
        ("", "in", null), ("-bounces", "bounces", null), ("-request", "request", null), ("-owner", "owner", null),
        ("-join", "request", "join"), ("-leave", "request", "leave"), ("-subscribe", "request", "join"), ("-unsubscribe", "request", "leave"),
        (Confirm, "request", null),
    ];

    /// <summary>The confirmation address's suffix (LIST-confirm+TOKEN@HOST).</summary>
    public const string Confirm = "-confirm";

    /// <summary>
    /// Why <paramref name="name"/> cannot be a list's name: it ends in a role suffix, and is that
    /// address of another list ("dev-owner@host is the owner address of dev@host"); null when not.
    /// </summary>
    public static string? RoleAddressOf(ListName name)
        => Suffixes.FirstOrDefault(r => r.Suffix.Length > 0 && name.LocalPart.EndsWith(r.Suffix, StringComparison.OrdinalIgnoreCase)) is { Suffix.Length: > 0 } role
            ? $"{name} is the {role.Suffix[1..]} address of {name.LocalPart[..^role.Suffix.Length]}@{name.Domain}"
            : null;

    /// <summary>The suffix the address used ("" for the list itself, "-join", "-confirm", ...), lower-cased.</summary>
    public string Suffix { get; init; } = "";

    /// <summary>The command mail to this address stands for ("join" for -join and -subscribe, "leave" for -leave and -unsubscribe), or null.</summary>
    public string? Command => Suffixes.FirstOrDefault(s => s.Suffix == Suffix).Command;

    /// <summary>The "+extension" of the local part (a VERP address, a confirmation token), or null.</summary>
    public string? Extension { get; init; }

    /// <summary>
    /// <paramref name="address"/> as a list's addresses are compared: a quoted local part
    /// ("dev"@host) unquoted, as it is the same mailbox as the bare one (RFC 5321 4.1.2), or a
    /// list's own address could pass for someone else's; the domain as its A-labels, as a list's
    /// domain is (review 50: all@lists.bücher.example was taken for no list's and added to that
    /// list itself); a final dot of the domain (the DNS root, which the MTA drops) left out
    /// (review 84: a site owner "la@host." got owner mail, which the MTA gave list la as a post).
    /// </summary>
    public static string Comparable(string address) => Instance.SmtpOptions.WireAddress(WithoutRootDot(Unquote(address)));

    private static string WithoutRootDot(string address)
        => address.EndsWith('.') && address.LastIndexOf('@') is var at and > 0 && at < address.Length - 2 && address[^2] != '.' ? address[..^1] : address;

    private static string Unquote(string address)
        => address.LastIndexOf('@') is var quoteEnd and > 1 && address[0] == '"' && address[quoteEnd - 1] == '"'
            ? System.Text.RegularExpressions.Regex.Replace(address[1..(quoteEnd - 1)], @"\\(.)", "$1") + address[quoteEnd..]
            : address;

    /// <summary>
    /// Resolves <paramref name="address"/>: a "+extension" (VERP) is ignored, a known suffix picks the
    /// queue. The list itself is not looked up here.
    /// </summary>
    public static bool TryResolve(string address, [NotNullWhen(true)] out ListAddress? result, [NotNullWhen(false)] out string? error)
    {
        result = null;

        var written = Unquote(address);
        address = Comparable(address);
        var at = address.LastIndexOf('@');
        if (at <= 0)
        {
            error = $"'{written}' is not an address of a list (LIST@HOST)";
            return false;
        }

        var local = address[..at];
        string? extension = null;
        var plus = local.IndexOf('+', StringComparison.Ordinal);
        if (plus > 0)
        {
            extension = local[(plus + 1)..];
            local = local[..plus];
        }

        foreach (var (suffix, queue, _) in Suffixes.Where(s => s.Suffix.Length > 0))
        {
            if (local.EndsWith(suffix, StringComparison.OrdinalIgnoreCase) && local.Length > suffix.Length)
            {
                if (ListName.TryParse(local[..^suffix.Length] + address[at..], out var list, out error))
                {
                    result = new ListAddress(list, queue) { Suffix = suffix, Extension = extension };
                    return true;
                }

                return false;
            }
        }

        if (ListName.TryParse(local + address[at..], out var name, out error))
        {
            result = new ListAddress(name, "in") { Extension = extension };
            return true;
        }

        return false;
    }
}
