// Loopback port helpers for the test servers.
using System.Net;
using System.Net.Sockets;

namespace Mailman.TestSupport;

public static class Net
{
    private static readonly HashSet<int> Given = [];
    private static readonly int EphemeralLow = ReadEphemeralLow();

    /// <summary>
    /// A port that was free a moment ago, for a test server to listen on: below the kernel's
    /// ephemeral range (ip_local_port_range) and never the same twice in this process. A port the
    /// OS picks is in that range, and once let go it may be handed to another test's listener or
    /// outgoing connection before the server meant for it binds it; that server then fails to
    /// start while a probe of the port finds the other one.
    /// </summary>
    public static int FreePort()
    {
        lock (Given)
        {
            for (var attempt = 0; EphemeralLow > 10_000 && attempt < 100; attempt++)
            {
                var port = Random.Shared.Next(10_000, EphemeralLow);
                if (!Given.Add(port))
                {
                    continue;
                }

                try
                {
                    using var probe = new TcpListener(IPAddress.Loopback, port);
                    probe.Start();
                    return port;
                }
                catch (SocketException)
                {
                    // In use by something else: another.
                }
            }

            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var picked = ((IPEndPoint)listener.LocalEndpoint).Port;
            Given.Add(picked);
            return picked;
        }
    }

    private static int ReadEphemeralLow()
    {
        try
        {
            var range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
            return range.Length > 0 && int.TryParse(range[0], System.Globalization.CultureInfo.InvariantCulture, out var low) ? low : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    public static bool CanConnect(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
