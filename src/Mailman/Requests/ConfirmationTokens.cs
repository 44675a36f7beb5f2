// Confirmation tokens derived from the request that caused them: an HMAC under the instance's
// secret key of (queue entry, purpose), 128 bits as 32 hex digits. Nobody without the key can
// guess one, and a run that crashed after mailing a confirmation and is repeated stores the very
// token it mailed: the confirmation out and the pending request in the database always agree.
using System.Text;
using Mailman.Instance;

namespace Mailman.Requests;

public sealed class ConfirmationTokens(SecretKey key)
{
    public string For(string triggerEntry, string purpose)
    {
        Span<byte> mac = stackalloc byte[32];
        key.Mac(Encoding.UTF8.GetBytes("pending\n" + triggerEntry + "\n" + purpose), mac);
        return Convert.ToHexStringLower(mac[..16]);
    }
}
