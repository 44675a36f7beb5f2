// The instance's secret key (var/secret.key): 32 random bytes, created mode 0600 on first use and
// never logged. HMACs under it make tokens nobody else can compute: one-click unsubscribe links
// and the confirmation tokens derived from a request's queue entry.
using System.Security.Cryptography;

namespace Mailman.Instance;

public sealed class SecretKey(InstancePaths paths)
{
    public const int Length = 32;

    private readonly Lazy<byte[]> _key = new(() => LoadOrCreate(paths.SecretKeyFile), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>HMAC-SHA256 of <paramref name="data"/> under the key into <paramref name="destination"/> (32 bytes).</summary>
    /// <exception cref="InvalidOperationException">The key file exists but is not 32 bytes.</exception>
    /// <exception cref="IOException">The key file cannot be read or created.</exception>
    public void Mac(ReadOnlySpan<byte> data, Span<byte> destination) => HMACSHA256.HashData(_key.Value, data, destination);

    /// <summary>Reads the key, or creates it: written under a temporary name and linked into place, so two processes starting at once agree on one key.</summary>
    internal static byte[] LoadOrCreate(string path)
    {
        if (!File.Exists(path))
        {
            var temp = path + "." + Environment.ProcessId + ".tmp";
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            };
            try
            {
                using (var stream = new FileStream(temp, options))
                {
                    stream.Write(RandomNumberGenerator.GetBytes(Length));
                    stream.Flush(flushToDisk: true);
                }

                // Without overwrite: of two creators one wins, the other reads the winner's key.
                File.Move(temp, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
            }
            finally
            {
                File.Delete(temp);
            }
        }

        var key = File.ReadAllBytes(path);
        return key.Length == Length ? key : throw new InvalidOperationException($"{path} must hold exactly {Length} bytes (delete it to create a new key; old links stop working)");
    }
}
