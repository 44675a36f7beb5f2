// The list's moderator password at rest: PBKDF2-HMAC-SHA256 with a random salt, in one string
// that names its own parameters ("pbkdf2-sha256$ITERATIONS$SALT$HASH"), compared in constant
// time. The password itself is never stored, shown or logged.
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Mailman.Lists;

public static class PasswordHash
{
    private const string Scheme = "pbkdf2-sha256";

    // OWASP's figure for PBKDF2-HMAC-SHA256 (2023). A check costs one hash per post that carries
    // an Approved: password, a fraction of a second; stored with the hash, so it can change.
    private const int Iterations = 600_000;

    /// <summary>A new salted hash of <paramref name="password"/>.</summary>
    public static string Create(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, Iterations, HashAlgorithmName.SHA256, 32);
        return string.Join('$', Scheme, Iterations.ToString(CultureInfo.InvariantCulture), Convert.ToBase64String(salt), Convert.ToBase64String(hash));
    }

    /// <summary>True when <paramref name="password"/> matches <paramref name="stored"/>; false for anything malformed.</summary>
    public static bool Verify(string password, string stored)
    {
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != Scheme
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var iterations) || iterations is < 1 or > 10_000_000)
        {
            return false;
        }

        byte[] salt, expected;
        try
        {
            salt = Convert.FromBase64String(parts[2]);
            expected = Convert.FromBase64String(parts[3]);
        }
        catch (FormatException)
        {
            return false;
        }

        var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }
}
