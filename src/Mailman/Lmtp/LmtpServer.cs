// Runs the LMTP listener in the daemon when Mailman:Lmtp:Url is set (loopback unless allowed
// otherwise): Postfix's `lmtp:inet:127.0.0.1:8024` delivers list mail to it without starting a
// process per post. Blocking sockets, one dedicated thread per session and one for accept: a
// session's time goes to fsync (two per recipient, in Switchboard), which would hold a thread
// whichever way it is written, and blocking reads keep the event loop out of the path, as the
// SMTP client's connections do (README Performance). Nothing is decided here: sessions turn
// commands into the same Intake calls inject makes.
using System.Net;
using System.Net.Sockets;
using Mailman.Instance;
using Mailman.Queues;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Lmtp;

public sealed class LmtpServer(MailmanOptions options, InstancePaths paths, QueueSet queues, TimeProvider time, ILogger<LmtpServer> logger) : IHostedService, IDisposable
{
    private readonly object _gate = new();
    // Idle: the session waits on its client; Closed: shut down for the stop while it did.
    private readonly Dictionary<LmtpSession, (Socket Socket, Thread Thread, bool Idle, bool Closed)> _sessions = [];
    private Socket? _listener;
    private Thread? _acceptor;
    private volatile bool _stopping;
    private long _accepted;

    /// <summary>Where the listener is bound (the port the OS chose when the URL named port 0).</summary>
    public IPEndPoint? EndPoint { get; private set; }

    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    private string SpoolDirectory => Path.Combine(paths.VarDirectory, "lmtp");

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var endPoint = options.Lmtp.EndPoint();
        RemoveStaleSpools();
        var listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // SO_REUSEADDR alone (a restart binds past the last run's TIME_WAIT connections).
            // Not .NET's ReuseAddress: on Linux it sets SO_REUSEPORT too, and a second daemon
            // with the same URL then shared the port, half of Postfix's deliveries answered
            // "no such list" by an instance without the list (review 28).
            listener.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            listener.Bind(endPoint);
            listener.Listen(128);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new InvalidOperationException($"configuration: Mailman:Lmtp:Url {options.Lmtp.Url}: cannot listen on {endPoint}: {e.Message}", e);
        }

        _listener = listener;
        EndPoint = (IPEndPoint)listener.LocalEndPoint!;
        var limits = new LmtpLimits(options.Smtp.HeloName.Length > 0 ? options.Smtp.HeloName : Dns.GetHostName(), (long)options.Lmtp.MaxMessageSizeKb * 1024, options.Lmtp.MaxRecipients);
        var intake = new Intake(paths, time, queues);
        _acceptor = new Thread(() => Accept(listener, intake, limits)) { IsBackground = true, Name = "lmtp-accept" };
        _acceptor.Start();
        logger.LogInformation("LMTP listening on {EndPoint} (Postfix: lmtp:inet:{EndPoint}); SIZE {MaxBytes}, {MaxRecipients} recipients per transaction",
            EndPoint, EndPoint, limits.MaxMessageBytes, limits.MaxRecipients);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Closes the listener and the sessions waiting on their client (for a command, or for more
    /// of a message: nothing of it was answered, the client sends it again) at once; sessions
    /// writing entries finish (their entries stay durable), then say 421.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        _listener?.Dispose();
        List<Thread> threads;
        lock (_gate)
        {
            foreach (var (session, entry) in _sessions.ToList())
            {
                session.Stopping = true;
                if (entry.Idle)
                {
                    ShutDown(entry.Socket);
                    _sessions[session] = entry with { Closed = true };
                }
            }

            threads = _sessions.Values.Select(s => s.Thread).ToList();
        }

        try
        {
            // Sessions writing entries finish; the host's stop timeout bounds the wait.
            await Task.Run(() => threads.ForEach(t => t.Join()), CancellationToken.None).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Busy: writing entries, or sending replies to a client that does not read them (review
            // 97: a session blocked so is not cut, its 250s may be on their way).
            logger.LogWarning("LMTP: sessions still busy at the stop timeout (writing entries, or sending replies their client does not read); what was not answered 250 the client sends again");
        }

        lock (_gate)
        {
            foreach (var (socket, _, _, _) in _sessions.Values)
            {
                socket.Dispose();
            }
        }

        logger.LogInformation("LMTP listener stopped after accepting {Accepted} entries", Interlocked.Read(ref _accepted));
    }

    // Disposed without a stop (the start failed after the listener opened): the accept loop ends quietly.
    public void Dispose()
    {
        _stopping = true;
        _listener?.Dispose();
    }

    private void Accept(Socket listener, Intake intake, LmtpLimits limits)
    {
        var failures = 0;
        while (!_stopping)
        {
            Socket socket;
            try
            {
                socket = listener.Accept();
            }
            catch (ObjectDisposedException)
            {
                // The listener is gone: stopped, or disposed because the start failed elsewhere
                // (review 86: hundreds of lines in 10 ms beside a configuration refusal).
                return;
            }
            catch (SocketException e)
            {
                if (_stopping)
                {
                    return;
                }

                // Out of file descriptors, say: said once a burst, tried again with backoff
                // (5 ms doubling to 1 s), not in a hot loop.
                if (failures++ == 0)
                {
                    logger.LogWarning("LMTP accept failed: {Error}; trying again with backoff", e.Message);
                }

                Thread.Sleep(Math.Min(1000, 5 << Math.Min(failures, 8)));
                continue;
            }

            socket.NoDelay = true;
            socket.ReceiveTimeout = socket.SendTimeout = (int)options.Lmtp.Timeout.TotalMilliseconds;
            string? notStarted = null;
            lock (_gate)
            {
                if (_sessions.Count >= options.Lmtp.MaxSessions || _stopping)
                {
                    TryRefuse(socket, _stopping ? "421 4.3.2 Service shutting down, try again later" : "421 4.3.2 Too many sessions, try again later");
                    continue;
                }

                var connection = new LmtpConnection(socket, options.Lmtp.Timeout);
                var session = new LmtpSession(connection, intake, limits, SpoolDirectory, logger);
                connection.Waiting = idle => SetIdle(session, idle);
                var thread = new Thread(() => Run(session, connection)) { IsBackground = true, Name = "lmtp-session" };
                _sessions[session] = (socket, thread, false, false);
                try
                {
                    thread.Start();
                }
                catch (OutOfMemoryException e)
                {
                    // No thread to be had: out of file descriptors (the runtime needs two for a
                    // thread) or of memory. Review 87: unhandled here, it ended the daemon (134).
                    // The client is told to come back (Postfix retries); the loop backs off.
                    _sessions.Remove(session);
                    TryRefuse(socket, "421 4.3.2 Out of resources, try again later");
                    notStarted = e.Message;
                }
            }

            if (notStarted is not null)
            {
                if (failures++ == 0)
                {
                    logger.LogWarning("LMTP session not started: {Error} (out of file descriptors or memory?); new connections are answered 421 and tried again with backoff", notStarted);
                }

                Thread.Sleep(Math.Min(1000, 5 << Math.Min(failures, 8)));
            }
            else
            {
                failures = 0;
            }
        }
    }

    private void Run(LmtpSession session, LmtpConnection connection)
    {
        try
        {
            session.Run();
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            // The client went away or timed out: anything not yet answered 250 was never accepted.
            logger.LogDebug("LMTP session ended: {Error}", e.Message);
        }
        catch (Exception e)
        {
            // Nothing that happens in one session ends the process.
            logger.LogError(e, "LMTP session failed: {Error}", e.Message);
        }
        finally
        {
            Interlocked.Add(ref _accepted, session.Accepted);
            lock (_gate)
            {
                _sessions.Remove(session);
            }

            connection.Dispose();
        }
    }

    // A session waiting on its client is closed at once on shutdown; one writing entries
    // finishes. False: it was closed so (under the gate, as the stop closes it), and what its
    // last read brought must not be acted on.
    private bool SetIdle(LmtpSession session, bool idle)
    {
        lock (_gate)
        {
            if (!_sessions.TryGetValue(session, out var entry))
            {
                return true;
            }

            if (entry.Closed)
            {
                return false;
            }

            var close = idle && _stopping;
            _sessions[session] = entry with { Idle = idle, Closed = close };
            if (close)
            {
                ShutDown(entry.Socket);
            }

            return !close;
        }
    }

    private static void ShutDown(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private static void TryRefuse(Socket socket, string reply)
    {
        try
        {
            socket.Send(System.Text.Encoding.ASCII.GetBytes(reply + "\r\n"));
        }
        catch (SocketException)
        {
        }

        socket.Dispose();
    }

    private void RemoveStaleSpools()
    {
        if (!Directory.Exists(SpoolDirectory))
        {
            return;
        }

        foreach (var file in Directory.EnumerateFiles(SpoolDirectory, "*.spool"))
        {
            try
            {
                File.Delete(file);
            }
            catch (IOException)
            {
            }
        }
    }
}
