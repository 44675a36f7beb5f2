// The connection's side of a stop: a read that returns after the session was closed for the
// daemon's stop is not acted on (review 96: the final dot of a message, come just as the stop
// closed its session, was written and never answered, and the MTA sent the post again).
using System.Net;
using System.Net.Sockets;
using Mailman.Lmtp;

namespace Mailman.Tests.Lmtp;

public sealed class LmtpConnectionTests : IDisposable
{
    private readonly string _spool = Directory.CreateTempSubdirectory("mailman-lmtp-spool-").FullName;

    public void Dispose() => Directory.Delete(_spool, recursive: true);

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void The_rest_of_a_message_read_as_the_stop_closed_the_session_is_not_taken(bool closedMeanwhile, bool taken)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        client.Connect((IPEndPoint)listener.LocalEndpoint);
        using var server = listener.AcceptSocket();
        using var connection = new LmtpConnection(server, TimeSpan.FromSeconds(30));
        var waits = new List<bool>();

        // The server's answer after the read: false when the stop closed the session while it waited.
        connection.Waiting = idle =>
        {
            waits.Add(idle);
            return idle || !closedMeanwhile;
        };
        client.GetStream().Write("Subject: x\r\n\r\nbody\r\n.\r\n"u8);

        using var spool = new MessageSpool(_spool);
        if (taken)
        {
            Assert.True(connection.ReadData(spool, 1 << 20));
        }
        else
        {
            var e = Assert.Throws<IOException>(() => connection.ReadData(spool, 1 << 20));
            Assert.Contains("closed for the daemon's stop", e.Message, StringComparison.Ordinal);
        }

        Assert.Equal([true, false], waits.Take(2)); // idle while it read, busy after
    }
}
