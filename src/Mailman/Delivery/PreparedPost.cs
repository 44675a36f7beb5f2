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

    private readonly byte[] _bytes;
    private readonly Segment[] _body;
    private readonly long _bodyLiteralLength;

    private PreparedPost(byte[] bytes, int headerLength, Segment[] body, bool eightBit, string? toToken)
    {
        _bytes = bytes;
        HeaderLength = headerLength;
        _body = body;
        EightBit = eightBit;
        ToToken = toToken;
        foreach (var s in body)
        {
            _bodyLiteralLength += s.Length;
        }
    }

    /// <summary>True when the copy may carry 8-bit bytes (BODY=8BITMIME).</summary>
    public bool EightBit { get; }

    /// <summary>Length of the header block, including the CRLF of its last line (not the blank line).</summary>
    public int HeaderLength { get; }

    /// <summary>The raw value of the To: slot (" token CRLF"), or null when To: is not per recipient.</summary>
    public string? ToToken { get; }

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

        var marker = Encoding.ASCII.GetBytes(Slots.Prefix + nonce);
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
            if (!Enum.IsDefined(kind) || kind == SlotKind.ToHeader)
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

        return new PreparedPost(flattened, headerLength, [.. segments], eightBit, toToken);
    }

    /// <summary>Exact size of the copy for <paramref name="values"/>, as MailKit will send it.</summary>
    public long SizeFor(RecipientValues? values)
    {
        long size = HeaderLength + 2 + _bodyLiteralLength;
        if (ToToken is not null && values is not null)
        {
            size += values.ToRawValue.Length - ToToken.Length;
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
    public void WriteBodyTo(Stream stream, RecipientValues? values, CancellationToken cancellationToken)
    {
        foreach (var s in _body)
        {
            WriteChunked(stream, _bytes.AsSpan(s.Offset, s.Length), cancellationToken);
            if (s.Slot is { } kind && values is not null)
            {
                stream.Write(values.For(kind));
            }
        }
    }

    private static void WriteChunked(Stream stream, ReadOnlySpan<byte> data, CancellationToken cancellationToken)
    {
        while (data.Length > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(WriteChunk, data.Length);
            stream.Write(data[..n]);
            data = data[n..];
        }
    }

    private readonly record struct Segment(int Offset, int Length, SlotKind? Slot);
}
