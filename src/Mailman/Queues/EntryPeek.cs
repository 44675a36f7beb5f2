// Reads the head of a queue entry without claiming or loading it: the metadata (with the state
// beside it), the message's header block and the first bytes of its body. For operators looking
// at queues (`queue list`, `queue show`, `held list`); a 100 MB post costs no more than a small one.
using System.Text;
using MimeKit;

namespace Mailman.Queues;

/// <summary>What an operator sees of an entry.</summary>
public sealed record EntryPeek(string Queue, string Name, bool Claimed, EntryMetadata Metadata, HeaderList Headers, string BodyStart);

public static class EntryPeeks
{
    // The header block is read up to this size (a longer one is shown cut).
    private const int HeaderWindow = 256 * 1024;

    /// <summary>
    /// The loaded head of entry <paramref name="name"/> in <paramref name="queue"/>, waiting or
    /// claimed (a look, not a claim: the entry stays where it is, whoever holds it); null when it
    /// is gone.
    /// </summary>
    /// <exception cref="CorruptEntryException">The entry cannot be read (it belongs in bad).</exception>
    public static (EntryHead Head, bool Claimed)? Head(Switchboard queue, string name)
    {
        foreach (var (extension, claimed) in new[] { (Switchboard.EntryExtension, false), (Switchboard.ClaimedExtension, true) })
        {
            try
            {
                return (queue.LoadHead(new ClaimedEntry(queue.Name, name, queue.PathOf(name, extension))), claimed);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                // Claimed or put back meanwhile (the other name), or gone.
            }
        }

        return null;
    }

    /// <summary>The head of entry <paramref name="name"/> in <paramref name="queue"/>, waiting or claimed; null when it is gone.</summary>
    /// <exception cref="CorruptEntryException">The entry cannot be read (it belongs in bad).</exception>
    public static EntryPeek? Read(Switchboard queue, string name, int bodyBytes = 2048)
    {
        if (Head(queue, name) is not var (head, claimed))
        {
            return null;
        }

        var metadata = head.Metadata;
        using var stream = queue.OpenMessage(head);
        var window = new byte[(int)Math.Min(HeaderWindow + (long)bodyBytes, metadata.MessageLength)];
        var read = stream.ReadAtLeast(window, window.Length, throwOnEndOfStream: false);
        var bytes = window.AsSpan(0, read);
        var end = BodyOffset(bytes);
        var headerBytes = end < 0 ? bytes : bytes[..end];
        HeaderList headers;
        try
        {
            headers = HeaderList.Load(new MemoryStream(headerBytes.ToArray()));
        }
        catch (FormatException)
        {
            headers = [];
        }

        var body = end < 0 ? "" : Encoding.UTF8.GetString(bytes[end..][..Math.Min(bodyBytes, bytes.Length - end)]);
        return new EntryPeek(queue.Name, name, claimed, metadata, headers, body);
    }

    // Where the body starts (after the first blank line), or -1.
    private static int BodyOffset(ReadOnlySpan<byte> bytes)
    {
        var previous = (byte)'\n';
        for (var i = 0; i < bytes.Length; i++)
        {
            var b = bytes[i];
            if (b == '\n' && previous == '\n')
            {
                return i + 1;
            }

            if (b != '\r')
            {
                previous = b;
            }
        }

        return -1;
    }
}
