// A misbehaving DNS server in-process on a loopback UDP port, for what a real server will not do:
// never answer (a timeout), or answer with a CNAME loop. Counts the queries it receives.
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Mailman.TestSupport;

public sealed class FakeDnsServer : IDisposable
{
    private readonly UdpClient _socket;
    private readonly Func<string, byte[], byte[]?> _answer;
    private readonly Thread _thread;
    private readonly List<string> _queries = [];

    private FakeDnsServer(Func<string, byte[], byte[]?> answer)
    {
        _answer = answer;
        _socket = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        Port = ((IPEndPoint)_socket.Client.LocalEndPoint!).Port;
        _thread = new Thread(Serve) { IsBackground = true, Name = "fake-dns" };
        _thread.Start();
    }

    public int Port { get; }

    public string Endpoint => $"127.0.0.1:{Port}";

    public IReadOnlyList<string> Queries
    {
        get
        {
            lock (_queries)
            {
                return _queries.ToList();
            }
        }
    }

    /// <summary>Reads every query and never answers.</summary>
    public static FakeDnsServer Silent() => new((_, _) => null);

    /// <summary>
    /// Answers every query for a name under <paramref name="zone"/> with two CNAMEs pointing at
    /// each other (the queried name → loop.ZONE → the queried name) and no TXT; NXDOMAIN elsewhere.
    /// </summary>
    public static FakeDnsServer CnameLoop(string zone) => new((name, query) =>
        name.EndsWith("." + zone, StringComparison.OrdinalIgnoreCase)
            ? Response(query, 0, [Cname(name, "loop." + zone), Cname("loop." + zone, name)])
            : Response(query, 3, []));

    /// <summary>
    /// Answers what parsers trip on: a name containing "ptrloop" gets an answer whose record name
    /// is a compression pointer to itself; one containing "wrongid" an answer with another
    /// transaction id (and never the right one); anything else NXDOMAIN.
    /// </summary>
    public static FakeDnsServer Hostile() => new((name, query) =>
    {
        if (name.Contains("ptrloop", StringComparison.Ordinal))
        {
            var response = Response(query, 0, []);
            response[7] = 1; // one answer record...
            var at = response.Length;
            // ...whose name is a pointer to itself.
            return [.. response, (byte)(0xC0 | (at >> 8)), (byte)at, 0, 16, 0, 1, 0, 0, 1, 0, 0, 2, 1, (byte)'x'];
        }

        if (name.Contains("wrongid", StringComparison.Ordinal))
        {
            var response = Response(query, 3, []);
            response[0] ^= 0xFF;
            return response;
        }

        return Response(query, 3, []);
    });

    public void Dispose()
    {
        Volatile.Write(ref _disposed, true);
        _socket.Dispose();
        _thread.Join(TimeSpan.FromSeconds(5));
    }

    private bool _disposed;

    private void Serve()
    {
        while (true)
        {
            IPEndPoint? from = null;
            byte[] query;
            try
            {
                query = _socket.Receive(ref from);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException || (e is NullReferenceException && Volatile.Read(ref _disposed)))
            {
                // UdpClient disposed under a Receive or Send throws NullReferenceException (it
                // drops its socket): that crashed the test host and aborted a CI run.
                return;
            }

            if (query.Length <= 12)
            {
                continue;
            }

            var name = QuestionName(query, out _);
            lock (_queries)
            {
                _queries.Add(name);
            }

            try
            {
                if (_answer(name, query) is { } response)
                {
                    _socket.Send(response, response.Length, from);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException || (e is NullReferenceException && Volatile.Read(ref _disposed)))
            {
                // UdpClient disposed under a Receive or Send throws NullReferenceException (it
                // drops its socket): that crashed the test host and aborted a CI run.
                return;
            }
        }
    }

    private static string QuestionName(byte[] packet, out int end)
    {
        var labels = new List<string>();
        var i = 12;
        while (i < packet.Length && packet[i] != 0)
        {
            labels.Add(Encoding.ASCII.GetString(packet, i + 1, packet[i]));
            i += packet[i] + 1;
        }

        end = i + 1 + 4;
        return string.Join('.', labels);
    }

    // The query's id and question, QR|RD|RA and the rcode, then the answer records.
    private static byte[] Response(byte[] query, int rcode, byte[][] answers)
    {
        QuestionName(query, out var end);
        var output = new MemoryStream();
        output.Write(query, 0, 2);
        output.Write([0x81, (byte)(0x80 | rcode), 0, 1]);
        output.Write([(byte)(answers.Length >> 8), (byte)answers.Length, 0, 0, 0, 0]);
        output.Write(query, 12, end - 12);
        foreach (var a in answers)
        {
            output.Write(a);
        }

        return output.ToArray();
    }

    private static byte[] Cname(string name, string target)
    {
        var output = new MemoryStream();
        output.Write(Name(name));
        Span<byte> fixedPart = stackalloc byte[10];
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart, 5);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart[2..], 1);
        BinaryPrimitives.WriteUInt32BigEndian(fixedPart[4..], 300);
        var rdata = Name(target);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart[8..], (ushort)rdata.Length);
        output.Write(fixedPart);
        output.Write(rdata);
        return output.ToArray();
    }

    private static byte[] Name(string name)
    {
        var output = new MemoryStream();
        foreach (var label in name.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            output.WriteByte((byte)label.Length);
            output.Write(Encoding.ASCII.GetBytes(label));
        }

        output.WriteByte(0);
        return output.ToArray();
    }
}
