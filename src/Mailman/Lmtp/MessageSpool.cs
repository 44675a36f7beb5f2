// Holds one transaction's message while its recipients' entries are written: in memory up to
// 1 MiB, then in a private file under var/lmtp that is deleted when the spool closes (one a
// killed daemon left is removed when the listener starts). Each recipient's entry is then written
// from it, so a post to three lists is read from the client once. The spool is never the durable
// copy: the queue entries are. A spool file that cannot be written (var/ full) is let go at once
// and the rest of the data read past, so the session answers 452 and goes on (review 78: the
// connection was dropped without a reply and the file held open until a collection).
namespace Mailman.Lmtp;

internal sealed class MessageSpool(string directory) : IDisposable
{
    private const int MemoryLimit = 1 << 20;
    private Stream _stream = new MemoryStream();
    private FileStream? _file; // unbuffered: closing it never flushes (the buffer is _stream's)

    // The MIME structure, counted as the data arrives (one pass); the first limit passed is
    // kept for Check: the data is read to its end all the same.
    private readonly Queues.MimeShape _shape = new();
    private Queues.IntakeException? _tooLarge;

    public long Length => _stream.Length;

    /// <summary>Why the data could not be kept (the spool file could not be written), or null.</summary>
    public IOException? Failure { get; private set; }

    /// <summary>After the data: whether its parts stayed within the limits.</summary>
    /// <exception cref="Queues.IntakeException">They did not (HeaderTooLarge).</exception>
    public void CheckShape()
    {
        if (_tooLarge is not null)
        {
            throw _tooLarge;
        }

        _shape.End();
    }

    /// <summary>Stores part of a line (<paramref name="piece"/> holds no LF), and its LF when <paramref name="ends"/>.</summary>
    public void Write(ReadOnlySpan<byte> piece, bool ends)
    {
        Write(piece);
        if (ends)
        {
            Write("\n"u8);
        }

        if (_tooLarge is null)
        {
            try
            {
                _shape.Append(piece);
                if (ends)
                {
                    _shape.EndOfLine();
                }
            }
            catch (Queues.IntakeException e)
            {
                _tooLarge = e;
            }
        }
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        if (Failure is not null)
        {
            return;
        }

        try
        {
            if (_stream is MemoryStream memory && memory.Length + bytes.Length > MemoryLimit)
            {
                Directory.CreateDirectory(directory);
                _file = new FileStream(Path.Combine(directory, Guid.NewGuid().ToString("N") + ".spool"), new FileStreamOptions
                {
                    Mode = FileMode.CreateNew,
                    Access = FileAccess.ReadWrite,
                    Share = FileShare.None,
                    BufferSize = 0,
                    Options = FileOptions.DeleteOnClose,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                });
                var file = new BufferedStream(_file, 1 << 16);
                memory.Position = 0;
                memory.CopyTo(file);
                _stream = file;
            }

            _stream.Write(bytes);
        }
        catch (IOException e)
        {
            Failure = e;
            LetGo();
        }
        catch (UnauthorizedAccessException e)
        {
            Failure = new IOException(e.Message, e);
            LetGo();
        }
    }

    // The file closed (and so deleted) now; what the buffer holds is dropped, not flushed onto
    // the full disk again.
    private void LetGo()
    {
        _file?.Dispose();
        _file = null;
        _stream = new MemoryStream();
    }

    /// <summary>The first <paramref name="max"/> bytes (the header block, for Message-Id and the checks).</summary>
    public byte[] Head(int max)
    {
        var head = new byte[(int)Math.Min(max, _stream.Length)];
        _stream.Position = 0;
        _stream.ReadExactly(head);
        return head;
    }

    /// <summary>Copies the message from byte <paramref name="from"/> on (past a From_ line).</summary>
    public void CopyTo(Stream destination, int from = 0)
    {
        _stream.Flush();
        _stream.Position = from;
        _stream.CopyTo(destination, 1 << 16);
    }

    // The spool file is deleted on close: what its buffer holds is dropped with it, not written
    // into it first (on a full disk that write failed in Dispose).
    public void Dispose()
    {
        if (_file is not null)
        {
            _file.Dispose();
            _file = null;
            return;
        }

        _stream.Dispose();
    }
}
