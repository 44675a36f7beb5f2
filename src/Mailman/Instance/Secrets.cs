// Reads a relay's password once at start: from a file only its owner can read, or from the
// directory systemd's LoadCredential= fills ($CREDENTIALS_DIRECTORY). Never from configuration
// values or the command line, which other users can see; the value is never logged.
namespace Mailman.Instance;

public static class Secrets
{
    /// <summary>Reads <paramref name="path"/>: it must belong to this process's user and be unreadable by group and others.</summary>
    /// <exception cref="InvalidOperationException">Missing, unreadable, shared or empty; the message names the setting and the fix.</exception>
    public static string ReadPasswordFile(string path, string setting)
    {
        if (!IsFile(path))
        {
            var why = Directory.Exists(path) ? "is a directory, not a file"
                : new FileInfo(path).LinkTarget is { } target ? $"is a symbolic link to {target}, which cannot be read as a file"
                : "does not exist";
            throw new InvalidOperationException($"configuration: {setting} {path} {why}");
        }

        var mode = File.GetUnixFileMode(path);
        const UnixFileMode shared = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        if ((mode & shared) != 0)
        {
            throw new InvalidOperationException(
                $"configuration: {setting} {path} is open to {((mode & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute)) != 0 ? "others" : "its group")} (mode {Octal(mode)}): chmod 600 {path}");
        }

        var owner = FileOwner.Uid(path);
        if (owner is { } uid && uid != FileOwner.EffectiveUid)
        {
            throw new InvalidOperationException(
                $"configuration: {setting} {path} belongs to {FileOwner.UserName(uid)}, not to {FileOwner.UserName(FileOwner.EffectiveUid)} who runs mailman: chown it");
        }

        return Read(path, setting);
    }

    /// <summary>Reads the systemd credential <paramref name="name"/> (LoadCredential=NAME:/path in the unit).</summary>
    /// <exception cref="InvalidOperationException">No credentials directory, or no such credential.</exception>
    public static string ReadCredential(string name, string setting)
    {
        var dir = Environment.GetEnvironmentVariable("CREDENTIALS_DIRECTORY");
        if (string.IsNullOrEmpty(dir))
        {
            throw new InvalidOperationException(
                $"configuration: {setting} needs systemd's LoadCredential=NAME:/path/to/file in the unit, NAME as {setting} gives it ($CREDENTIALS_DIRECTORY is not set)");
        }

        var path = Path.Combine(dir, name);
        if (!IsFile(path))
        {
            // The name is not printed: a password typed in its place would be (review 86).
            throw new InvalidOperationException($"configuration: {setting}: no credential of the name it gives ({name.Length} characters, not shown) in {dir}: LoadCredential=NAME:/path/to/file in the unit names it");
        }

        return Read(path, setting);
    }

    private static string Read(string path, string setting)
    {
        if (FileOwner.NotASettingsFile(path, 64 << 10) is { } why)
        {
            throw new InvalidOperationException($"configuration: {setting} {path} {why}");
        }

        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"configuration: {setting} {path} cannot be read: {e.Message}", e);
        }

        // UTF-8, what AUTH sends (a UTF-8 byte-order mark is not part of it). Review 137: a
        // UTF-16 byte-order mark made File.ReadAllText read another password than the file's
        // bytes, and the NUL inside was never seen; bytes that are not UTF-8 were read as U+FFFD.
        var bom = bytes.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0;
        string text;
        try
        {
            text = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, bom, bytes.Length - bom);
        }
        catch (System.Text.DecoderFallbackException)
        {
            throw new InvalidOperationException($"configuration: {setting} {path} is not UTF-8 text (UTF-16, or another charset): write the password as UTF-8");
        }

        // One line: a final line break is not part of the password.
        var password = text.TrimEnd('\r', '\n');
        // NUL separates AUTH PLAIN's fields (RFC 4616): one in the password would send a field of
        // its own (review 86). No control character is typed into a password (review 133: a tab
        // or an escape an editor left was sent as part of it, and AUTH failed with no hint why).
        // Review 138: C1 controls (U+0080-U+009F) and a second byte-order mark passed too.
        if (password.Length == 0)
        {
            throw new InvalidOperationException($"configuration: {setting} {path} holds no password (it is empty)");
        }

        if (password.Any(c => char.IsControl(c) || c == '\uFEFF'))
        {
            throw new InvalidOperationException($"configuration: {setting} {path} must hold the password on one line, without NUL, carriage return, tab or another control character");
        }

        return password;
    }

    // File.Exists is true for a symbolic link whose target is gone (review 53: the mode check
    // then failed with "Could not find file", exit 73, naming no setting).
    private static bool IsFile(string path)
        => File.Exists(path) && (new FileInfo(path).LinkTarget is null || File.ResolveLinkTarget(path, returnFinalTarget: true) is { Exists: true });

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode, 8);
}
