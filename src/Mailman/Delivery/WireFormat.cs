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

    private static FormatOptions Create()
    {
        var options = FormatOptions.Default.Clone();
        options.NewLineFormat = NewLineFormat.Dos;
        return options;
    }
}
