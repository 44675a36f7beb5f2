// One SMTP connection of the outgoing runner: opened on demand with TCP_NODELAY, reused for up
// to MaxSessionsPerConnection messages, dropped after an I/O error. Sends one transaction and
// classifies every recipient: delivered, deferred (4xx, 552, broken connection) or bounced (5xx).
using System.Net;
using System.Net.Sockets;
using Mailman.Instance;
using Mailman.Queues;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Mailman.Delivery.Smtp;

internal sealed class SmtpConnection(SmtpOptions options) : IDisposable
{
    // Coalesces the small writes of a copy's body (values, dots) into one send; larger literal
    // pieces go to the socket directly.
    private const int WireBuffer = 64 * 1024;

    private ListSmtpClient? _client;
    private Socket? _socket;
    private int _sent;

    /// <summary>Closes the socket under an in-flight transaction (shutdown grace over): it fails at once and its recipients are deferred.</summary>
    public void Abort()
    {
        try
        {
            _socket?.Close();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Sends one transaction; never throws for SMTP or network failures, it classifies them.</summary>
    /// <exception cref="SmtpConnectException">The server could not be reached at all.</exception>
    public void Send(MimeMessage carrier, string sender, IReadOnlyList<Recipient> recipients, TransactionResult result)
    {
        // A reused connection the server closed since (after its last reply, or with a 421)
        // fails before MAIL FROM is answered, when nothing of the copy has been sent: open a new
        // one and try once more at once, instead of deferring the copy for an hour.
        var reused = _client is { IsConnected: true };
        if (!SendOnce(carrier, sender, recipients, result) && reused)
        {
            result.Clear();
            SendOnce(carrier, sender, recipients, result);
        }
    }

    // False when the connection broke before the server answered MAIL FROM.
    private bool SendOnce(MimeMessage carrier, string sender, IReadOnlyList<Recipient> recipients, TransactionResult result)
    {
        var client = EnsureConnected();
        client.SenderAccepted = false;
        var mailboxes = new List<MailboxAddress>(recipients.Count);
        HashSet<string>? invalid = null;
        foreach (var r in recipients)
        {
            try
            {
                mailboxes.Add(new MailboxAddress("", r.Address));
            }
            catch (ParseException e)
            {
                (invalid ??= []).Add(r.Address);
                result.Bounced.Add(new(r, 553, "invalid address: " + e.Message, AtRecipient: true));
            }
        }

        if (mailboxes.Count == 0)
        {
            return true;
        }

        client.Refused.Clear();
        MailboxAddress from;
        try
        {
            from = MailboxAddress.Parse(sender);
        }
        catch (ParseException) when (sender.Contains('+', StringComparison.Ordinal))
        {
            // Verp only builds valid addresses; if one ever is not, the copy still goes out
            // with the plain bounces address.
            from = MailboxAddress.Parse(sender[..sender.IndexOf('+', StringComparison.Ordinal)] + sender[sender.LastIndexOf('@')..]);
        }

        SmtpStatusCode? transactionStatus = null;
        string? transactionResponse = null;
        var broken = false;
        try
        {
            client.Send(Carrier.SendOptions, carrier, from, mailboxes, CancellationToken.None);
            _sent++;
        }
        catch (SmtpCommandException e) when (client.IsConnected)
        {
            // The server refused a command; MailKit has sent RSET and the connection stays usable.
            transactionStatus = e.StatusCode;
            transactionResponse = e.Message;
            _sent++;
        }
        catch (Exception e) when (e is SmtpProtocolException or IOException or SocketException or SmtpCommandException or OperationCanceledException or ServiceNotConnectedException or ObjectDisposedException)
        {
            broken = true;
            transactionResponse = e.Message;
            Drop();
        }

        var refused = new Dictionary<string, (SmtpStatusCode Status, string Response)>(StringComparer.OrdinalIgnoreCase);
        foreach (var (address, status, response) in client.Refused)
        {
            refused[address] = (status, response);
        }

        foreach (var r in recipients)
        {
            if (invalid?.Contains(r.Address) == true)
            {
                continue;
            }

            if (refused.TryGetValue(r.Address, out var refusal))
            {
                Classify(result, r, (int)refusal.Status, refusal.Response, atRecipient: true);
            }
            else if (broken)
            {
                result.Deferred.Add((r, 0, transactionResponse ?? "connection lost"));
            }
            else if (transactionStatus is { } status)
            {
                // MAIL FROM or the end of DATA: the message or the sender, not this address.
                Classify(result, r, (int)status, transactionResponse ?? "", atRecipient: false);
            }
            else
            {
                result.Delivered.Add(r);
            }
        }

        return !(broken && !client.SenderAccepted);
    }

    public void Dispose()
    {
        if (_client is { IsConnected: true } client)
        {
            try
            {
                client.Disconnect(quit: true);
            }
            catch (Exception e) when (e is IOException or SocketException or SmtpProtocolException or SmtpCommandException)
            {
            }
        }

        Drop();
    }

    // RFC 5321 §4.2.1: 4yz is transient; 552 (storage exceeded) may be treated as transient too (§4.5.3.1.10).
    private static void Classify(TransactionResult result, Recipient r, int status, string response, bool atRecipient)
    {
        if (status is >= 400 and < 500 or 552)
        {
            result.Deferred.Add((r, status, response));
        }
        else
        {
            result.Bounced.Add(new(r, status, response, atRecipient));
        }
    }

    private ListSmtpClient EnsureConnected()
    {
        if (_client is { IsConnected: true } && (options.MaxSessionsPerConnection == 0 || _sent < options.MaxSessionsPerConnection) && !ClosedByServer())
        {
            return _client;
        }

        Dispose();
        var client = new ListSmtpClient(options.PreferBdat)
        {
            Timeout = options.TimeoutSeconds * 1000,
            CheckCertificateRevocation = false,
        };
        if (!string.IsNullOrEmpty(options.HeloName))
        {
            client.LocalDomain = options.HeloName;
        }

        Socket? socket = null;
        try
        {
            // MailKit's Connect(host, port) leaves Nagle on: the last segment of every message
            // then waits for a delayed ACK (~40 ms). Our own socket has TCP_NODELAY.
            socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            ConnectWithTimeout(socket, Endpoint(), TimeSpan.FromSeconds(options.TimeoutSeconds));

            client.Connect(socket, options.Host, options.Port, SecureSocketOptions.None, CancellationToken.None);
            client.Wire = new BufferedStream(new NetworkStream(socket, ownsSocket: false) { WriteTimeout = options.TimeoutSeconds * 1000 }, WireBuffer);
        }
        catch (Exception e) when (e is SocketException or IOException or TimeoutException or OperationCanceledException or SmtpProtocolException or SmtpCommandException)
        {
            socket?.Dispose();
            client.Dispose();
            throw new SmtpConnectException($"cannot connect to SMTP server {options.Host}:{options.Port}: {e.Message}", e);
        }

        _client = client;
        _socket = socket;
        _sent = 0;
        return client;
    }

    // Between transactions the server has nothing to say: a readable socket means it closed the
    // connection (EOF) or sent an unsolicited 421. Either way, open a new one now rather than
    // fail the next copy on a dead connection (one poll(2), no read).
    private bool ClosedByServer()
    {
        try
        {
            return _socket is null || _socket.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    // Never a non-blocking or async socket call: on Linux .NET never returns a socket to blocking
    // mode once it has been non-blocking, and then runs every later synchronous read and write
    // through its epoll engine (EAGAIN, a wake-up of the event thread and a futex hand-off per
    // read; measured at a third of the CPU per copy). A blocking connect, bounded by a timer that
    // closes the socket, keeps the socket on plain blocking syscalls.
    internal static void ConnectWithTimeout(Socket socket, EndPoint endpoint, TimeSpan timeout)
    {
        if (endpoint is DnsEndPoint dns)
        {
            var addresses = Dns.GetHostAddresses(dns.Host);
            endpoint = new IPEndPoint(addresses.Length > 0 ? addresses[0] : throw new SocketException((int)SocketError.HostNotFound), dns.Port);
        }

        // 0: connecting; 1: the timer closed the socket; 2: connected, the timer may no longer close it.
        var state = 0;
        using var timer = new Timer(_ =>
        {
            if (Interlocked.CompareExchange(ref state, 1, 0) == 0)
            {
                socket.Close();
            }
        }, null, timeout, Timeout.InfiniteTimeSpan);
        try
        {
            socket.Connect(endpoint);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException && Volatile.Read(ref state) == 1)
        {
            throw new TimeoutException($"connect to {endpoint} timed out after {timeout.TotalSeconds:F0}s", e);
        }

        if (Interlocked.CompareExchange(ref state, 2, 0) != 0)
        {
            throw new TimeoutException($"connect to {endpoint} timed out after {timeout.TotalSeconds:F0}s");
        }
    }

    private EndPoint Endpoint()
        => IPAddress.TryParse(options.Host, out var ip) ? new IPEndPoint(ip, options.Port) : new DnsEndPoint(options.Host, options.Port);

    private void Drop()
    {
        // The wire owns nothing (the client closes the socket); disposing it would flush what a
        // failed write left in its buffer into a dead socket.
        _client?.Dispose();
        _client = null;
        _socket = null;
    }
}

/// <summary>The server could not be reached: every recipient of the post waits in retry.</summary>
public sealed class SmtpConnectException(string message, Exception inner) : Exception(message, inner);

/// <summary>What became of each recipient of one or more transactions.</summary>
public sealed class TransactionResult
{
    public List<Recipient> Delivered { get; } = [];

    public List<(Recipient Recipient, int Status, string Response)> Deferred { get; } = [];

    public List<Refusal> Bounced { get; } = [];

    public void Clear()
    {
        Delivered.Clear();
        Deferred.Clear();
        Bounced.Clear();
    }
}
