// One file-backed queue: a directory of entry files. Enqueue writes under a temporary name,
// flushes, renames into place and syncs the directory; a runner claims an entry by renaming it
// to .bak, and finishes by deleting it once its result is durably elsewhere. It never decides
// what happens to a message: runners do.
using System.Buffers;
using System.IO.Abstractions;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Mailman.Queues;

/// <summary>A claimed entry: the runner owns it until it calls Finish, Unclaim or moves it.</summary>
public sealed record ClaimedEntry(string Queue, string Name, string Path);

/// <summary>A loaded entry: metadata, message bytes, and where the recipient lines start.</summary>
public sealed record LoadedEntry(ClaimedEntry Claim, EntryMetadata Metadata, byte[] Message, long RecipientsOffset);

/// <summary>A file-backed queue (Mailman's switchboard), one directory under <c>queues/</c>.</summary>
public sealed partial class Switchboard
{
    public const int FormatVersion = 1;
    public const string EntryExtension = ".msg";
    public const string ClaimedExtension = ".bak";
    public const string TempExtension = ".tmp";
    public const string CheckpointExtension = ".ckpt";

    private static readonly byte[] Magic = "MAILMAN-QUEUE/1\n"u8.ToArray();
    private static readonly byte[] Trailer = "MAILMAN-END\n"u8.ToArray();

    private readonly IFileSystem _fs;
    private readonly TimeProvider _time;
    private readonly QueueSignal? _signal;
    private readonly bool _realDisk;

    public Switchboard(IFileSystem fs, string directory, string name, TimeProvider time, QueueSignal? signal = null)
    {
        _fs = fs;
        _time = time;
        _signal = signal;
        Name = name;
        Directory = directory;
        _realDisk = fs is FileSystem;
        _fs.Directory.CreateDirectory(directory);
    }

    public string Name { get; }

    public string Directory { get; }

    public QueueSignal? Signal => _signal;

    /// <summary>
    /// The name of an entry derived from <paramref name="name"/> for <paramref name="purpose"/>
    /// (a notice caused by it, the retry entry of its deferred recipients): the same pair always
    /// gives the same name, so a repeated hop after a crash finds its own earlier result.
    /// </summary>
    public static string DerivedName(string name, string purpose)
    {
        if (!IsValidEntryName(name))
        {
            throw new ArgumentException($"invalid entry name {name}", nameof(name));
        }

        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(name + "\n" + purpose));
        return name[..17] + "-" + Convert.ToHexStringLower(hash.AsSpan(0, 4));
    }

    /// <summary>True for names this queue could have written: <c>{17 digits}-{8 hex}</c>.</summary>
    public static bool IsValidEntryName(string name) => EntryNameRegex().IsMatch(name);

    /// <summary>Writes an entry durably and makes it visible in one rename.</summary>
    /// <param name="name">
    /// The name to use, for a hop that forwards an entry: the post keeps its name from queue to
    /// queue. If this queue holds that name already, a run that crashed between writing here and
    /// finishing its claim did the hop: nothing is written twice.
    /// </param>
    /// <returns>The entry name.</returns>
    /// <exception cref="IOException">The entry could not be written (disk full, permissions); nothing is left behind.</exception>
    public string Enqueue(EntryMetadata metadata, ReadOnlySpan<byte> message, IEnumerable<Recipient>? recipients = null, string? name = null)
    {
        if (name is not null)
        {
            if (!IsValidEntryName(name))
            {
                throw new ArgumentException($"invalid entry name {name}", nameof(name));
            }

            if (Holds(name))
            {
                return name;
            }
        }

        name ??= NewName();
        var final = PathOf(name, EntryExtension);
        var temp = PathOf(name, TempExtension);
        try
        {
            WriteEntry(temp, metadata, message, recipients);
            _fs.File.Move(temp, final);
            SyncDirectory();
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        _signal?.Set();
        return name;
    }

    /// <summary>Whether an entry of this name is waiting or claimed here.</summary>
    public bool Holds(string name)
        => _fs.File.Exists(PathOf(name, EntryExtension)) || _fs.File.Exists(PathOf(name, ClaimedExtension));

    /// <summary>Entry names waiting (not claimed), oldest first.</summary>
    public IReadOnlyList<string> Pending() => List(EntryExtension);

    /// <summary>Entry names currently claimed by a runner (or left claimed by a crash).</summary>
    public IReadOnlyList<string> Claimed() => List(ClaimedExtension);

    /// <summary>Claims the oldest waiting entry; safe against other workers claiming the same one.</summary>
    public ClaimedEntry? TryClaim() => TryClaim(static _ => true);

    /// <summary>Claims the oldest waiting entry that <paramref name="eligible"/> accepts (by name).</summary>
    public ClaimedEntry? TryClaim(Func<string, bool> eligible)
    {
        foreach (var name in Pending())
        {
            if (!eligible(name))
            {
                continue;
            }

            var claimed = Claim(name);
            if (claimed is not null)
            {
                return claimed;
            }
        }

        return null;
    }

    /// <summary>Claims one named entry; null when another worker got it first.</summary>
    public ClaimedEntry? Claim(string name)
    {
        var claimedPath = PathOf(name, ClaimedExtension);
        try
        {
            // rename(2) is atomic: of two workers renaming the same file, exactly one succeeds.
            _fs.File.Move(PathOf(name, EntryExtension), claimedPath);
            return new ClaimedEntry(Name, name, claimedPath);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Reads a claimed entry's metadata and message bytes.</summary>
    /// <exception cref="CorruptEntryException">Torn, truncated or unknown format.</exception>
    public LoadedEntry Load(ClaimedEntry entry)
    {
        using var stream = _fs.File.OpenRead(entry.Path);
        var (metadata, messageOffset) = ReadHead(stream, entry.Name);
        if (stream.Length < messageOffset + metadata.MessageLength + Trailer.Length)
        {
            throw new CorruptEntryException($"entry {entry.Name} is truncated: {stream.Length} bytes, message needs {metadata.MessageLength}");
        }

        CheckTrailer(stream, entry.Name);
        stream.Position = messageOffset;
        var message = new byte[metadata.MessageLength];
        stream.ReadExactly(message);
        return new LoadedEntry(entry, metadata, message, messageOffset + metadata.MessageLength);
    }

    /// <summary>Reads only the metadata of a waiting entry (status, retry scheduling).</summary>
    /// <exception cref="CorruptEntryException">The head cannot be read.</exception>
    public EntryMetadata ReadMetadata(string name, string extension = EntryExtension)
    {
        using var stream = _fs.File.OpenRead(PathOf(name, extension));
        return ReadHead(stream, name).Metadata;
    }

    /// <summary>Reads the metadata at the head of an open entry file, leaving the stream at the message.</summary>
    /// <exception cref="CorruptEntryException">The head cannot be read.</exception>
    internal EntryMetadata ReadMetadata(Stream stream, string name) => ReadHead(stream, name).Metadata;

    /// <summary>Streams the recipient lines of a loaded entry, skipping the first <paramref name="skip"/>.</summary>
    public IEnumerable<Recipient> Recipients(LoadedEntry entry, long skip = 0)
    {
        if (!entry.Metadata.HasRecipients)
        {
            yield break;
        }

        using var stream = _fs.File.OpenRead(entry.Claim.Path);
        stream.Position = entry.RecipientsOffset;
        using var reader = new StreamReader(stream, Encoding.UTF8, false, 1 << 16);
        long index = 0;
        while (reader.ReadLine() is { } line)
        {
            if (line == "MAILMAN-END")
            {
                yield break;
            }

            if (index++ < skip)
            {
                continue;
            }

            var tab = line.IndexOf('\t', StringComparison.Ordinal);
            yield return tab < 0 ? new Recipient(line, "") : new Recipient(line[..tab], line[(tab + 1)..]);
        }

        throw new CorruptEntryException($"entry {entry.Claim.Name}: recipient list has no end marker");
    }

    /// <summary>Deletes a claimed entry (and its delivery checkpoint): its result is durably elsewhere.</summary>
    public void Finish(ClaimedEntry entry)
    {
        _fs.File.Delete(entry.Path);
        TryDelete(CheckpointPath(entry.Name));
    }

    /// <summary>Where the delivery checkpoint of entry <paramref name="name"/> lives.</summary>
    public string CheckpointPath(string name) => PathOf(name, CheckpointExtension);

    /// <summary>Puts a claimed entry back, untouched (graceful shutdown).</summary>
    public void Unclaim(ClaimedEntry entry)
    {
        _fs.File.Move(entry.Path, PathOf(entry.Name, EntryExtension));
        _signal?.Set();
    }

    /// <summary>Moves a claimed entry's file, as it is, into <paramref name="target"/> (corrupt entries to bad).</summary>
    public void MoveRaw(ClaimedEntry entry, Switchboard target)
    {
        _fs.File.Move(entry.Path, target.PathOf(entry.Name, EntryExtension));
        target.SyncDirectory();
    }

    /// <summary>
    /// Start-up recovery: temporary files of interrupted writes are removed; entries left claimed
    /// by a crash go back to the queue with their recovery count raised, or to <paramref name="bad"/>
    /// once it exceeds <paramref name="maxRecoveries"/>. A claimed entry whose name another queue
    /// already holds (<paramref name="forwarded"/>) was forwarded before the crash: it is dropped,
    /// or a restart would process the post a second time (a second copy to every member).
    /// </summary>
    /// <returns>(recovered, sent to bad).</returns>
    public (int Recovered, int ToBad) Recover(Switchboard bad, int maxRecoveries, Func<string, bool>? forwarded = null)
    {
        foreach (var temp in _fs.Directory.EnumerateFiles(Directory, "*" + TempExtension))
        {
            TryDelete(temp);
        }

        // A checkpoint whose entry is gone (finished, crash before the checkpoint was deleted).
        foreach (var checkpoint in _fs.Directory.EnumerateFiles(Directory, "*" + CheckpointExtension))
        {
            var name = _fs.Path.GetFileNameWithoutExtension(checkpoint);
            if (IsValidEntryName(name) && !_fs.File.Exists(PathOf(name, EntryExtension)) && !_fs.File.Exists(PathOf(name, ClaimedExtension)))
            {
                TryDelete(checkpoint);
            }
        }

        int recovered = 0, toBad = 0;
        foreach (var name in Claimed())
        {
            var entry = new ClaimedEntry(Name, name, PathOf(name, ClaimedExtension));
            if (forwarded?.Invoke(name) == true && !_fs.File.Exists(CheckpointPath(name)))
            {
                Finish(entry);
                recovered++;
                continue;
            }

            LoadedEntry loaded;
            try
            {
                loaded = Load(entry);
            }
            catch (CorruptEntryException)
            {
                MoveRaw(entry, bad);
                toBad++;
                continue;
            }

            var metadata = loaded.Metadata.Clone();
            metadata.Recoveries++;
            if (metadata.Recoveries > maxRecoveries)
            {
                metadata.FromQueue = Name;
                metadata.Error = $"left claimed by {metadata.Recoveries} crashed runs";
                bad.Enqueue(metadata, loaded.Message, Recipients(loaded));
                Finish(entry);
                toBad++;
            }
            else
            {
                Rewrite(entry, loaded, metadata);
                recovered++;
            }
        }

        return (recovered, toBad);
    }

    /// <summary>Replaces a claimed entry's metadata and puts it back under the same name, durably.</summary>
    public void Rewrite(ClaimedEntry entry, LoadedEntry loaded, EntryMetadata metadata)
    {
        var temp = PathOf(entry.Name, TempExtension);
        WriteEntry(temp, metadata, loaded.Message, loaded.Metadata.HasRecipients ? Recipients(loaded) : null);
        _fs.File.Move(temp, PathOf(entry.Name, EntryExtension));
        _fs.File.Delete(entry.Path);
        SyncDirectory();
        _signal?.Set();
    }

    internal string PathOf(string name, string extension)
    {
        if (!IsValidEntryName(name))
        {
            throw new ArgumentException($"invalid queue entry name '{name}'", nameof(name));
        }

        return _fs.Path.Combine(Directory, name + extension);
    }

    private List<string> List(string extension)
    {
        var names = new List<string>();
        foreach (var path in _fs.Directory.EnumerateFiles(Directory, "*" + extension))
        {
            var name = _fs.Path.GetFileNameWithoutExtension(path);
            if (IsValidEntryName(name))
            {
                names.Add(name);
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    private void WriteEntry(string path, EntryMetadata metadata, ReadOnlySpan<byte> message, IEnumerable<Recipient>? recipients)
    {
        metadata.Version = FormatVersion;
        metadata.MessageLength = message.Length;
        metadata.HasRecipients = recipients is not null;
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 1 << 16,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        using var stream = _fs.FileStream.New(path, options);
        stream.Write(Magic);
        long count = 0;
        long countPosition = -1;
        if (recipients is not null)
        {
            // The count is not known until the recipients have streamed by; it is patched in place
            // in a fixed-width field, so a million members are never held in memory.
            metadata.RecipientCount = 999_999_999_999;
        }

        var json = JsonSerializer.SerializeToUtf8Bytes(metadata, EntryMetadataJson.Default.EntryMetadata);
        if (recipients is not null)
        {
            var marker = "\"RecipientCount\":999999999999"u8;
            var at = json.AsSpan().IndexOf(marker);
            countPosition = Magic.Length + at + marker.Length - 12;
        }

        stream.Write(json);
        stream.WriteByte((byte)'\n');
        stream.Write(message);
        if (recipients is not null)
        {
            var buffer = new ArrayBufferWriter<byte>(1 << 16);
            foreach (var r in recipients)
            {
                WriteRecipient(buffer, r);
                count++;
                if (buffer.WrittenCount > (1 << 16) - 1024)
                {
                    stream.Write(buffer.WrittenSpan);
                    buffer.ResetWrittenCount();
                }
            }

            stream.Write(buffer.WrittenSpan);
            stream.Position = countPosition;
            // JSON allows whitespace after a number, not leading zeros: pad on the right.
            stream.Write(Encoding.ASCII.GetBytes(count.ToString(System.Globalization.CultureInfo.InvariantCulture).PadRight(12)));
            stream.Seek(0, SeekOrigin.End);
            metadata.RecipientCount = count;
        }

        stream.Write(Trailer);
        stream.Flush(flushToDisk: true);
    }

    private static void WriteRecipient(ArrayBufferWriter<byte> buffer, Recipient r)
    {
        // Addresses and names never contain TAB or LF here: the store sanitizes names and
        // validates addresses; this is the last line of defence for the record format.
        var line = Clean(r.Address) + "\t" + Clean(r.DisplayName) + "\n";
        var span = buffer.GetSpan(Encoding.UTF8.GetMaxByteCount(line.Length));
        buffer.Advance(Encoding.UTF8.GetBytes(line, span));
    }

    private static string Clean(string s)
        => s.AsSpan().IndexOfAny('\t', '\n', '\r') < 0 ? s : s.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');

    private (EntryMetadata Metadata, long MessageOffset) ReadHead(Stream stream, string name)
    {
        Span<byte> magic = stackalloc byte[16];
        if (stream.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false) != magic.Length || !magic.SequenceEqual(Magic))
        {
            throw new CorruptEntryException($"entry {name} does not start with the queue format marker");
        }

        var line = new ArrayBufferWriter<byte>(512);
        int b;
        while ((b = stream.ReadByte()) != '\n')
        {
            if (b < 0 || line.WrittenCount > 1 << 20)
            {
                throw new CorruptEntryException($"entry {name} has no complete metadata line");
            }

            line.GetSpan(1)[0] = (byte)b;
            line.Advance(1);
        }

        EntryMetadata? metadata;
        try
        {
            metadata = JsonSerializer.Deserialize(line.WrittenSpan, EntryMetadataJson.Default.EntryMetadata);
        }
        catch (JsonException e)
        {
            throw new CorruptEntryException($"entry {name} has unreadable metadata: {e.Message}", e);
        }

        if (metadata is null || metadata.Version != FormatVersion || metadata.MessageLength < 0)
        {
            throw new CorruptEntryException($"entry {name} has metadata of an unknown version");
        }

        return (metadata, stream.Position);
    }

    private static void CheckTrailer(Stream stream, string name)
    {
        Span<byte> tail = stackalloc byte[12];
        stream.Position = stream.Length - tail.Length;
        stream.ReadExactly(tail);
        if (!tail.SequenceEqual(Trailer))
        {
            throw new CorruptEntryException($"entry {name} is truncated (no end marker)");
        }
    }

    private string NewName()
    {
        var micros = (_time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / 10;
        Span<byte> random = stackalloc byte[4];
        RandomNumberGenerator.Fill(random);
        return micros.ToString("D17", System.Globalization.CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(random);
    }

    private void SyncDirectory()
    {
        if (_realDisk)
        {
            DirectorySync.Sync(Directory);
        }
    }

    private void TryDelete(string path)
    {
        try
        {
            _fs.File.Delete(path);
        }
        catch (IOException)
        {
        }
    }

    [GeneratedRegex("^[0-9]{17}-[0-9a-f]{8}$")]
    private static partial Regex EntryNameRegex();
}
