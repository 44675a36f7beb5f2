// How a message is written for the wire: CRLF line endings (RFC 5321 §2.3.8). The pipeline
// flattens with it once; the outgoing runner sends with it.
using MimeKit;

namespace Mailman.Delivery;

public static class WireFormat
{
    public static readonly FormatOptions Options = Create();

    /// <summary>The message as bytes on the wire.</summary>
    public static byte[] Flatten(MimeMessage message)
    {
        using var output = new MemoryStream();
        message.WriteTo(Options, output, CancellationToken.None);
        return output.ToArray();
    }

    /// <summary>
    /// Ends the last header line of a message that ended inside it (headers only, no newline at
    /// the end): MimeKit writes such a line as it came, so no blank line would end the header
    /// block and the outgoing runner would refuse the entry (review 27).
    /// </summary>
    public static void EndLastHeaderLine(MimeMessage message)
    {
        if (message.Headers.Count > 0 && message.Headers[message.Headers.Count - 1] is { RawValue: { Length: > 0 } raw } last && raw[^1] != (byte)'\n')
        {
            last.SetRawValue([.. raw, (byte)'\n']);
        }
    }

    private static FormatOptions Create()
    {
        var options = FormatOptions.Default.Clone();
        options.NewLineFormat = NewLineFormat.Dos;
        return options;
    }
}
