// How the outgoing runner opens its SMTP sockets: blocking (so every read and write is one plain
// syscall, never .NET's epoll emulation), and still bounded by the configured timeout.
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Mailman.Delivery.Smtp;

namespace Mailman.Tests.Delivery;

public sealed class SmtpConnectTests
{
    private const int ONonBlock = 0x800; // O_NONBLOCK on Linux (04000 octal)

    [Fact]
    public void A_connected_socket_stays_in_blocking_mode_through_reads_and_writes()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

        SmtpConnection.ConnectWithTimeout(socket, listener.LocalEndpoint, TimeSpan.FromSeconds(10));
        using var server = listener.AcceptSocket();
        socket.Send("EHLO test\r\n"u8);
        server.Send("250 ok\r\n"u8);
        var buffer = new byte[64];
        Assert.Equal(8, socket.Receive(buffer));

        Assert.Equal(0, FileStatusFlags(socket) & ONonBlock);
    }

    [Fact]
    public void A_server_that_never_answers_the_handshake_times_out_the_connect()
    {
        // A listener with a backlog of 0 that never accepts: once its queue is full the kernel
        // drops further SYNs, so a connect hangs until something gives up.
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0);
        var fillers = Enumerable.Range(0, 4).Select(_ => new Socket(SocketType.Stream, ProtocolType.Tcp)).ToList();
        try
        {
            foreach (var f in fillers)
            {
                _ = f.ConnectAsync(listener.LocalEndPoint!);
            }

            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            var e = Assert.Throws<TimeoutException>(() => SmtpConnection.ConnectWithTimeout(socket, listener.LocalEndPoint!, TimeSpan.FromSeconds(1)));
            Assert.Contains("timed out after 1s", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }

    [Fact]
    public void A_refused_connect_fails_at_once_with_the_socket_error()
    {
        int port;
        using (var l = new TcpListener(IPAddress.Loopback, 0))
        {
            l.Start();
            port = ((IPEndPoint)l.LocalEndpoint).Port;
        }

        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        var e = Assert.Throws<SocketException>(() => SmtpConnection.ConnectWithTimeout(socket, new IPEndPoint(IPAddress.Loopback, port), TimeSpan.FromSeconds(30)));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }

    internal static int FileStatusFlags(Socket socket)
    {
        var fdinfo = File.ReadAllLines($"/proc/self/fdinfo/{socket.Handle}");
        var flags = fdinfo.Single(l => l.StartsWith("flags:", StringComparison.Ordinal))["flags:".Length..].Trim();
        return Convert.ToInt32(flags, 8);
    }
}
