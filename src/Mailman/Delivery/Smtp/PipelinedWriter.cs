// The hot path of a transaction, beside MailKit's connection (which still does the greeting,
// EHLO, STARTTLS, AUTH and QUIT): RFC 2920 pipelining of MAIL, every RCPT and DATA in one write,
// and the end of one copy's data sent together with the next transaction's commands, so a copy
// costs one round trip instead of MailKit's three (MAIL+RCPT, DATA, end of data). Used only when
// the server offers PIPELINING and the copy is plain ASCII addressing; everything else (BDAT,
// SMTPUTF8, a header line starting with a dot) takes MailKit's path. Hot path: per copy.
using System.Globalization;
using System.Text;
using Mailman.Queues;

namespace Mailman.Delivery.Smtp;

internal sealed class PipelinedWriter(Stream wire, Stream input, bool size, bool eightBitMime, TimeSpan replyDeadline)
{
    private readonly long _replyDeadline = (long)replyDeadline.TotalMilliseconds;
    private static readonly byte[] EndOfData = ".\r\n"u8.ToArray();
    private static readonly byte[] Crlf = "\r\n"u8.ToArray();
    private readonly byte[] _in = new byte[8192];
    private readonly StringBuilder _commands = new(256);
    private byte[] _out = new byte[1024];
    private int _start;
    private int _end;

    /// <summary>The transaction whose end of data is written but whose reply is not read yet.</summary>
    public (TransactionResult Result, IReadOnlyList<Recipient> Accepted)? Pending { get; private set; }

    /// <summary>Whether MAIL FROM of the last transaction was answered (before it, nothing of the copy was sent).</summary>
    public bool SenderAccepted { get; private set; }

    /// <summary>The server answered MAIL FROM with 421: it is closing the connection (RFC 5321 §3.8), drop it.</summary>
    public bool ServerClosing { get; private set; }

    /// <summary>Whether a post can take this path at all (else MailKit sends it).</summary>
    public static bool Suits(PreparedPost post, string sender)
    {
        var header = post.HeaderBlock.Span;
        return header.Length > 0 && header[0] != (byte)'.' && header.IndexOf("\n."u8) < 0 && Ascii.IsValid(sender);
    }

    /// <summary>
    /// Sends one transaction; the reply to its end of data is read with the next one (or by
    /// <see cref="Complete"/>), when <paramref name="result"/> is finished. A transaction refused
    /// before its data is finished here, and RSET sent. Never throws for a refusal; an I/O error
    /// leaves the pending transaction and this one to the caller (<see cref="IOException"/>).
    /// <paramref name="rcptTo"/>: each recipient's address as RCPT TO carries it (SmtpOptions.WireAddress), in order.
    /// </summary>
    /// <exception cref="IOException">The connection broke.</exception>
    public void Send(PreparedPost post, RecipientValues? values, string sender, IReadOnlyList<Recipient> recipients, IReadOnlyList<string> rcptTo, TransactionResult result)
    {
        SenderAccepted = false;
        _commands.Clear();
        _commands.Append("MAIL FROM:<").Append(sender).Append('>');
        if (size)
        {
            _commands.Append(" SIZE=").Append(post.SizeFor(values).ToString(CultureInfo.InvariantCulture));
        }

        // Never SMTPUTF8 here (ASCII addresses only): not for raw UTF-8 in the header block
        // either, which would make Postfix bounce the copy to a next hop without it (Carrier.SendOptions).
        if (eightBitMime && post.EightBit)
        {
            _commands.Append(" BODY=8BITMIME");
        }

        _commands.Append("\r\n");
        foreach (var address in rcptTo)
        {
            _commands.Append("RCPT TO:<").Append(address).Append(">\r\n");
        }

        _commands.Append("DATA\r\n");
        var n = _commands.Length;
        if (_out.Length < n)
        {
            _out = new byte[Math.Max(n, _out.Length * 2)];
        }

        Encoding.ASCII.GetBytes(_commands.ToString(), 0, n, _out, 0);

        // The previous copy's end of data and these commands leave in one write.
        wire.Write(_out, 0, n);
        wire.Flush();
        FinishPending();

        var mail = ReadReply("MAIL FROM");
        SenderAccepted = mail.Code / 100 == 2;
        if (mail.Code == 421)
        {
            // Nothing more is answered on this connection: its recipients wait with the 421,
            // and the caller opens another (or marks the relay down).
            ServerClosing = true;
            foreach (var r in recipients)
            {
                result.Deferred.Add((r, mail.Code, mail.Text));
            }

            return;
        }

        var accepted = new List<Recipient>(recipients.Count);
        foreach (var r in recipients)
        {
            var reply = ReadReply("RCPT TO");
            if (!SenderAccepted)
            {
                continue;
            }

            if (reply.Code / 100 == 2)
            {
                accepted.Add(r);
            }
            else
            {
                SmtpConnection.Classify(result, r, reply.Code, reply.Text, atRecipient: true);
                result.Throttled |= SmtpConnection.IsThrottle(reply.Code, reply.Text);
            }
        }

        var data = ReadReply("DATA");
        if (data.Code == 354 && (!SenderAccepted || accepted.Count == 0))
        {
            // A server that took DATA without a valid recipient: end the empty message.
            wire.Write(EndOfData);
            wire.Flush();
            ReadReply("the end of data");
        }

        if (!SenderAccepted)
        {
            // Our configuration, not the members (as MailKit's path): the copies wait in retry.
            foreach (var r in recipients)
            {
                result.Deferred.Add((r, mail.Code, mail.Text));
            }

            Reset();
            return;
        }

        if (accepted.Count == 0)
        {
            Reset();
            return;
        }

        if (data.Code != 354)
        {
            foreach (var r in accepted)
            {
                SmtpConnection.ClassifyDataRefusal(result, r, data.Code, data.Text);
            }

            result.Throttled |= SmtpConnection.IsThrottle(data.Code, data.Text);
            Reset();
            return;
        }

        WriteHeader(post, values);
        wire.Write(Crlf);
        post.WriteBodyDotStuffedTo(wire, values, CancellationToken.None);
        wire.Write(EndOfData);
        Pending = (result, accepted);
    }

    /// <summary>Sends what is buffered and reads the pending transaction's reply, finishing its result.</summary>
    /// <exception cref="IOException">The connection broke.</exception>
    public void Complete()
    {
        if (Pending is null)
        {
            return;
        }

        wire.Flush();
        FinishPending();
    }

    /// <summary>The connection broke: the pending transaction's data may or may not have arrived.</summary>
    public void Abandon(string why)
    {
        if (Pending is { } p)
        {
            foreach (var r in p.Accepted)
            {
                p.Result.DeferAnswered(r, 0, why);
            }

            p.Result.Pending = false;
            Pending = null;
        }
    }

    private void FinishPending()
    {
        if (Pending is not { } p)
        {
            return;
        }

        var reply = ReadReply("the end of data");
        Pending = null;
        p.Result.Pending = false;
        foreach (var r in p.Accepted)
        {
            if (reply.Code / 100 == 2)
            {
                p.Result.Delivered.Add(r);
            }
            else
            {
                SmtpConnection.Classify(p.Result, r, reply.Code, reply.Text, atRecipient: false);
            }
        }

        p.Result.Throttled |= reply.Code / 100 != 2 && SmtpConnection.IsThrottle(reply.Code, reply.Text);
    }

    // The copy's header block: the post's, with this recipient's To: value and List-Unsubscribe
    // link (RFC 8058) in their slots, in the order they stand.
    private void WriteHeader(PreparedPost post, RecipientValues? values)
    {
        var header = post.HeaderBlock.Span;
        if (values is null)
        {
            wire.Write(header);
            return;
        }

        var to = post.ToTokenAt >= 0 ? (At: post.ToTokenAt, Length: post.ToToken!.Length, Value: values.ToRawValue) : default;
        var unsubscribe = post.Unsubscribe is { } slot ? (At: slot.ValueAt, Length: slot.SlottedLength, Value: slot.RawValue(values.Unsubscribe)) : default;
        var first = to.Value is null || (unsubscribe.Value is not null && unsubscribe.At < to.At) ? unsubscribe : to;
        var second = ReferenceEquals(first.Value, to.Value) ? unsubscribe : to;
        var written = 0;
        foreach (var (at, length, value) in new[] { first, second })
        {
            if (value is null)
            {
                continue;
            }

            wire.Write(header[written..at]);
            wire.Write(value);
            written = at + length;
        }

        wire.Write(header[written..]);
    }

    private void Reset()
    {
        wire.Write("RSET\r\n"u8);
        wire.Flush();
        ReadReply("RSET");
    }

    // One reply, multi-line included: the code and the text of its last line.
    // The input's timeout is per read: a reply as a whole must end within the deadline too, or a
    // server sending one line of it every few seconds would hold the connection for ever (checked
    // before each read, so a reply gets at most the deadline and one read's timeout).
    // A reply that cannot answer its command (354 to anything but DATA, anything else than 354,
    // 4xx or 5xx to DATA) says the replies are out of step with the commands (RFC 2920 keeps them
    // in order; smtp-sink's -W delay does not): the connection is given up as broken, its
    // transactions deferred, instead of a 354 being taken for a member's refusal (review 59:
    // 192 of 2,000 members were recorded as refused, and never sent to retry).
    private (int Code, string Text) ReadReply(string command)
    {
        var reply = ReadReply();
        if (!(command == "DATA" ? reply.Code / 100 is 3 or 4 or 5 : reply.Code / 100 is 2 or 4 or 5))
        {
            throw new IOException($"the SMTP server's replies are out of step with our commands: {reply.Code} {reply.Text} to {command}");
        }

        return reply;
    }

    // A multi-line reply's text is its lines joined by LF, as MailKit's SmtpResponse gives it
    // (review 76: Gmail's "550-5.1.1 The email account ... does not exist" kept only its last
    // line, a URL), kept up to MaxReplyText characters.
    private (int Code, string Text) ReadReply()
    {
        var due = Environment.TickCount64 + _replyDeadline;
        var size = 0L;
        StringBuilder? earlier = null;
        while (true)
        {
            var line = ReadLine(due);

            // Bounded as MailKit's replies are (ReplyBoundStream): a reply of endless lines kept
            // a core busy until its deadline, and was then said to be no reply (review 68).
            size += line.Length + 2;
            if (size > ReplyBoundStream.MaxReply)
            {
                throw new IOException($"the SMTP server sent a reply of more than {ReplyBoundStream.MaxReply >> 20} MiB: no SMTP reply is that long");
            }

            if (line.Length < 3 || !int.TryParse(line.AsSpan(0, 3), NumberStyles.None, CultureInfo.InvariantCulture, out var code))
            {
                throw new IOException("malformed SMTP reply: " + line);
            }

            var text = line.Length > 4 ? line[4..] : "";
            if (line.Length == 3 || line[3] != '-')
            {
                return (code, earlier is null ? text : earlier.Append(text).ToString());
            }

            earlier ??= new StringBuilder();
            if (earlier.Length < MaxReplyText)
            {
                earlier.Append(text.AsSpan(0, Math.Min(text.Length, MaxReplyText - earlier.Length))).Append('\n');
            }
        }
    }

    private const int MaxReplyText = 4096;

    private string ReadLine(long due)
    {
        while (true)
        {
            var lf = _in.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (lf >= 0)
            {
                var bytes = _in.AsSpan(_start, lf > 0 && _in[_start + lf - 1] == '\r' ? lf - 1 : lf);
                // UTF-8 when it is (RFC 6531 servers may say so), else each byte a character (review 76).
                var line = System.Text.Unicode.Utf8.IsValid(bytes) ? Encoding.UTF8.GetString(bytes) : Encoding.Latin1.GetString(bytes);
                _start += lf + 1;
                return line;
            }

            if (_start > 0)
            {
                Buffer.BlockCopy(_in, _start, _in, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            if (_end == _in.Length)
            {
                throw new IOException("SMTP reply line too long");
            }

            if (Environment.TickCount64 > due)
            {
                throw new IOException($"the SMTP server's reply did not end within {_replyDeadline / 1000} s",
                    new TimeoutException("SMTP reply deadline"));
            }

            var read = input.Read(_in, _end, _in.Length - _end);
            if (read == 0)
            {
                throw new IOException("the SMTP server closed the connection");
            }

            _end += read;
        }
    }
}
