// The flattened post, split once at its per-recipient slots. Rendering a copy is then a walk
// over byte ranges with the recipient's values spliced in: no MIME tree is copied, parsed or
// serialized per recipient. Hot path: per recipient and per byte.
using System.Text;
using Mailman.Templates;

namespace Mailman.Delivery;

/// <summary>A post flattened to bytes once: its header block, and its body with per-recipient slots.</summary>
public sealed class PreparedPost
{
    // Writes into MailKit's filters go in pieces: one large write makes a filter allocate a
    // buffer of that size (a gen2 collection per copy at 1 MB).
    private const int WriteChunk = 16 * 1024;

    // The dot-stuffed body goes to a socket: large writes, few system calls.
    internal const int SocketWriteChunk = 256 * 1024;

    private static readonly byte[] Dot = "."u8.ToArray();
    private static readonly byte[] Crlf = "\r\n"u8.ToArray();

    private readonly byte[] _bytes;
    private readonly Segment[] _body;
    private readonly long _bodyLiteralLength;

    // The body's literal segments dot-stuffed once (RFC 5321 §4.5.2) for SMTP DATA: every "."
    // that follows a LF inside a segment is doubled. A segment's first byte depends on what was
    // written before it, so it is stuffed at write time. Same array as _bytes when nothing needs it.
    private readonly byte[] _stuffed;
    private readonly (int Offset, int Length)[] _stuffedRanges;

    private PreparedPost(byte[] bytes, int headerLength, Segment[] body, bool eightBit, string? toToken, UnsubscribeSlot? unsubscribe = null)
    {
        _bytes = bytes;
        HeaderLength = headerLength;
        _body = body;
        EightBit = eightBit;
        ToToken = toToken;
        Unsubscribe = unsubscribe;
        ToTokenAt = toToken is null ? -1 : bytes.AsSpan(0, headerLength).IndexOf(Encoding.ASCII.GetBytes(toToken));
        foreach (var s in body)
        {
            _bodyLiteralLength += s.Length;
        }

        (_stuffed, _stuffedRanges) = StuffSegments(bytes, body);
    }

    /// <summary>True when the copy may carry 8-bit bytes (BODY=8BITMIME).</summary>
    public bool EightBit { get; }

    /// <summary>Length of the header block, including the CRLF of its last line (not the blank line).</summary>
    public int HeaderLength { get; }

    /// <summary>The raw value of the To: slot (" token CRLF"), or null when To: is not per recipient.</summary>
    public string? ToToken { get; }

    /// <summary>The List-Unsubscribe header with a one-click slot, or null when the post has none.</summary>
    public UnsubscribeSlot? Unsubscribe { get; }

    /// <summary>Where <see cref="ToToken"/> starts in the header block, or -1.</summary>
    public int ToTokenAt { get; }

    public ReadOnlyMemory<byte> HeaderBlock => _bytes.AsMemory(0, HeaderLength);

    /// <summary>Splits <paramref name="flattened"/> (CRLF line endings) at the slots of <paramref name="nonce"/>.</summary>
    /// <exception cref="FormatException">The post has no header block.</exception>
    public static PreparedPost Create(byte[] flattened, string? nonce)
    {
        var span = flattened.AsSpan();
        var end = span.IndexOf("\r\n\r\n"u8);
        if (end < 0)
        {
            throw new FormatException("the flattened post has no end of header block");
        }

        var headerLength = end + 2;
        var bodyStart = end + 4;
        var eightBit = span.IndexOfAnyExceptInRange((byte)0, (byte)127) >= 0;
        string? toToken = null;
        var segments = new List<Segment>();
        if (nonce is null)
        {
            segments.Add(new Segment(bodyStart, flattened.Length - bodyStart, null));
            return new PreparedPost(flattened, headerLength, [.. segments], eightBit, null);
        }

        var to = Slots.Token(nonce, SlotKind.ToHeader);
        if (span[..headerLength].IndexOf(Encoding.ASCII.GetBytes(to)) >= 0)
        {
            toToken = " " + to + "\r\n";
        }

        var unsubscribe = UnsubscribeSlot.Find(span[..headerLength], Slots.Token(nonce, SlotKind.ListUnsubscribe));
        var marker = Encoding.ASCII.GetBytes(Slots.Marker(nonce));
        var start = bodyStart;
        while (true)
        {
            var found = span[start..].IndexOf(marker);
            if (found < 0 || start + found + marker.Length >= flattened.Length)
            {
                segments.Add(new Segment(start, flattened.Length - start, null));
                break;
            }

            var at = start + found;
            var kind = (SlotKind)flattened[at + marker.Length];
            if (!Enum.IsDefined(kind) || kind is SlotKind.ToHeader or SlotKind.ListUnsubscribe)
            {
                // Not a body slot after all: keep it as text.
                segments.Add(new Segment(start, at + marker.Length - start, null));
                start = at + marker.Length;
                continue;
            }

            segments.Add(new Segment(start, at - start, kind));
            start = at + Slots.TokenLength;
            eightBit = true; // names may be non-ASCII UTF-8 in a body slot
        }

        return new PreparedPost(flattened, headerLength, [.. segments], eightBit, toToken, unsubscribe);
    }

    /// <summary>Exact size of the copy for <paramref name="values"/>, as MailKit will send it.</summary>
    public long SizeFor(RecipientValues? values)
    {
        long size = HeaderLength + 2 + _bodyLiteralLength;
        if (ToToken is not null && values is not null)
        {
            size += values.ToRawValue.Length - ToToken.Length;
        }

        if (Unsubscribe is { } slot && values is not null)
        {
            size += slot.RawValueLength(values.Unsubscribe) - slot.SlottedLength;
        }

        foreach (var s in _body)
        {
            if (s.Slot is { } kind && values is not null)
            {
                size += values.For(kind).Length;
            }
        }

        return size;
    }

    /// <summary>Writes the body of the copy for <paramref name="values"/> (null: slots left empty).</summary>
    public void WriteBodyTo(Stream stream, RecipientValues? values, CancellationToken cancellationToken, int chunk = WriteChunk)
    {
        foreach (var s in _body)
        {
            WriteChunked(stream, _bytes.AsSpan(s.Offset, s.Length), chunk, cancellationToken);
            if (s.Slot is { } kind && values is not null)
            {
                stream.Write(values.For(kind));
            }
        }
    }

    /// <summary>
    /// Writes the body as SMTP DATA content: dot-stuffed and ending with CRLF, ready for the
    /// terminating ".CRLF". Writing the body at the start of a line is the caller's promise.
    /// Writes arrays, not spans: MailKit's stream would copy every span through a rented buffer.
    /// </summary>
    public void WriteBodyDotStuffedTo(Stream stream, RecipientValues? values, CancellationToken cancellationToken)
    {
        var bol = true;
        for (var i = 0; i < _body.Length; i++)
        {
            var (offset, length) = _stuffedRanges[i];
            WriteStuffed(stream, _stuffed, offset, length, prestuffed: true, ref bol, cancellationToken);
            if (_body[i].Slot is { } kind && values is not null)
            {
                var value = values.ArrayFor(kind);
                WriteStuffed(stream, value, 0, value.Length, prestuffed: false, ref bol, cancellationToken);
            }
        }

        if (!bol)
        {
            stream.Write(Crlf, 0, Crlf.Length);
        }
    }

    // Stuffs the first byte against what came before, and inside the data unless it is a
    // segment stuffed once already.
    private static void WriteStuffed(Stream stream, byte[] data, int offset, int length, bool prestuffed, ref bool bol, CancellationToken cancellationToken)
    {
        if (length == 0)
        {
            return;
        }

        if (bol && data[offset] == (byte)'.')
        {
            stream.Write(Dot, 0, 1);
        }

        if (!prestuffed)
        {
            int lf;
            while ((lf = data.AsSpan(offset, length - 1).IndexOf((byte)'\n')) >= 0)
            {
                stream.Write(data, offset, lf + 1);
                offset += lf + 1;
                length -= lf + 1;
                if (data[offset] == (byte)'.')
                {
                    stream.Write(Dot, 0, 1);
                }
            }
        }

        while (length > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(SocketWriteChunk, length);
            stream.Write(data, offset, n);
            offset += n;
            length -= n;
        }

        bol = data[offset - 1] == (byte)'\n';
    }

    private static (byte[] Bytes, (int Offset, int Length)[] Ranges) StuffSegments(byte[] bytes, Segment[] body)
    {
        var extra = 0;
        foreach (var s in body)
        {
            extra += CountLineDots(bytes.AsSpan(s.Offset, s.Length));
        }

        var ranges = new (int, int)[body.Length];
        if (extra == 0)
        {
            for (var i = 0; i < body.Length; i++)
            {
                ranges[i] = (body[i].Offset, body[i].Length);
            }

            return (bytes, ranges);
        }

        var stuffed = new byte[checked((int)(body.Sum(s => (long)s.Length) + extra))];
        var at = 0;
        for (var i = 0; i < body.Length; i++)
        {
            var start = at;
            var data = bytes.AsSpan(body[i].Offset, body[i].Length);
            for (var lf = data.IndexOf((byte)'\n'); lf >= 0 && lf + 1 < data.Length; lf = data.IndexOf((byte)'\n'))
            {
                data[..(lf + 1)].CopyTo(stuffed.AsSpan(at));
                at += lf + 1;
                data = data[(lf + 1)..];
                if (data[0] == (byte)'.')
                {
                    stuffed[at++] = (byte)'.';
                }
            }

            data.CopyTo(stuffed.AsSpan(at));
            at += data.Length;
            ranges[i] = (start, at - start);
        }

        return (stuffed, ranges);
    }

    // Dots at the start of a line inside the span (not at its first byte).
    private static int CountLineDots(ReadOnlySpan<byte> data)
    {
        var count = 0;
        for (var lf = data.IndexOf((byte)'\n'); lf >= 0 && lf + 1 < data.Length; lf = data.IndexOf((byte)'\n'))
        {
            data = data[(lf + 1)..];
            if (data[0] == (byte)'.')
            {
                count++;
            }
        }

        return count;
    }

    private static void WriteChunked(Stream stream, ReadOnlySpan<byte> data, int chunk, CancellationToken cancellationToken)
    {
        while (data.Length > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(chunk, data.Length);
            stream.Write(data[..n]);
            data = data[n..];
        }
    }

    private readonly record struct Segment(int Offset, int Length, SlotKind? Slot);
}

/// <summary>
/// The List-Unsubscribe header of a prepared post around its one-click slot: the raw value is
/// Prefix + ADDRESS/TOKEN + Suffix per recipient, or the mailto alone for a recipient without a
/// token. Hot path: one small array per copy.
/// </summary>
public sealed class UnsubscribeSlot
{
    private UnsubscribeSlot(byte[] prefix, byte[] suffix, byte[] fallback)
    {
        Prefix = prefix;
        Suffix = suffix;
        Fallback = fallback;
    }

    /// <summary>Where the slotted raw value starts in the post's header block (it is <see cref="SlottedLength"/> bytes long).</summary>
    public int ValueAt { get; private init; }

    /// <summary>The raw value up to the slot (" &lt;https://host/u/LIST/").</summary>
    public byte[] Prefix { get; }

    /// <summary>The raw value after the slot ("&gt;,CRLF &lt;mailto:LIST-leave@HOST&gt;CRLF").</summary>
    public byte[] Suffix { get; }

    /// <summary>The raw value for a recipient without a token: the mailto alone.</summary>
    public byte[] Fallback { get; }

    /// <summary>The raw value as flattened, with the slot token in it (how the carrier finds the header).</summary>
    public int SlottedLength => Prefix.Length + Slots.TokenLength + Suffix.Length;

    public int RawValueLength(byte[] piece) => piece.Length == 0 ? Fallback.Length : Prefix.Length + piece.Length + Suffix.Length;

    /// <summary>This recipient's raw List-Unsubscribe value.</summary>
    public byte[] RawValue(byte[] piece)
    {
        if (piece.Length == 0)
        {
            return Fallback;
        }

        var raw = new byte[Prefix.Length + piece.Length + Suffix.Length];
        Prefix.CopyTo(raw, 0);
        piece.CopyTo(raw, Prefix.Length);
        Suffix.CopyTo(raw, Prefix.Length + piece.Length);
        return raw;
    }

    /// <summary>Whether <paramref name="raw"/> is this header's slotted raw value.</summary>
    public bool Matches(ReadOnlySpan<byte> raw)
        => raw.Length == SlottedLength && raw.StartsWith(Prefix) && raw.EndsWith(Suffix) && raw.Slice(Prefix.Length, Slots.TokenLength).StartsWith("MMSLOT"u8);

    /// <summary>Finds the field that holds <paramref name="token"/> in a CRLF header block, or null.</summary>
    internal static UnsubscribeSlot? Find(ReadOnlySpan<byte> headerBlock, string token)
    {
        var at = headerBlock.IndexOf(Encoding.ASCII.GetBytes(token));
        if (at < 0)
        {
            return null;
        }

        // The field starts after the last CRLF before the slot that is not a folding one.
        var lineStart = at;
        while (lineStart > 0 && !(headerBlock[lineStart - 1] == (byte)'\n' && headerBlock[lineStart] is not ((byte)' ' or (byte)'\t')))
        {
            lineStart--;
        }

        var colon = headerBlock[lineStart..at].IndexOf((byte)':');
        if (colon < 0)
        {
            return null;
        }

        var end = at;
        while (end < headerBlock.Length && !(headerBlock[end] == (byte)'\n' && (end + 1 == headerBlock.Length || headerBlock[end + 1] is not ((byte)' ' or (byte)'\t'))))
        {
            end++;
        }

        var prefix = headerBlock[(lineStart + colon + 1)..at].ToArray();
        var suffix = headerBlock[(at + token.Length)..Math.Min(end + 1, headerBlock.Length)].ToArray();
        var mailto = suffix.AsSpan().IndexOf("<mailto:"u8);
        byte[] fallback = mailto < 0 ? [.. " <>\r\n"u8] : [(byte)' ', .. suffix.AsSpan(mailto)];
        return new UnsubscribeSlot(prefix, suffix, fallback) { ValueAt = lineStart + colon + 1 };
    }
}
