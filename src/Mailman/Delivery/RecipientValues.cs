// The per-recipient values spliced into a prepared post, encoded once per recipient. The To:
// value is folded and RFC 2047 encoded by MimeKit; names never carry control characters, so no
// value can start a new header or a MIME boundary line.
using System.Text;
using Mailman.Lists;
using Mailman.Templates;
using MimeKit;

namespace Mailman.Delivery;

/// <summary>Encoded slot values for one recipient.</summary>
public sealed class RecipientValues
{
    /// <summary>The raw value of this recipient's To: header: " Name &lt;addr&gt;" folded, then CRLF.</summary>
    public byte[] ToRawValue { get; private set; } = [];

    /// <summary>The one-click link's per-recipient part (ADDRESS/TOKEN), or empty when the recipient has no token.</summary>
    public byte[] Unsubscribe { get; private set; } = [];

    private byte[] _address = [];
    private byte[] _name = [];

    public ReadOnlySpan<byte> For(SlotKind kind) => ArrayFor(kind);

    /// <summary>The value as an array: streams without a span overload (MailKit's) copy spans.</summary>
    internal byte[] ArrayFor(SlotKind kind) => kind switch
    {
        SlotKind.Address or SlotKind.DeliveredTo => _address,
        SlotKind.Name => _name,
        _ => [],
    };

    /// <summary>Encodes the values for one recipient, reusing <paramref name="scratch"/> (one per thread).</summary>
    public static RecipientValues For(Queues.Recipient recipient, MimeMessage scratch)
    {
        var name = Member.Sanitize(recipient.DisplayName);
        var mailbox = new MailboxAddress(Encoding.UTF8, name, recipient.Address);
        scratch.To.Clear();
        scratch.To.Add(mailbox);
        var raw = scratch.Headers[scratch.Headers.IndexOf(HeaderId.To)].RawValue;
        var address = Encoding.UTF8.GetBytes(recipient.Address);
        return new RecipientValues
        {
            ToRawValue = ToCrlf(raw),
            _address = address,
            _name = Encoding.UTF8.GetBytes(name.Length > 0 ? name : recipient.Address),
            Unsubscribe = recipient.UnsubscribeToken is { } token ? Http.OneClickLinks.Piece(address, token) : [],
        };
    }

    /// <summary>A scratch message for <see cref="For(Queues.Recipient, MimeMessage)"/>.</summary>
    public static MimeMessage NewScratch()
    {
        var m = new MimeMessage();
        m.Headers.Clear();
        return m;
    }

    // MimeKit folds with the platform's LF; the wire wants CRLF.
    private static byte[] ToCrlf(byte[] raw)
    {
        var lf = 0;
        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] == (byte)'\n' && (i == 0 || raw[i - 1] != (byte)'\r'))
            {
                lf++;
            }
        }

        if (lf == 0)
        {
            return raw;
        }

        var result = new byte[raw.Length + lf];
        var j = 0;
        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] == (byte)'\n' && (i == 0 || raw[i - 1] != (byte)'\r'))
            {
                result[j++] = (byte)'\r';
            }

            result[j++] = raw[i];
        }

        return result;
    }
}
