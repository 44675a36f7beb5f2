// A plain LMTP client (RFC 2033) for the listener's tests: one command, its reply lines; after
// DATA one reply per accepted recipient. No pipelining, no cleverness: what a test reads is what
// the server sent.
using System.Net.Sockets;
using System.Text;

namespace Mailman.TestSupport;

public sealed class LmtpClient : IDisposable
{
    private readonly TcpClient _client;
    private readonly StreamReader _reader;
    private readonly Stream _stream;

    public LmtpClient(int port)
    {
        _client = new TcpClient("127.0.0.1", port);
        _stream = _client.GetStream();
        _reader = new StreamReader(_stream, Encoding.ASCII);
        Greeting = Reply();
    }

    public string Greeting { get; }

    /// <summary>Sends one command line and returns its reply (the lines of a multi-line reply joined by '\n').</summary>
    public string Command(string line)
    {
        _stream.Write(Encoding.ASCII.GetBytes(line + "\r\n"));
        return Reply();
    }

    /// <summary>DATA, the message (dot-stuffed here), the final dot, and one reply per accepted recipient.</summary>
    /// <exception cref="IOException">The connection broke; replies read before it are in <paramref name="replies"/>.</exception>
    public string Data(string message, int acceptedRecipients, List<string> replies)
    {
        var go = Command("DATA");
        if (!go.StartsWith("354", StringComparison.Ordinal))
        {
            return go;
        }

        var text = new StringBuilder();
        foreach (var line in message.Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n').Split('\n'))
        {
            text.Append(line.StartsWith('.') ? "." + line : line).Append("\r\n");
        }

        text.Append(".\r\n");
        _stream.Write(Encoding.UTF8.GetBytes(text.ToString()));
        for (var i = 0; i < acceptedRecipients; i++)
        {
            replies.Add(Reply());
        }

        return go;
    }

    /// <summary>Sends bytes as they are (a hostile client's: no dot-stuffing, any line ends).</summary>
    public void Raw(string text) => _stream.Write(Encoding.UTF8.GetBytes(text));

    public string Reply()
    {
        var lines = new List<string>();
        while (true)
        {
            var line = _reader.ReadLine() ?? throw new IOException("the server closed the connection");
            lines.Add(line);
            if (line.Length < 4 || line[3] != '-')
            {
                return string.Join('\n', lines);
            }
        }
    }

    public void Dispose() => _client.Dispose();
}
