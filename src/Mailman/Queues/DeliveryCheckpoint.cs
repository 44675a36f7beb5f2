// The delivery log of one claimed out entry (NAME.ckpt beside NAME.bak): the chunk size the
// delivery was cut with, which chunks of its recipients are done, which recipients were
// deferred, and whether every outcome is durably queued elsewhere. Appended and fsynced per
// chunk, so after a crash delivery resumes after the last recorded chunk: at most the chunks in
// flight are sent twice. Every record is framed with its length and a hash of its bytes, so a
// record torn by a crash or a full disk is recognized wherever it lies and never read as data;
// the log is cleaned of torn bytes before anything is appended after them.
using System.IO.Abstractions;
using System.Security.Cryptography;
using System.Text;

namespace Mailman.Queues;

/// <summary>An append-only, fsynced progress log for one out entry.</summary>
public sealed class DeliveryCheckpoint : IDisposable
{
    private readonly IFileSystem _fs;
    private readonly string _path;
    private readonly Dictionary<long, int> _done = [];
    private readonly object _gate = new();
    private Stream? _log;
    private long _goodLength;

    private DeliveryCheckpoint(IFileSystem fs, string path)
    {
        _fs = fs;
        _path = path;
    }

    public string Path => _path;

    /// <summary>True when every outcome was durably queued elsewhere: the entry only needs deleting.</summary>
    public bool Final { get; private set; }

    /// <summary>The chunk size recorded when the delivery started, or null for a new delivery.</summary>
    public int? ChunkSize { get; private set; }

    /// <summary>The recipients per transaction recorded when the delivery started (batched posts), or null.</summary>
    public int? MaxRecipients { get; private set; }

    /// <summary>
    /// The recipients held in partial batches recorded when the delivery started; the chunk
    /// size for a delivery recorded before the window was (it was one chunk then); null for a
    /// new delivery.
    /// </summary>
    public int? BatchWindow { get; private set; }

    /// <summary>
    /// Chunks recorded as done whose cut was lost with the log's first record: set aside when
    /// the log was opened (with its deferred recipients), so the delivery starts again from the
    /// first member (duplicates, never a member skipped).
    /// </summary>
    public int PlacesLost { get; private set; }

    /// <summary>The log was there but empty when opened (a crash before its first record, or truncated by hand): the delivery starts from the first member.</summary>
    public bool FoundEmpty { get; private set; }

    /// <summary>Torn records found (and removed) when the log was opened.</summary>
    public int TornRecords { get; private set; }

    /// <summary>Chunks with at least one transaction recorded.</summary>
    public int ChunksRecorded
    {
        get
        {
            lock (_gate)
            {
                return _done.Count;
            }
        }
    }

    /// <summary>Opens (and reads) the log of <paramref name="entry"/>; torn records are dropped and the file cleaned.</summary>
    /// <exception cref="IOException">The log exists but cannot be cleaned (a full disk): retried later.</exception>
    public static DeliveryCheckpoint Open(IFileSystem fs, Switchboard queue, ClaimedEntry entry)
    {
        var checkpoint = new DeliveryCheckpoint(fs, queue.CheckpointPath(entry.Name));
        // A FIFO there blocked start-up for good, a link to /dev/zero ran it out of memory, a link
        // elsewhere had the records appended outside the instance (review 45).
        if (Switchboard.NotWrittenHere(fs, checkpoint._path) is { } what)
        {
            throw new CorruptEntryException($"entry {entry.Name}: its checkpoint {what}: no log this queue wrote, so who has the post is not known");
        }

        // A directory there was shunted as "Access to the path is denied" (review 47): say what it is.
        if (fs.Directory.Exists(checkpoint._path))
        {
            throw new EntryBlockedException(entry.Name, $"queues/{queue.Name}/{entry.Name}{Switchboard.CheckpointExtension} is a directory, where the entry's delivery checkpoint goes; move that away, then `mailman unshunt`");
        }

        if (fs.File.Exists(checkpoint._path))
        {
            var bytes = Switchboard.WaitingForWriter(checkpoint._path, () => fs.File.ReadAllBytes(checkpoint._path));
            var records = Records(bytes, out var torn);
            foreach (var record in records)
            {
                checkpoint.Apply(record);
            }

            checkpoint.TornRecords = torn;
            checkpoint.FoundEmpty = bytes.Length == 0;
            checkpoint._goodLength = bytes.Length;
            if (checkpoint.ChunkSize is null && !checkpoint.Final && records.Count > 0)
            {
                // Progress without the cut it counts in (the first record damaged on disk, or
                // edited): read with today's chunk size it skipped members for good (review 71).
                // Nothing recorded can be placed, so nothing is taken as done.
                checkpoint.PlacesLost = checkpoint._done.Count;
                checkpoint._done.Clear();
                records.Clear();
                checkpoint.Compact(records);
            }
            else if (torn > 0)
            {
                checkpoint.Compact(records);
            }

            // The log is kept open from here, the file it appends to settled: another process
            // locking it later cannot keep its records from being written (review 123: the first
            // append failed on a lock taken after the read, and the delivery went on unrecorded).
            Switchboard.WaitingForWriter(checkpoint._path, () => checkpoint.OpenLog());
        }

        return checkpoint;
    }

    /// <summary>The destination grouping recorded when the delivery started ("" for none, and for checkpoints older than grouping).</summary>
    public string? Grouping { get; private set; }

    /// <summary>
    /// Records how a new delivery is cut: recipients per chunk and per transaction, and the
    /// destination grouping. A resumed one keeps what was recorded: progress is counted in
    /// transactions of chunks, so cutting the recipients any other way on resume would skip or
    /// repeat members.
    /// </summary>
    public void Start(int chunkSize, int maxRecipients, string grouping = "", int? batchWindow = null)
    {
        if (ChunkSize is null)
        {
            var window = batchWindow ?? chunkSize;
            var groups = grouping.Length > 0 ? "G " + grouping.Replace("\n", "", StringComparison.Ordinal).Replace("\r", "", StringComparison.Ordinal) + "\n" : "";
            try
            {
                Append(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"C {chunkSize} {maxRecipients} {window}\n") + groups);
            }
            catch (IOException) when (_goodLength == 0)
            {
                // Nothing recorded (a full disk): the empty log goes, so the retry does not read
                // it as a crash before its first record (review 141: "the copies sent before go
                // again" at each retry of the paused runner, when none had been sent).
                Discard();
                throw;
            }

            ChunkSize = chunkSize;
            MaxRecipients = maxRecipients;
            BatchWindow = window;
            Grouping = grouping;
        }
    }

    /// <summary>How many transactions of <paramref name="chunk"/> are already done.</summary>
    public int TransactionsDone(long chunk)
    {
        lock (_gate)
        {
            return _done.GetValueOrDefault(chunk);
        }
    }

    /// <summary>Records that the first <paramref name="transactions"/> of a chunk are done, with the recipients they deferred. Durable on return.</summary>
    /// <exception cref="IOException">Not recorded (a full disk): nothing of it will be read back.</exception>
    public void Record(long chunk, int transactions, IEnumerable<Recipient> deferred)
    {
        var sb = new StringBuilder();
        foreach (var r in deferred)
        {
            sb.Append("R ").Append(r.ToLine());
        }

        sb.Append("D ").Append(chunk).Append(' ').Append(transactions).Append('\n');
        Append(sb.ToString());
        lock (_gate)
        {
            _done[chunk] = Math.Max(transactions, _done.GetValueOrDefault(chunk));
        }
    }

    /// <summary>Records that all outcomes are durably queued elsewhere.</summary>
    public void MarkFinal()
    {
        Append("F\n");
        Final = true;
    }

    /// <summary>Every recipient deferred so far, in all runs, streamed from the log record by record.</summary>
    public IEnumerable<Recipient> Deferred()
    {
        if (!_fs.File.Exists(_path))
        {
            yield break;
        }

        foreach (var record in Records(_fs.File.ReadAllBytes(_path), out _))
        {
            foreach (var line in record.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.StartsWith("R ", StringComparison.Ordinal))
                {
                    yield return Recipient.Parse(line[2..]);
                }
            }
        }
    }

    /// <summary>
    /// The progress the log at <paramref name="path"/> records, for start-up recovery's count of
    /// crashes that made none: its length without the first record when that is the delivery's
    /// cut (review 137: written by the first run before any copy, it counted as progress, and a
    /// delivery that never got anywhere went to shunt after five kills instead of four). Only the
    /// first record's frame and first bytes are read, and only from a file a queue wrote (a FIFO,
    /// a link to /dev/zero: its length, as before; the delivery names it).
    /// </summary>
    public static long Progress(IFileSystem fs, string path)
    {
        var length = fs.FileInfo.New(path).Length;
        if (Switchboard.NotWrittenHere(fs, path) is not null)
        {
            return length;
        }

        using var stream = fs.File.OpenRead(path);
        var head = new byte[48];
        var n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var lf = head.AsSpan(0, n).IndexOf((byte)'\n');
        if (n == 0 || head[0] != (byte)'#' || lf < 0)
        {
            return length;
        }

        var frame = Encoding.ASCII.GetString(head, 1, lf - 1).Split(' ');
        if (frame.Length != 2 || !int.TryParse(frame[0], out var size) || size < 2 || lf + 1 + size > length)
        {
            return length;
        }

        return n >= lf + 3 && head[lf + 1] == (byte)'C' && head[lf + 2] == (byte)' ' ? length - (lf + 1 + size) : length;
    }

    /// <summary>Reads whether the log at <paramref name="path"/> says every outcome is queued (start-up recovery).</summary>
    public static bool IsFinal(IFileSystem fs, string path)
    {
        try
        {
            return fs.File.Exists(path) && Switchboard.NotWrittenHere(fs, path) is null && Records(fs.File.ReadAllBytes(path), out _).Any(r => r == "F\n");
        }
        catch (IOException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _log?.Dispose();
            _log = null;
        }
    }

    private void Apply(string record)
    {
        foreach (var line in record.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("D ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                if (parts.Length == 3 && long.TryParse(parts[1], out var chunk) && int.TryParse(parts[2], out var count))
                {
                    _done[chunk] = Math.Max(count, _done.GetValueOrDefault(chunk));
                }
            }
            else if (line.StartsWith("C ", StringComparison.Ordinal) && ChunkSize is null)
            {
                var parts = line.Split(' ');
                if (int.TryParse(parts[1], out var size) && size > 0)
                {
                    ChunkSize = size;
                    MaxRecipients = parts.Length > 2 && int.TryParse(parts[2], out var max) && max > 0 ? max : null;
                    BatchWindow = parts.Length > 3 && int.TryParse(parts[3], out var window) && window > 0 ? window : size;
                    Grouping ??= "";
                }
            }
            else if (line.StartsWith("G ", StringComparison.Ordinal))
            {
                Grouping = line[2..];
            }
            else if (line == "F")
            {
                Final = true;
            }
        }
    }

    // A record on disk: "#" LENGTH " " HASH "\n" PAYLOAD, HASH the first 8 bytes of the
    // payload's SHA-256 in hex. The payload is written in the same write call as its frame.
    private static byte[] Frame(string payload)
    {
        var body = Encoding.UTF8.GetBytes(payload);
        var head = Encoding.ASCII.GetBytes($"#{body.Length} {Hash(body)}\n");
        return [.. head, .. body];
    }

    private static string Hash(ReadOnlySpan<byte> body) => Convert.ToHexStringLower(SHA256.HashData(body).AsSpan(0, 8));

    // Valid records in order; anything that does not verify is skipped by looking for the next
    // frame that does (a torn record in the middle, left by a crash before an append).
    private static List<string> Records(byte[] bytes, out int torn)
    {
        var records = new List<string>();
        torn = 0;
        var at = 0;
        var inGarbage = false;
        while (at < bytes.Length)
        {
            if (TryRecord(bytes, at, out var payload, out var next))
            {
                records.Add(payload);
                at = next;
                inGarbage = false;
                continue;
            }

            if (!inGarbage)
            {
                torn++;
                inGarbage = true;
            }

            var nextHash = bytes.AsSpan(at + 1).IndexOf((byte)'#');
            if (nextHash < 0)
            {
                break;
            }

            at += 1 + nextHash;
        }

        return records;
    }

    private static bool TryRecord(byte[] bytes, int at, out string payload, out int next)
    {
        payload = "";
        next = at;
        if (bytes[at] != (byte)'#')
        {
            return false;
        }

        var lf = bytes.AsSpan(at).IndexOf((byte)'\n');
        if (lf < 0 || lf > 40)
        {
            return false;
        }

        var head = Encoding.ASCII.GetString(bytes, at + 1, lf - 1).Split(' ');
        if (head.Length != 2 || !int.TryParse(head[0], out var length) || length < 0)
        {
            return false;
        }

        var start = at + lf + 1;
        if (start + length > bytes.Length || Hash(bytes.AsSpan(start, length)) != head[1])
        {
            return false;
        }

        payload = Encoding.UTF8.GetString(bytes, start, length);
        next = start + length;
        return true;
    }

    // Rewrites the log with only its valid records (temp file, fsync, rename), so nothing is
    // ever appended after torn bytes.
    private void Compact(List<string> records)
    {
        var temp = _path + Switchboard.TempExtension;
        _fs.File.Delete(temp); // made anew, never opened through a link or a FIFO left there (review 45)
        using (var stream = _fs.FileStream.New(temp, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            foreach (var r in records)
            {
                stream.Write(Frame(r));
            }

            Flush(stream);
            _goodLength = stream.Length;
        }

        _fs.File.Move(temp, _path, overwrite: true);
    }

    // Closes and removes a log that holds nothing (best effort: the next Open finds it empty).
    private void Discard()
    {
        lock (_gate)
        {
            _log?.Dispose();
            _log = null;
            try
            {
                _fs.File.Delete(_path);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(_log))]
    private Stream OpenLog()
        => _log ??= _fs.FileStream.New(_path, new FileStreamOptions
        {
            Mode = FileMode.OpenOrCreate,
            Access = FileAccess.Write,
            Share = FileShare.Read,
            BufferSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });

    private void Append(string payload)
    {
        var bytes = Frame(payload);
        lock (_gate)
        {
            OpenLog();
            try
            {
                _log.Position = _goodLength;
                _log.Write(bytes);
                Flush(_log);
                _goodLength += bytes.Length;
            }
            catch (IOException)
            {
                // Cut the torn record off, so the next append starts on a record boundary; if
                // even that fails, the next Open finds and removes it.
                try
                {
                    _log.SetLength(_goodLength);
                }
                catch (IOException)
                {
                }

                _log.Dispose();
                _log = null;
                throw;
            }
        }
    }

    private static void Flush(Stream stream)
    {
        if (stream is FileSystemStream fss)
        {
            fss.Flush(flushToDisk: true);
        }
        else
        {
            stream.Flush();
        }
    }
}
