// A list member as stored, and the parser for the one-member-a-line import format.
using MimeKit;

namespace Mailman.Lists;

/// <summary>A member: the address mail goes to, an optional display name, and whether delivery is on.</summary>
public sealed record Member(string Address, string DisplayName, bool DeliveryEnabled = true)
{
    /// <summary>Why delivery is off (<see cref="Lists.DisabledReason"/>) for a member added disabled; empty: not known (imported so).</summary>
    public string DisabledReason { get; init; } = "";

    /// <summary>The subscription serial as the store streams it (one-click links hash it); empty when not read.</summary>
    public string Serial { get; init; } = "";

    /// <summary>
    /// Parses <c>addr</c> or <c>Display Name &lt;addr&gt;</c>. Control characters in the name are
    /// replaced by spaces: a name never carries a line break into a header or footer.
    /// </summary>
    /// <exception cref="FormatException">Not a single mailbox address.</exception>
    public static Member Parse(string line)
    {
        // A byte-order mark opens a line where two exported files were joined (review 109).
        line = line.Trim().TrimStart('\uFEFF').Trim();
        if (line.Any(c => char.IsControl(c) && c != '\t'))
        {
            // MimeKit reads "evil\n@example.com" as folded white space: evil@example.com (review 39).
            throw new FormatException($"'{Sanitize(line)}' holds a line break or another control character: not one email address");
        }

        if (!MailboxAddress.TryParse(ParserOptions.Default, line, out var mailbox) || !IsPlainAddress(mailbox.Address))
        {
            throw new FormatException($"'{Sanitize(line)}' is not an email address");
        }

        return new Member(mailbox.Address, Sanitize(mailbox.Name ?? ""));
    }

    /// <summary>Replaces control characters (CR, LF, TAB, NUL, NEL, ...) and Unicode's line and paragraph separators with spaces and trims; caps the length.</summary>
    public static string Sanitize(string name) => OneLine(name.Length > 200 ? name[..200] : name);

    /// <summary>
    /// <paramref name="text"/> on one line: every character that .NET or a mail reader takes for
    /// a line break or another control (CR, LF, NEL, U+2028, U+2029, ...) a space; trimmed
    /// (review 54: a held post's Subject with U+2028 wrote its own lines into a notice's body).
    /// The bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) too:
    /// a name with U+202E shows its address or a footer's words reversed (review 69). Right-to-left
    /// scripts need none of them; the marks U+200E and U+200F stay.
    /// </summary>
    public static string OneLine(string text)
        => string.Create(text.Length, text, static (span, src) =>
        {
            for (var i = 0; i < src.Length; i++)
            {
                span[i] = char.IsControl(src[i]) || src[i] is '\u2028' or '\u2029' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069') ? ' ' : src[i];
            }
        }).Trim();

    /// <summary>The longest address: an SMTP path is at most 256 characters with its angle brackets (RFC 5321 4.5.3.1.3).</summary>
    public const int MaxAddressLength = 254;

    /// <summary>One address as members have them: a local part, '@', a domain; no control characters, blanks or list punctuation; at most <see cref="MaxAddressLength"/> characters.</summary>
    public static bool IsPlainAddress(string address)
    {
        var at = address.LastIndexOf('@');
        return at > 0 && at < address.Length - 1 && address.Length <= MaxAddressLength
            && !address.Any(c => char.IsControl(c) || char.IsWhiteSpace(c) || c is '<' or '>' or ',' or ';')
            && !HasInvisible(address);
    }

    // Characters that show as nothing: x<U+200B>y@example.com looked like xy@example.com in every
    // listing, was refused by every relay (SMTPUTF8) and could not be removed by the name it
    // showed (review 109). Format characters (U+200B, U+2060, U+00AD, U+FEFF, the tags of plane
    // 14: by code point, not by UTF-16 unit, review 112), variation selectors, fillers and blanks,
    // and the replacement character a lone surrogate reads as.
    // The joiners U+200C and U+200D stay only after a non-ASCII letter or mark, where a script
    // needs them (IDNA2008's CONTEXTJ).
    private static bool HasInvisible(string address)
    {
        var previous = default(System.Text.Rune);
        foreach (var rune in address.EnumerateRunes())
        {
            var v = rune.Value;
            if (v is 0x200C or 0x200D)
            {
                if (previous.IsAscii || System.Text.Rune.GetUnicodeCategory(previous) is not (System.Globalization.UnicodeCategory.OtherLetter
                    or System.Globalization.UnicodeCategory.NonSpacingMark or System.Globalization.UnicodeCategory.SpacingCombiningMark))
                {
                    return true;
                }
            }
            else if (System.Text.Rune.GetUnicodeCategory(rune) == System.Globalization.UnicodeCategory.Format
                || v is 0x034F or 0x115F or 0x1160 or 0x17B4 or 0x17B5 or 0x2800 or 0x3164 or 0xFFA0 or 0xFFFC or 0xFFFD
                || v is (>= 0x180B and <= 0x180F) or (>= 0xFE00 and <= 0xFE0F) or (>= 0xE0000 and <= 0xE0FFF))
            {
                return true;
            }

            previous = rune;
        }

        return false;
    }
}
