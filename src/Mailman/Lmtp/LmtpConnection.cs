// The bytes of one LMTP connection: command lines in, replies out, and the DATA block with its
// dot-stuffing undone (RFC 5321 §4.5.2). A blocking socket read by one dedicated thread: no
// event loop between the bytes and the session (see LmtpServer). Replies are buffered and sent
// when the session is about to wait for the client, so a pipelined MAIL/RCPT/DATA batch gets its
// replies in one write (RFC 2920). Hot path: every byte of every post passes ReadData once.
using System.Net.Sockets;
using System.Text;

namespace Mailman.Lmtp;

// The socket's timeout is per read: a client that sends a byte of a command line every few
// seconds, or its data at a few bytes a second, would hold a session slot for ever (review 36:
// Lmtp:MaxSessions such clients stopped all intake). As Postfix's smtpd_per_record_deadline and
// smtpd_min_data_rate: a command line must be whole within the timeout, and DATA must arrive
// within the timeout plus one second per MinDataRate bytes. Checked before each read (a read
// waits at most the timeout), so the hot path costs one clock read per 64 KB.
internal sealed class LmtpConnection(Socket socket, TimeSpan timeout) : IDisposable
{
    /// <summary>Longest command line read (RFC 5321 §4.5.3.1.4: 512 octets; room for long addresses).</summary>
    public const int MaxCommandLine = 4096;

    /// <summary>The slowest DATA taken, in bytes a second (Postfix's smtpd_min_data_rate).</summary>
    public const int MinDataRate = 500;

    private readonly long _timeout = (long)timeout.TotalMilliseconds;
    private long _received;

    private readonly byte[] _in = new byte[1 << 16];
    private readonly MemoryStream _out = new();
    private int _start;
    private int _end;

    /// <summary>
    /// Called with true before a read that waits on the client (for a command or more of a
    /// message), false after it returned: shutdown closes sessions waiting so at once, and lets
    /// those writing entries finish. It returns false when the session was closed for the
    /// shutdown while it waited: what that read brought is not acted on.
    /// </summary>
    public Func<bool, bool>? Waiting { get; set; }

    public void Reply(string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line + "\r\n");
        _out.Write(bytes);
    }

    public void Flush()
    {
        if (_out.Length > 0)
        {
            socket.Send(_out.GetBuffer().AsSpan(0, (int)_out.Length));
            _out.SetLength(0);
        }
    }

    /// <summary>The next command line without its CRLF; null when the client closed. A line over the limit returns "" after it is skipped whole.</summary>
    public string? ReadLine()
    {
        var skipping = false;
        long due = 0;
        while (true)
        {
            var available = _in.AsSpan(_start, _end - _start);
            var nl = available.IndexOf((byte)'\n');
            if (nl >= 0)
            {
                var line = available[..nl];
                _start += nl + 1;
                if (skipping || line.Length > MaxCommandLine)
                {
                    return "";
                }

                if (line.Length > 0 && line[^1] == '\r')
                {
                    line = line[..^1];
                }

                return Encoding.UTF8.GetString(line);
            }

            if (available.Length >= MaxCommandLine)
            {
                // A command line that never ends would hold a session slot for as long as the
                // client trickles bytes: answered once, and the session ends.
                Reply("500 5.5.0 Error: command line too long; closing");
                Flush();
                return null;
            }

            // The line's first byte starts its deadline (waiting for it is the socket's timeout).
            if (available.Length > 0)
            {
                var now = Environment.TickCount64;
                due = due == 0 ? now + _timeout : due;
                if (now > due)
                {
                    // Part of a line came, its end did not within the timeout.
                    Reply("421 4.4.2 Error: timeout exceeded; closing");
                    Flush();
                    return null;
                }
            }

            if (!Fill())
            {
                return null;
            }
        }
    }

    /// <summary>
    /// Reads the DATA block up to its "." line into <paramref name="spool"/>, undoing dot-stuffing
    /// and storing lines with LF endings as the MTA's pipe does. Past <paramref name="limit"/>
    /// bytes it stops storing but reads on to the end, so the session can refuse and go on.
    /// </summary>
    /// <returns>False when the message was larger than the limit.</returns>
    /// <exception cref="IOException">The client closed the connection before the "." line.</exception>
    public bool ReadData(MessageSpool spool, long limit)
    {
        // Only a line that began after a CRLF can end the data or be dot-stuffed: "\n.\n" or
        // "\n.\r\n" inside the data is data (a bare LF ending DATA is how mail is smuggled
        // past one server's view of where a message ends).
        var atLineStart = true;
        long stored = 0;
        var fits = true;
        var started = Environment.TickCount64;
        var before = _received - (_end - _start);
        void Refill()
        {
            Compact();
            if (Environment.TickCount64 - started > _timeout + (_received - before) * 1000 / MinDataRate)
            {
                Reply("421 4.4.2 Error: timeout exceeded; closing");
                Flush();
                throw new IOException($"DATA came slower than {MinDataRate} bytes a second (after {(_received - before) / 1024} KiB)");
            }

            if (!Fill())
            {
                throw new IOException("the client closed the connection in the middle of DATA");
            }
        }

        while (true)
        {
            if (_end - _start < 3 && !HasLineEnd())
            {
                Refill();
                continue;
            }

            var available = _in.AsSpan(_start, _end - _start);
            if (atLineStart && available[0] == '.')
            {
                if (available.StartsWith(".\r\n"u8))
                {
                    _start += 3;
                    return fits;
                }

                _start++; // a stuffed dot
                atLineStart = false;
                continue;
            }

            // A whole line (stored with an LF end), or part of a long one (a CR at the end may be
            // the start of a CRLF: kept for the next read).
            var nl = available.IndexOf((byte)'\n');
            var whole = nl >= 0;
            var line = whole ? available[..nl] : available[^1] == '\r' ? available[..^1] : available;
            if (line.Length == 0 && !whole)
            {
                Refill();
                continue;
            }

            _start += whole ? nl + 1 : line.Length;
            var crlf = whole && line.Length > 0 && line[^1] == '\r';
            var chunk = crlf ? line[..^1] : line;
            stored += chunk.Length + (whole ? 1 : 0);
            fits &= stored <= limit;
            if (fits)
            {
                spool.Write(chunk, whole);
            }

            atLineStart = crlf;
        }
    }

    private bool HasLineEnd() => _in.AsSpan(_start, _end - _start).IndexOf((byte)'\n') >= 0;

    private void Compact()
    {
        if (_start > 0)
        {
            _in.AsSpan(_start, _end - _start).CopyTo(_in);
            _end -= _start;
            _start = 0;
        }
    }

    // Sends what is buffered first: the client waits for our replies before it sends more.
    private bool Fill()
    {
        Flush();
        Compact();
        if (_end == _in.Length)
        {
            throw new InvalidOperationException("LMTP read buffer full");
        }

        // Mid-message too: nothing of it is answered 250 until it has all come and is written,
        // and a client trickling a message must not hold the daemon's stop to its timeout
        // (review 95: 400 bytes a second held every stop for the full 90 s).
        if (Waiting?.Invoke(true) == false)
        {
            throw new IOException("closed for the daemon's stop");
        }

        int n;
        var closed = false;
        try
        {
            n = socket.Receive(_in, _end, _in.Length - _end, SocketFlags.None);
        }
        finally
        {
            closed = Waiting?.Invoke(false) == false;
        }

        // The rest of a message (its final dot, say) may have come just as the stop closed the
        // session: taken, it would be written and never answered, and the MTA would send it
        // again to every member (review 96). Dropped; the MTA sends it again once.
        if (closed)
        {
            throw new IOException("closed for the daemon's stop while waiting on the client; what came then is not taken");
        }

        _end += n;
        _received += n;
        return n > 0;
    }

    public void Dispose() => socket.Dispose();
}
