// Reads the head of a queue entry without claiming or loading it: the metadata, the message's
// header block and the first bytes of its body. For operators looking at queues (`queue list`,
// `queue show`, `held list`); a 100 MB post costs no more than a small one.
using System.Text;
using MimeKit;

namespace Mailman.Queues;

/// <summary>What an operator sees of an entry.</summary>
public sealed record EntryHead(string Queue, string Name, bool Claimed, EntryMetadata Metadata, HeaderList Headers, string BodyStart, long FileSize);

public static class EntryHeads
{
    /// <summary>The head of entry <paramref name="name"/> in <paramref name="queue"/>, waiting or claimed; null when it is gone.</summary>
    /// <exception cref="CorruptEntryException">The entry cannot be read (it belongs in bad).</exception>
    public static EntryHead? Read(Switchboard queue, string name, int bodyBytes = 2048)
    {
        foreach (var (extension, claimed) in new[] { (Switchboard.EntryExtension, false), (Switchboard.ClaimedExtension, true) })
        {
            FileStream stream;
            try
            {
                stream = File.OpenRead(queue.PathOf(name, extension));
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                continue;
            }

            using (stream)
            {
                var metadata = queue.ReadMetadata(stream, name);
                var messageStart = stream.Position;
                HeaderList headers;
                try
                {
                    headers = HeaderList.Load(new BoundedStream(stream, metadata.MessageLength));
                }
                catch (FormatException)
                {
                    headers = [];
                }

                var body = new byte[bodyBytes];
                var bodyAt = BodyOffset(stream, messageStart, metadata.MessageLength);
                var read = 0;
                if (bodyAt >= 0)
                {
                    stream.Position = messageStart + bodyAt;
                    var want = (int)Math.Min(bodyBytes, Math.Max(0, metadata.MessageLength - bodyAt));
                    read = stream.ReadAtLeast(body.AsSpan(0, want), want, throwOnEndOfStream: false);
                }

                return new EntryHead(queue.Name, name, claimed, metadata, headers, Encoding.UTF8.GetString(body, 0, read), stream.Length);
            }
        }

        return null;
    }

    // Where the body starts in the message (after the first blank line), or -1; looks at most 1 MB.
    private static long BodyOffset(FileStream stream, long messageStart, long length)
    {
        stream.Position = messageStart;
        var buffer = new byte[64 * 1024];
        long offset = 0;
        var previous = (byte)'\n';
        while (offset < Math.Min(length, 1 << 20))
        {
            var n = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, length - offset));
            if (n <= 0)
            {
                break;
            }

            for (var i = 0; i < n; i++)
            {
                var b = buffer[i];
                if (b == '\n' && previous == '\n')
                {
                    return offset + i + 1;
                }

                if (b != '\r')
                {
                    previous = b;
                }
            }

            offset += n;
        }

        return -1;
    }

    // The message's bytes only: the header parser never reads into the recipient lines.
    private sealed class BoundedStream(Stream inner, long length) : Stream
    {
        private long _left = length;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_left <= 0)
            {
                return 0;
            }

            var n = inner.Read(buffer, offset, (int)Math.Min(count, _left));
            _left -= n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
