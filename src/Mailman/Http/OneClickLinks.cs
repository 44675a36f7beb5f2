// RFC 8058 one-click unsubscribe links: PUBLIC/u/LIST/ADDRESS/TOKEN, where ADDRESS is the member's
// address in base64url and TOKEN is a stateless, unforgeable HMAC-SHA256 (the instance's secret
// key) over the list, the lower-cased address and the member's subscription serial, truncated to
// 128 bits. A re-subscription changes the serial, so an old link cannot unsubscribe the new
// member. Every part of a link is checked for shape before anything looks at the database.
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Mailman.Instance;
using Mailman.Lists;

namespace Mailman.Http;

public sealed class OneClickLinks(MailmanOptions options, SecretKey key)
{
    /// <summary>Bytes of the HMAC kept in a token (128 bits).</summary>
    public const int TokenBytes = 16;

    /// <summary>Characters of a token: base64url of 16 bytes, unpadded.</summary>
    public const int TokenLength = 22;

    /// <summary>Longest address segment: base64url of a 254-byte address.</summary>
    public const int MaxAddressSegment = 340;

    private readonly string _public = options.Http.PublicUrl.Length == 0 ? "" : new Uri(options.Http.PublicUrl).AbsoluteUri.TrimEnd('/');

    /// <summary>True when the instance has a public base URL: personalized copies carry one-click links.</summary>
    public bool Enabled => _public.Length > 0;

    /// <summary>The path the endpoint serves for a list, up to the per-recipient part: <c>/u/LIST/</c>.</summary>
    public static string PathPrefix(ListName list) => "/u/" + list.Fqdn + "/";

    /// <summary>The public URL of a list's links up to the per-recipient part.</summary>
    public string UrlPrefix(ListName list) => _public + PathPrefix(list);

    /// <summary>The token of (list, address, serial). Per member, when the out entry is written.</summary>
    public string Token(ListName list, string address, string serial)
    {
        Span<byte> mac = stackalloc byte[32];
        Compute(list, address, serial, mac);
        return Base64Url.EncodeToString(mac[..TokenBytes]);
    }

    /// <summary>Whether <paramref name="token"/> is the token of (list, address, serial); constant time.</summary>
    public bool Verify(ListName list, string address, string serial, string token)
    {
        // Compared as text: a token with other trailing bits (or any other spelling) is not the token.
        Span<byte> mac = stackalloc byte[32];
        Compute(list, address, serial, mac);
        Span<byte> expected = stackalloc byte[TokenLength];
        Base64Url.EncodeToUtf8(mac[..TokenBytes], expected, out _, out _);
        Span<byte> given = stackalloc byte[TokenLength];
        return token.Length == TokenLength && token.All(char.IsAscii)
            && Encoding.ASCII.GetBytes(token, given) == TokenLength
            && CryptographicOperations.FixedTimeEquals(expected, given);
    }

    /// <summary>
    /// The per-recipient part of a link, <c>ADDRESS/TOKEN</c>, as ASCII bytes. Hot path: once per
    /// copy, from the address bytes the copy has already encoded.
    /// </summary>
    public static byte[] Piece(ReadOnlySpan<byte> addressUtf8, string token)
    {
        var length = Base64Url.GetEncodedLength(addressUtf8.Length);
        var piece = new byte[length + 1 + token.Length];
        Base64Url.EncodeToUtf8(addressUtf8, piece, out _, out var written);
        piece[written] = (byte)'/';
        Encoding.ASCII.GetBytes(token, piece.AsSpan(written + 1));
        return piece;
    }

    /// <summary>
    /// Checks the three path segments of a link for shape only: a valid list name, an address
    /// segment that decodes to a plain address, a token of the right length and alphabet.
    /// </summary>
    public static bool TryParse(string? list, string? addressSegment, string? token, out ListName? name, out string address)
    {
        name = null;
        address = "";
        if (list is null || addressSegment is null || token is null
            || list.Length > 320 || addressSegment.Length is 0 or > MaxAddressSegment || token.Length != TokenLength
            || !IsBase64Url(addressSegment) || !IsBase64Url(token)
            || !ListName.TryParse(list, out name, out _) || name.Fqdn != list)
        {
            name = null;
            return false;
        }

        // Base64Url's Try method throws on some malformed input; and only the canonical spelling
        // of an address counts (the one the link was made with).
        Span<byte> bytes = stackalloc byte[256];
        int n;
        try
        {
            if (!Base64Url.TryDecodeFromChars(addressSegment, bytes, out n) || n is 0 or > 254 || Base64Url.EncodeToString(bytes[..n]) != addressSegment)
            {
                name = null;
                return false;
            }
        }
        catch (FormatException)
        {
            name = null;
            return false;
        }

        try
        {
            address = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes[..n]);
        }
        catch (DecoderFallbackException)
        {
            name = null;
            return false;
        }

        // The addresses a member can have (Member.IsPlainAddress): a quoted local part
        // ("john..doe"@example.com) is one, and its copies carry links (review 37).
        if (!Member.IsPlainAddress(address))
        {
            name = null;
            address = "";
            return false;
        }

        return true;
    }

    private void Compute(ListName list, string address, string serial, Span<byte> mac)
    {
        var text = list.Fqdn + "\n" + address.Trim().ToLowerInvariant() + "\n" + serial;
        var max = Encoding.UTF8.GetMaxByteCount(text.Length);
        Span<byte> data = max <= 1024 ? stackalloc byte[max] : new byte[max];
        var length = Encoding.UTF8.GetBytes(text, data);
        key.Mac(data[..length], mac);
    }

    private static bool IsBase64Url(string s)
    {
        foreach (var c in s)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }
}
