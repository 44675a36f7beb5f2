// The delivery log of one claimed out entry (NAME.ckpt beside NAME.bak): which chunks of its
// recipients are done, which recipients were deferred, and whether every outcome is durably
// queued elsewhere. Appended and fsynced per chunk, so after a crash delivery resumes after the
// last recorded chunk: at most the chunks in flight are sent twice.
using System.IO.Abstractions;
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

    private DeliveryCheckpoint(IFileSystem fs, string path)
    {
        _fs = fs;
        _path = path;
    }

    public string Path => _path;

    /// <summary>True when every outcome was durably queued elsewhere: the entry only needs deleting.</summary>
    public bool Final { get; private set; }

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

    /// <summary>Opens (and reads) the log of <paramref name="entry"/>; a torn last line is ignored.</summary>
    public static DeliveryCheckpoint Open(IFileSystem fs, Switchboard queue, ClaimedEntry entry)
    {
        var checkpoint = new DeliveryCheckpoint(fs, queue.CheckpointPath(entry.Name));
        if (fs.File.Exists(checkpoint._path))
        {
            foreach (var line in ReadLines(fs, checkpoint._path))
            {
                if (line.StartsWith("D ", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ');
                    if (parts.Length == 3 && long.TryParse(parts[1], out var chunk) && int.TryParse(parts[2], out var count))
                    {
                        checkpoint._done[chunk] = Math.Max(count, checkpoint._done.GetValueOrDefault(chunk));
                    }
                }
                else if (line == "F")
                {
                    checkpoint.Final = true;
                }
            }
        }

        return checkpoint;
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

    /// <summary>Every recipient deferred so far, in all runs, streamed from the log.</summary>
    public IEnumerable<Recipient> Deferred()
    {
        if (!_fs.File.Exists(_path))
        {
            yield break;
        }

        foreach (var line in ReadLines(_fs, _path))
        {
            if (line.StartsWith("R ", StringComparison.Ordinal))
            {
                yield return Recipient.Parse(line[2..]);
            }
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

    private void Append(string records)
    {
        var bytes = Encoding.UTF8.GetBytes(records);
        lock (_gate)
        {
            _log ??= _fs.FileStream.New(_path, new FileStreamOptions
            {
                Mode = FileMode.Append,
                Access = FileAccess.Write,
                Share = FileShare.Read,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            _log.Write(bytes);
            if (_log is FileSystemStream fss)
            {
                fss.Flush(flushToDisk: true);
            }
            else
            {
                _log.Flush();
            }
        }
    }

    // Complete lines only: a crash mid-append leaves a torn last record, which never happened.
    private static IEnumerable<string> ReadLines(IFileSystem fs, string path)
    {
        string text;
        using (var stream = fs.FileStream.New(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        using (var reader = new StreamReader(stream, Encoding.UTF8))
        {
            text = reader.ReadToEnd();
        }

        var end = text.LastIndexOf('\n');
        if (end < 0)
        {
            yield break;
        }

        foreach (var line in text[..end].Split('\n'))
        {
            yield return line;
        }
    }
}
