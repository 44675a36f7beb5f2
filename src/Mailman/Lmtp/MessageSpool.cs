// Holds one transaction's message while its recipients' entries are written: in memory up to
// 1 MiB, then in a private file under var/lmtp that is deleted when the spool closes (one a
// killed daemon left is removed when the listener starts). Each recipient's entry is then written
// from it, so a post to three lists is read from the client once. The spool is never the durable
// copy: the queue entries are.
namespace Mailman.Lmtp;

internal sealed class MessageSpool(string directory) : IDisposable
{
    private const int MemoryLimit = 1 << 20;
    private Stream _stream = new MemoryStream();

    // The MIME structure, counted as the data arrives (one pass); the first limit passed is
    // kept for Check: the data is read to its end all the same.
    private readonly Queues.MimeShape _shape = new();
    private Queues.IntakeException? _tooLarge;

    public long Length => _stream.Length;

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

        if (_stream is MemoryStream memory && memory.Length + bytes.Length > MemoryLimit)
        {
            Directory.CreateDirectory(directory);
            var file = new FileStream(Path.Combine(directory, Guid.NewGuid().ToString("N") + ".spool"), new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.ReadWrite,
                Share = FileShare.None,
                BufferSize = 1 << 16,
                Options = FileOptions.DeleteOnClose,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            memory.Position = 0;
            memory.CopyTo(file);
            _stream = file;
        }

        _stream.Write(bytes);
    }

    /// <summary>The first <paramref name="max"/> bytes (the header block, for Message-Id and the checks).</summary>
    public byte[] Head(int max)
    {
        var head = new byte[(int)Math.Min(max, _stream.Length)];
        _stream.Position = 0;
        _stream.ReadExactly(head);
        return head;
    }

    public void CopyTo(Stream destination)
    {
        _stream.Flush();
        _stream.Position = 0;
        _stream.CopyTo(destination, 1 << 16);
    }

    public void Dispose() => _stream.Dispose();
}
