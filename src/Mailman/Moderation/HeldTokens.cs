// The token of a held post: HMAC-SHA256 of the list and the hold entry's name under the
// instance's own secret key (var/held-token.key, 32 random bytes, mode 0600, made on first use).
// Derived, not random, so that holding a post again after a crash names the same token as the
// moderator notice that may already be on its way; stored only as its hash (Lists/ListStore.Pending.cs),
// single use, compared in constant time by the hash lookup.
using System.Security.Cryptography;
using System.Text;
using Mailman.Instance;
using Mailman.Lists;

namespace Mailman.Moderation;

public sealed class HeldTokens(InstancePaths paths)
{
    private const int KeyLength = 32;
    private readonly Lock _gate = new();
    private byte[]? _key;

    public string KeyFile => Path.Combine(paths.VarDirectory, "held-token.key");

    /// <summary>The token for the post held as <paramref name="entry"/> on <paramref name="list"/>: 32 hex digits.</summary>
    /// <exception cref="IOException">The key cannot be read or made.</exception>
    public string For(ListName list, string entry)
    {
        var mac = HMACSHA256.HashData(Key(), Encoding.UTF8.GetBytes("held-post\n" + list.Fqdn + "\n" + entry));
        return Convert.ToHexStringLower(mac.AsSpan(0, 16));
    }

    private byte[] Key()
    {
        lock (_gate)
        {
            return _key ??= LoadOrCreate();
        }
    }

    private byte[] LoadOrCreate()
    {
        if (TryRead() is { } existing)
        {
            return existing;
        }

        // Written whole under a temporary name and renamed into place; O_EXCL on the final name
        // would let a reader see it empty. Two processes making it at once: the rename of the one
        // is replaced by the other's, and both read back what is there.
        paths.EnsureCreated();
        var temp = KeyFile + "." + Environment.ProcessId + ".tmp";
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        using (var stream = new FileStream(temp, options))
        {
            stream.Write(RandomNumberGenerator.GetBytes(KeyLength));
            stream.Flush(flushToDisk: true);
        }

        if (TryRead() is { } raced)
        {
            File.Delete(temp);
            return raced;
        }

        File.Move(temp, KeyFile, overwrite: true);
        return TryRead() ?? throw new IOException($"cannot read the key {KeyFile} just written");
    }

    private byte[]? TryRead()
    {
        try
        {
            var bytes = File.ReadAllBytes(KeyFile);
            return bytes.Length == KeyLength ? bytes : null;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }
}
