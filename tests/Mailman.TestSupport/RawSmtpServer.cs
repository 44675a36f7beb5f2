// A minimal SMTP server on a raw socket for faults neither smtp-sink nor the SmtpServer
// package can script: close the connection after every accepted message, or stall forever in
// DATA (never answering the end of data), from the first message or after some were accepted,
// or never greet at all, or trickle a multi-line reply (one line at a time, never its last)
// as its greeting or after the end of data, or answer pipelined commands out of order.
// Records what it accepted.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Mailman.TestSupport;

public sealed class RawSmtpServer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly bool _closeAfterMessage;
    private readonly bool _stallInData;
    private readonly int _stallAfter;
    private readonly bool _silent;
    private readonly string? _trickle;
    private readonly TimeSpan _trickleEvery;
    private readonly TimeSpan _greetAfter;
    private readonly bool _outOfStep;
    private readonly int _recipientLimit;
    private readonly int _dropAt;
    private readonly Func<string, string?>? _refuse;
    private int _messages;
    private int _accepted;

    private RawSmtpServer(bool closeAfterMessage, bool stallInData, int stallAfter = 0, bool silent = false, string? trickle = null, TimeSpan trickleEvery = default, TimeSpan greetAfter = default, bool outOfStep = false, int recipientLimit = 0, int dropAt = 0, Func<string, string?>? refuse = null)
    {
        _refuse = refuse;
        _dropAt = dropAt;
        _recipientLimit = recipientLimit;
        _outOfStep = outOfStep;
        _greetAfter = greetAfter;
        _silent = silent;
        _trickle = trickle;
        _trickleEvery = trickleEvery;
        _closeAfterMessage = closeAfterMessage;
        _stallInData = stallInData;
        _stallAfter = stallAfter;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = Task.Run(AcceptLoop);
    }

    public int Port { get; }

    /// <summary>How many recipients each accepted message had, in order.</summary>
    public ConcurrentQueue<int> Messages { get; } = new();

    /// <summary>Takes at most <paramref name="limit"/> recipients a transaction and answers 452 4.5.3 to the others, as Postfix's smtpd_recipient_limit.</summary>
    public static RawSmtpServer WithRecipientLimit(int limit) => new(closeAfterMessage: false, stallInData: false, recipientLimit: limit);

    /// <summary>
    /// Answers RCPT TO an address <paramref name="refuse"/> gives a reply for with that reply as
    /// it is written (a multi-line one with CRLF between its lines; each char one byte, so UTF-8
    /// is sent as its bytes in Latin-1), and takes the others.
    /// </summary>
    public static RawSmtpServer RefusingRecipients(Func<string, string?> refuse) => new(closeAfterMessage: false, stallInData: false, refuse: refuse);

    /// <summary>Takes every message but the <paramref name="n"/>th (counted over all connections), whose data it reads and then hangs up without a reply.</summary>
    public static RawSmtpServer DroppingMessage(int n) => new(closeAfterMessage: false, stallInData: false, dropAt: n);

    /// <summary>Recipients of every message accepted (250 after the data).</summary>
    public ConcurrentQueue<string> Delivered { get; } = new();

    /// <summary>Sessions opened so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    private int _connections;

    public static RawSmtpServer ClosingAfterEachMessage() => new(closeAfterMessage: true, stallInData: false);

    /// <summary>Accepts <paramref name="after"/> messages, then never answers the end of data again (on any connection).</summary>
    public static RawSmtpServer StallingInData(int after = 0) => new(closeAfterMessage: false, stallInData: true, stallAfter: after);

    /// <summary>Greets each connection only after <paramref name="delay"/> (a busy server), then works.</summary>
    public static RawSmtpServer GreetingAfter(TimeSpan delay) => new(closeAfterMessage: false, stallInData: false, greetAfter: delay);

    /// <summary>
    /// Answers the end of each connection's first message only after the next transaction's
    /// MAIL, RCPT and DATA, as smtp-sink's -W delay does with pipelined commands (RFC 2920 keeps
    /// replies in order): the client reads a 354 where it waits for RCPT's reply.
    /// </summary>
    public static RawSmtpServer OutOfStep() => new(closeAfterMessage: false, stallInData: false, outOfStep: true);

    /// <summary>Takes every connection and never says a word (no greeting).</summary>
    public static RawSmtpServer Silent() => new(closeAfterMessage: false, stallInData: false, silent: true);

    /// <summary>
    /// Sends one line of a multi-line reply every <paramref name="every"/> and never the last:
    /// as its greeting (<paramref name="where"/> "greeting"), or to every end of data ("data").
    /// </summary>
    public static RawSmtpServer Trickling(string where, TimeSpan every) => new(closeAfterMessage: false, stallInData: false, trickle: where, trickleEvery: every);

    /// <summary>
    /// Sends lines of a multi-line reply as fast as the client takes them and never the last (a
    /// hostile relay, review 67): as its greeting ("greeting") or to every end of data ("data").
    /// </summary>
    public static RawSmtpServer Flooding(string where) => new(closeAfterMessage: false, stallInData: false, trickle: where, trickleEvery: TimeSpan.Zero);

    /// <summary>Lines of trickled replies sent so far.</summary>
    public int Trickled => Volatile.Read(ref _trickled);

    private int _trickled;

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _connections);
            _ = Task.Run(() => Session(client));
        }
    }

    private async Task Session(TcpClient client)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.Latin1);
            await using var writer = new StreamWriter(stream, Encoding.Latin1) { NewLine = "\r\n", AutoFlush = true };
            if (_silent)
            {
                await Task.Delay(Timeout.Infinite, _stop.Token);
            }

            if (_greetAfter > TimeSpan.Zero)
            {
                await Task.Delay(_greetAfter, _stop.Token);
            }

            if (_trickle == "greeting")
            {
                await Trickle(writer, "220");
            }

            await writer.WriteLineAsync("220 raw ESMTP");
            var rcpts = new List<string>();
            var messages = 0;
            string? withheld = null;
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                var verb = line.Split(' ')[0].ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        await writer.WriteLineAsync("250-raw\r\n250 PIPELINING");
                        break;
                    case "MAIL":
                        rcpts.Clear();
                        await writer.WriteLineAsync("250 ok");
                        break;
                    case "RCPT":
                        if (_recipientLimit > 0 && rcpts.Count >= _recipientLimit)
                        {
                            await writer.WriteLineAsync("452 4.5.3 Error: too many recipients");
                            break;
                        }

                        var rcpt = line[(line.IndexOf('<') + 1)..line.IndexOf('>')];
                        if (_refuse?.Invoke(rcpt) is { } refusal)
                        {
                            await writer.WriteLineAsync(refusal);
                            break;
                        }

                        rcpts.Add(rcpt);
                        await writer.WriteLineAsync("250 ok");
                        break;
                    case "DATA":
                        await writer.WriteLineAsync("354 go");
                        if (withheld is not null)
                        {
                            await writer.WriteLineAsync(withheld);
                            withheld = null;
                        }

                        while (await reader.ReadLineAsync(_stop.Token) is { } data && data != ".")
                        {
                        }

                        if (_trickle == "data")
                        {
                            await Trickle(writer, "250");
                        }

                        if (_dropAt > 0 && Interlocked.Increment(ref _messages) == _dropAt)
                        {
                            return; // the data read, no reply: the connection closes
                        }

                        if (_stallInData && Interlocked.Increment(ref _accepted) > _stallAfter)
                        {
                            await Task.Delay(Timeout.Infinite, _stop.Token);
                        }

                        foreach (var r in rcpts)
                        {
                            Delivered.Enqueue(r);
                        }

                        Messages.Enqueue(rcpts.Count);

                        if (_outOfStep && ++messages == 1)
                        {
                            withheld = "250 queued";
                            break;
                        }

                        await writer.WriteLineAsync("250 queued");
                        if (_closeAfterMessage)
                        {
                            return;
                        }

                        break;
                    case "QUIT":
                        await writer.WriteLineAsync("221 bye");
                        return;
                    default:
                        await writer.WriteLineAsync("250 ok");
                        break;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    // Until the client goes away (the write fails) or the server is disposed.
    private async Task Trickle(StreamWriter writer, string code)
    {
        if (_trickleEvery == TimeSpan.Zero)
        {
            var lines = string.Concat(Enumerable.Repeat(code + "-more and more\r\n", 4096));
            while (true)
            {
                await writer.WriteAsync(lines.AsMemory(), _stop.Token);
                Interlocked.Add(ref _trickled, 4096);
            }
        }

        while (true)
        {
            await writer.WriteLineAsync(code + "-still thinking");
            Interlocked.Increment(ref _trickled);
            await Task.Delay(_trickleEvery, _stop.Token);
        }
    }
}
