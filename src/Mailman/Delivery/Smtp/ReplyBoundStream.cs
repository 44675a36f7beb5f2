// The connection's stream as MailKit reads it: a server may send at most MaxReply bytes between
// two of our writes. MailKit keeps a reply whole until its last line, with no limit of its own,
// and a relay that never ends its greeting or EHLO reply ("220-" and then bytes for ever) grew
// the daemon by gigabytes within the session's deadline (review 67).
namespace Mailman.Delivery.Smtp;

internal sealed class ReplyBoundStream(Stream inner) : Stream
{
    /// <summary>The most a server may send us before our next command: far more than any reply, or a pipelined batch of them.</summary>
    internal const int MaxReply = 1 << 20;

    private long _sinceWrite;

    /// <summary>We sent STARTTLS on this connection: a failure of the session's setup after it is one of TLS (refused, its handshake, or the EHLO in it).</summary>
    internal bool SentStartTls { get; private set; }

    public override bool CanRead => inner.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => inner.CanWrite;

    public override bool CanTimeout => inner.CanTimeout;

    public override int ReadTimeout { get => inner.ReadTimeout; set => inner.ReadTimeout = value; }

    public override int WriteTimeout { get => inner.WriteTimeout; set => inner.WriteTimeout = value; }

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer) => Count(inner.Read(buffer));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        => Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private int Count(int read)
    {
        _sinceWrite += read;
        if (_sinceWrite > MaxReply)
        {
            throw new IOException($"the SMTP server sent more than {MaxReply >> 20} MiB without a command of ours in between: no SMTP reply is that long");
        }

        return read;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _sinceWrite = 0;
        SentStartTls |= buffer.StartsWith("STARTTLS\r\n"u8);
        inner.Write(buffer);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _sinceWrite = 0;
        SentStartTls |= buffer.Span.StartsWith("STARTTLS\r\n"u8);
        return inner.WriteAsync(buffer, cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
