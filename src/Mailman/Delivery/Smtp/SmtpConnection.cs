// One SMTP connection of the outgoing runner to one relay: opened on demand with TCP_NODELAY,
// secured (STARTTLS or implicit TLS) and authenticated as the relay says, reused for up to
// MaxSessionsPerConnection messages, dropped after an I/O error. Sends one transaction and
// classifies every recipient: delivered, deferred (4xx, 552, broken connection) or bounced (5xx).
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Mailman.Instance;
using Mailman.Queues;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Mailman.Delivery.Smtp;

internal sealed class SmtpConnection(Relay relay, SmtpOptions options) : IDisposable
{
    // Coalesces the small writes of a copy's body (values, dots) into one send; larger literal
    // pieces go to the socket directly.
    private const int WireBuffer = 64 * 1024;

    private ListSmtpClient? _client;
    private Socket? _socket;
    private Socket? _connecting; // the socket of a Connect under way, for Abort
    private volatile bool _aborted;
    private SslStream? _tls;
    private string? _tlsRefusal;
    private PipelinedWriter? _pipe;
    private int _sent;
    private bool _lostReply; // the last Send's broken connection left the transaction before it without its reply

    // MailKit's timeout and the socket's are per read: a server that sends a line of a reply
    // every few seconds and never ends it would hold the connection for ever (review 32). A
    // session's setup and each of MailKit's transactions get an overall deadline; past it the
    // socket is cut, as by Abort, and the wait counts as a timeout. (The pipelined path checks its
    // own, per reply, without a timer.)
    private readonly Lock _deadlineGate = new();
    private Timer? _deadline;
    private long _deadlineAt; // Environment.TickCount64 when armed and due; 0: not armed
    private volatile bool _expired;
    private long _deadlineSeconds;

    // A timer's longest due time is 49 days.
    private static readonly TimeSpan MaxDeadline = TimeSpan.FromDays(30);

    /// <summary>A session's greeting, EHLO, STARTTLS and AUTH together get this many timeouts.</summary>
    internal const int SetupTimeouts = 5;

    // No TLS session resumption: on a resumed session SslStream may skip the certificate
    // callback, which both checks the relay's trust and hands us MailKit's TLS stream.
    // Connections live for up to MaxSessionsPerConnection copies: a full handshake each is cheap.
    static SmtpConnection() => AppContext.SetSwitch("System.Net.Security.DisableTlsResume", true);

    /// <summary>A plain connection to Host:Port (tests and tools).</summary>
    public SmtpConnection(SmtpOptions options)
        : this(Relay.Plain(options.Host, options.Port), options)
    {
    }

    public Relay Relay => relay;

    /// <summary>Hears +1 when a session is established (greeted, secured, authenticated) and -1 when it ends.</summary>
    public Action<int>? SessionsChanged { get; init; }

    /// <summary>Hears +1 when a connection attempt starts and -1 when it ends, after SessionsChanged heard a success.</summary>
    public Action<int>? AttemptsChanged { get; init; }

    /// <summary>Hears why an opportunistic relay's STARTTLS failed when the session goes on in plain text instead.</summary>
    public Action<string>? PlainFallback { get; init; }

    /// <summary>The open connection's socket (tests check its flags).</summary>
    internal Socket? Socket => _socket;

    /// <summary>Copies' bodies go to MailKit's own TLS stream (found through the validation callback), not to its SmtpStream.</summary>
    internal bool BodyOnTlsStream => _client?.Wire is BufferedStream { UnderlyingStream: SslStream };

    /// <summary>Whether the open connection is encrypted (after STARTTLS or implicit TLS).</summary>
    public bool IsSecure => _client is { IsConnected: true, IsSecure: true };

    /// <summary>Closes the socket under an in-flight transaction (shutdown grace over): it fails at once and its recipients are deferred.</summary>
    public void Abort()
    {
        _aborted = true;
        Cut();
    }

    private void Cut()
    {

        // shutdown(2) first: on Linux close(2) does not wake a thread blocked in recv(2) on the
        // same socket (the pipelined reader waiting for the reply to a final dot would sleep
        // until its timeout, past the stop timeout, leaving the entry claimed).
        // A connection still being made (connect, greeting, EHLO, STARTTLS, AUTH) is cut too
        // (review 31: a relay that took connections and never greeted held the stop for the
        // whole timeout, and the entry stayed claimed: after MaxRecoveries it went to bad).
        foreach (var socket in new[] { _socket, Volatile.Read(ref _connecting) })
        {
            try
            {
                socket?.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }

            try
            {
                socket?.Close();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>A session is open (it may still be replaced before the next transaction: after MaxSessionsPerConnection, or one the server closed).</summary>
    public bool IsOpen => _client is { IsConnected: true };

    /// <summary>Opens the session (connect, greeting, EHLO, STARTTLS, AUTH) unless one is open.</summary>
    /// <exception cref="SmtpConnectException">The server could not be reached, or refused or failed the session.</exception>
    public void Open()
    {
        if (!IsOpen)
        {
            EnsureConnected();
        }
    }

    /// <summary>
    /// Sends one transaction; never throws for SMTP or network failures, it classifies them.
    /// Recipients past the server's limit per transaction (452 4.5.3, "too many recipients")
    /// go in the next transaction at once, on the same connection, while the server takes some
    /// of each (RFC 5321 §4.5.3.1.10, as Postfix does): one logical transaction for the caller.
    /// </summary>
    /// <exception cref="SmtpConnectException">The server could not be reached at all.</exception>
    public void Send(MimeMessage carrier, string sender, IReadOnlyList<Recipient> recipients, TransactionResult result)
    {
        // Postfix applies its SMTPUTF8 rule per transaction (SMTPUTF8_README): a post whose header
        // block is raw UTF-8, sent with SMTPUTF8 because one member's local part needs it, is
        // returned for every member of that transaction whose next hop lacks SMTPUTF8. Those who
        // need it go in a transaction of their own after the others, as a follow-up (one logical
        // transaction for the caller, as for 452 4.5.3).
        if (recipients.Count > 1 && Split(recipients) is var (plain, apart))
        {
            // Each part is a transaction of its own for the refused-alike rule (review 116: the
            // rest, counted against the whole batch, could never be refused alike: scored).
            result.Transaction = (result.Transaction.Index, plain.Count);
            SendAll(carrier, sender, plain, result);
            SendApart(carrier, sender, apart, result);
            return;
        }

        SendAll(carrier, sender, recipients, result);
    }

    private void SendAll(MimeMessage carrier, string sender, IReadOnlyList<Recipient> recipients, TransactionResult result)
    {
        SendAttempt(carrier, sender, recipients, result);
        if (result.Deferred.Exists(IsOverTheLimit))
        {
            SendTheRest(carrier, sender, result);
        }
    }

    /// <summary>RFC 6531 §3.2: a non-ASCII local part needs SMTPUTF8 (an IDN domain goes as its A-labels).</summary>
    internal static bool NeedsSmtpUtf8(string address) => !System.Text.Ascii.IsValid(address.AsSpan(0, Math.Max(0, address.LastIndexOf('@'))));

    // A mixed transaction's recipients, in one pass: those who need no SMTPUTF8 and those who do;
    // null when none or all do (nothing is allocated for a batch that needs none).
    private static (List<Recipient> Plain, List<Recipient> Apart)? Split(IReadOnlyList<Recipient> recipients)
    {
        List<Recipient>? plain = null, apart = null;
        for (var i = 0; i < recipients.Count; i++)
        {
            var r = recipients[i];
            if (NeedsSmtpUtf8(r.Address))
            {
                if (apart is null)
                {
                    apart = [];
                    plain = [.. recipients.Take(i)];
                }

                apart.Add(r);
            }
            else
            {
                plain?.Add(r);
            }
        }

        return apart is not null && plain!.Count > 0 ? (plain, apart) : null;
    }

    // The transaction of the members who need SMTPUTF8, after the others' on the same connection;
    // not on a connection the others' broke or the server closed (they wait in retry with them).
    private void SendApart(MimeMessage carrier, string sender, List<Recipient> rest, TransactionResult result)
    {
        Complete();
        if (result.Pending || result.Broken || result.TimedOut || result.HasClosingReply)
        {
            result.DeferApart(rest, "not sent: the transaction of the other recipients failed before it");
            return;
        }

        // A transaction of its own to the server: its refusals are alike or not among themselves
        // (review 115: two alike of a batch of six were taken for the members').
        var next = new TransactionResult { Transaction = (Bounces.SmtpRefusals.PartApart(result.Transaction.Index), rest.Count), Started = result.Started };
        try
        {
            SendAll(carrier, sender, rest, next);
            Complete();
        }
        catch (SmtpConnectException e)
        {
            result.DeferApart(rest, e.Message); // nothing of it was sent
            return;
        }

        // It counts only when something of it went out (a relay without SMTPUTF8 refuses them on our side).
        result.Add(next, sent: next.Delivered.Count > 0 || next.Deferred.Count > 0 || next.Bounced.Exists(b => !b.Ours));
    }

    // Review 67: a relay that takes 3 recipients a transaction had the rest of each deferred to
    // retry; at an hour's backoff about 650 members a day got through. The transaction's data
    // reply is read first (pipelined): only a round the server took some of is followed by another.
    private void SendTheRest(MimeMessage carrier, string sender, TransactionResult result)
    {
        var delivered = 0;
        while (!_aborted && result.Deferred.Exists(IsOverTheLimit))
        {
            Complete();
            if (result.Pending || result.Delivered.Count == delivered)
            {
                return; // the server took none of this round: they wait in retry
            }

            delivered = result.Delivered.Count;
            var over = result.Deferred.FindAll(IsOverTheLimit);
            result.Deferred.RemoveAll(IsOverTheLimit);
            var next = new TransactionResult { Transaction = result.Transaction, Started = result.Started };
            try
            {
                SendAttempt(carrier, sender, over.ConvertAll(d => d.Recipient), next);
                Complete();
            }
            catch (SmtpConnectException)
            {
                result.Deferred.AddRange(over); // nothing of it was sent: deferred as the server said
                return;
            }

            result.Add(next);
        }
    }

    // RFC 5321 §4.5.3.1.10: 452 to a RCPT past the server's limit of recipients per transaction
    // (Postfix and Exchange: "452 4.5.3 ... too many recipients"; not 452 4.3.1, out of storage).
    private static bool IsOverTheLimit((Recipient Recipient, int Status, string Response) d)
        => d.Status == 452 && (d.Response.TrimStart().StartsWith("4.5.3", StringComparison.Ordinal) || d.Response.Contains("too many recipients", StringComparison.OrdinalIgnoreCase));

    private void SendAttempt(MimeMessage carrier, string sender, IReadOnlyList<Recipient> recipients, TransactionResult result)
    {
        // A reused connection the server closed since (after its last reply, or with a 421)
        // fails before MAIL FROM is answered, when nothing of the copy has been sent: open a new
        // one and try once more at once, instead of deferring the copy for an hour.
        var reused = _client is { IsConnected: true } && _sent > 0; // one opened by Open() for this transaction is fresh
        _lostReply = false;

        // Cut by a stopping daemon: never a new connection (it would stall again with no one
        // left to cut it, past the stop timeout).
        if (Aborted(recipients, result) || SendOnce(carrier, sender, recipients, result) || Aborted(recipients, result))
        {
            return;
        }

        // Not when the break left the transaction before this one without its reply (its data
        // sent): a relay that hangs up after every message would take each copy on a new
        // connection (review 67). The pool marks it down.
        if (reused && !_lostReply)
        {
            result.Clear();
            if (SendOnce(carrier, sender, recipients, result))
            {
                return;
            }
        }

        // A fresh connection that breaks or answers 421 before MAIL FROM is accepted: the relay
        // is not taking mail. Nothing of the copy was sent; the pool gives it to another relay.
        // Said as it happened: a reply timeout is no refusal (review 53).
        var first = result.Deferred.Count > 0 ? result.Deferred[0] : default;
        var what = _lostReply ? "broke the connection in the middle of a transaction, before its reply"
            : result.Deferred.Count == 0 ? "lost the connection before MAIL FROM was answered"
            : first.Status != 0 ? $"refused the transaction before MAIL FROM: {first.Status} {first.Response}"
            : result.TimedOut ? $"did not answer MAIL FROM in time: {first.Response}"
            : $"lost the connection before MAIL FROM was answered: {first.Response}";
        var answered = _lostReply || first.Status == 421; // it took the session (a broken transaction is waited for once, as a 421)
        result.Clear();
        throw new SmtpConnectException($"SMTP server {relay.Name} {what}", null) { Answered = answered };
    }

    // After Abort, true: what has no outcome yet is deferred (recorded; the entry goes back with
    // its checkpoint, and the resumed delivery sends the deferred to retry).
    private bool Aborted(IReadOnlyList<Recipient> recipients, TransactionResult result)
    {
        if (!_aborted)
        {
            return false;
        }

        if (!result.Pending)
        {
            result.DeferUnsettled(recipients, "the transaction was cut: the daemon is stopping");
        }

        return true;
    }

    // False when the connection broke before the server answered MAIL FROM.
    private bool SendOnce(MimeMessage carrier, string sender, IReadOnlyList<Recipient> recipients, TransactionResult result)
    {
        var client = EnsureConnected();
        if (client.OffersUtf8 && !client.Capabilities.HasFlag(SmtpCapabilities.UTF8) && (NeedsSmtpUtf8(sender) || recipients.Any(r => NeedsSmtpUtf8(r.Address))))
        {
            // MailKit has SMTPUTF8 off on this connection since a transaction that did not need
            // it (below), and turns a capability off only for good: a new connection (QUIT on
            // this one), whose session is read afresh (review 115: one that no longer offered
            // it got raw UTF-8 addresses).
            Dispose();
            client = EnsureConnected();
        }

        client.SenderAccepted = false;
        var mailboxes = new List<MailboxAddress>(recipients.Count);
        var sentTo = new List<Recipient>(recipients.Count); // whom each mailbox is for
        var wires = new List<string>(recipients.Count); // each mailbox's address as RCPT TO carries it
        HashSet<string>? invalid = null;
        var ascii = true; // every address as RCPT TO carries it (the lean path writes only ASCII)
        var utf8 = client.OffersUtf8;
        foreach (var r in recipients)
        {
            // RFC 6531 §3.2: a non-ASCII local part needs SMTPUTF8 (an IDN domain goes as its
            // A-labels); without it the copy cannot be sent, as Postfix says, with 5.6.7: not the
            // address's fault, so not scored, and not retried.
            if (!utf8 && NeedsSmtpUtf8(r.Address))
            {
                (invalid ??= []).Add(r.Address);
                result.Refuse(r, 553, $"5.6.7 SMTPUTF8 is required, but was not offered by {relay.Name}", atRecipient: true, ours: true);
                continue;
            }

            try
            {
                var wire = Instance.SmtpOptions.WireAddress(r.Address);
                ascii &= System.Text.Ascii.IsValid(wire);
                mailboxes.Add(new MailboxAddress("", wire));
                sentTo.Add(r);
                wires.Add(wire);
            }
            catch (ParseException e)
            {
                (invalid ??= []).Add(r.Address);
                result.Refuse(r, 553, "invalid address: " + e.Message, atRecipient: true, ours: true);
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

        if (_pipe is not null && carrier.Body is SplicedBody body && PipelinedWriter.Suits(body.Post, from.Address)
            && ascii)
        {
            return SendPipelined(body, from.Address, sentTo, wires, result);
        }

        // MailKit's path: the pipelined transaction before it must be finished first.
        Complete();
        if (_client is not { IsConnected: true })
        {
            return false;
        }

        // MimeKit reads an A-label domain back in U-labels and takes it for international, so
        // MailKit would ask for SMTPUTF8 for every IDN member, and Postfix return a post whose
        // header block is raw UTF-8 for each whose next hop lacks it: SMTPUTF8 only where a
        // local part needs it (a transaction that needs it after this took a new connection, above).
        if (ascii && !NeedsSmtpUtf8(from.Address) && client.Capabilities.HasFlag(SmtpCapabilities.UTF8))
        {
            client.Capabilities &= ~SmtpCapabilities.UTF8;
        }

        SmtpStatusCode? transactionStatus = null;
        string? transactionResponse = null;
        var broken = false;
        var brokenStatus = 0;
        try
        {
            // Every reply within the timeout, and the data at no less than 1 MiB a timeout.
            var size = 0L;
            if (carrier.Body is SplicedBody spliced)
            {
                size = spliced.Size;
                spliced.Written = false;
            }

            Arm(3 + mailboxes.Count + (int)Math.Min(size >> 20, 100_000));
            client.Send(Carrier.SendOptions, carrier, from, mailboxes, CancellationToken.None);
            _sent++;
        }
        catch (SmtpCommandException e) when (client.IsConnected && !(e.StatusCode == SmtpStatusCode.ServiceNotAvailable && !client.SenderAccepted))
        {
            // The server refused a command; MailKit has sent RSET and the connection stays usable.
            transactionStatus = e.StatusCode;
            transactionResponse = e.Message;
            _sent++;
        }
        catch (Exception e) when (e is SmtpProtocolException or IOException or SocketException or SmtpCommandException or OperationCanceledException or ServiceNotConnectedException or ObjectDisposedException)
        {
            broken = true;
            result.TimedOut = IsTimeout(e);
            transactionResponse = _expired && !_aborted ? $"the SMTP server's replies did not end within {_deadlineSeconds} s (each read within {options.TimeoutSeconds} s)" : e.Message;

            // A 421 closes the session (MailKit disconnects): kept with its code, as the
            // pipelined path keeps it, so the relay is marked down the same way (review 31).
            brokenStatus = e is SmtpCommandException { StatusCode: SmtpStatusCode.ServiceNotAvailable } ? 421 : 0;
            result.Broken = !_aborted && brokenStatus == 0 && client.SenderAccepted && !client.Refused.Exists(r => r.Status == SmtpStatusCode.ServiceNotAvailable);
            Drop();
        }
        finally
        {
            Disarm();
        }

        // A refusal names the mailbox it was for; MimeKit spells an A-label domain back in
        // U-labels, so it is matched by the mailbox, not by the address text.
        var refused = new Dictionary<Recipient, (SmtpStatusCode Status, string Response)>();
        foreach (var (mailbox, status, response) in client.Refused)
        {
            var i = mailboxes.FindIndex(m => ReferenceEquals(m, mailbox));
            i = i >= 0 ? i : mailboxes.FindIndex(m => string.Equals(m.Address, mailbox.Address, StringComparison.OrdinalIgnoreCase));
            if (i >= 0)
            {
                refused[sentTo[i]] = (status, response);
            }
        }

        foreach (var r in recipients)
        {
            if (invalid?.Contains(r.Address) == true)
            {
                continue;
            }

            // MailKit pipelines RCPT after MAIL: a refused MAIL FROM is followed by refusals of
            // every RCPT ("503 5.5.1 need MAIL command"), which are not about the members (review
            // 115: they bounced them); the refusal of MAIL decides below.
            if (!(transactionStatus is not null && !client.SenderAccepted) && refused.TryGetValue(r, out var refusal))
            {
                Classify(result, r, (int)refusal.Status, refusal.Response, atRecipient: true);
                if (IsThrottle((int)refusal.Status, refusal.Response))
                {
                    result.Throttled = true;
                }
            }
            else if (broken)
            {
                result.Deferred.Add((r, brokenStatus, transactionResponse ?? "connection lost"));
                if (brokenStatus != 0 && IsThrottle(brokenStatus, transactionResponse ?? "") && client.SenderAccepted)
                {
                    result.Throttled = true;
                }
            }
            else if (transactionStatus is { } refusedSender && !client.SenderAccepted)
            {
                // A refused MAIL FROM is our configuration (the relay's sender rules), not the
                // members: the copies wait in retry, whatever the code, and nobody is scored.
                result.Deferred.Add((r, (int)refusedSender, transactionResponse ?? ""));
            }
            else if (transactionStatus is { } refusedData && carrier.Body is SplicedBody { Written: false })
            {
                // DATA itself refused, before a byte of the message was sent.
                ClassifyDataRefusal(result, r, (int)refusedData, transactionResponse ?? "");
                if (IsThrottle((int)refusedData, transactionResponse ?? ""))
                {
                    result.Throttled = true;
                }
            }
            else if (transactionStatus is { } status)
            {
                // The end of DATA: the message, not this address.
                Classify(result, r, (int)status, transactionResponse ?? "", atRecipient: false);
                if (IsThrottle((int)status, transactionResponse ?? "") && client.SenderAccepted)
                {
                    result.Throttled = true;
                }
            }
            else
            {
                result.Delivered.Add(r);
            }
        }

        // A 421 before MAIL FROM was accepted closes the session like a broken connection.
        return !((broken || transactionStatus == SmtpStatusCode.ServiceNotAvailable) && !client.SenderAccepted);
    }

    // Cuts the connection unless disarmed within `timeouts` timeouts.
    private void Arm(int timeouts)
    {
        var span = TimeSpan.FromSeconds(Math.Min((double)options.TimeoutSeconds * timeouts, MaxDeadline.TotalSeconds));
        lock (_deadlineGate)
        {
            _expired = false;
            _deadlineSeconds = (long)span.TotalSeconds;
            _deadlineAt = Math.Max(1, Environment.TickCount64 + (long)span.TotalMilliseconds);
            (_deadline ??= new Timer(static self => ((SmtpConnection)self!).Expire(), this, Timeout.Infinite, Timeout.Infinite)).Change(span, Timeout.InfiniteTimeSpan);
        }
    }

    private void Disarm()
    {
        lock (_deadlineGate)
        {
            _deadlineAt = 0;
            _deadline?.Change(Timeout.Infinite, Timeout.Infinite);
        }
    }

    private void Expire()
    {
        lock (_deadlineGate)
        {
            // Disarmed, or armed again since this firing was due.
            if (_deadlineAt == 0 || Environment.TickCount64 < _deadlineAt)
            {
                return;
            }

            _deadlineAt = 0;
            _expired = true;
            Cut();
        }
    }

    // The server did not answer within Smtp:TimeoutSeconds, or did not finish within a deadline
    // (not our own abort, not a reset).
    private bool IsTimeout(Exception e)
        => !_aborted && (_expired || e is TimeoutException || e is SocketException { SocketErrorCode: SocketError.TimedOut }
            || e.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut } || e.InnerException is TimeoutException
            || (e is OperationCanceledException && e.InnerException is TimeoutException));

    // RFC 3463 4.7.x (security or policy: what providers send when they rate-limit, 421 4.7.0
    // "try again later" and 450 4.7.1 alike): the destination asks us to slow down.
    internal static bool IsThrottle(int status, string response)
        => status is >= 400 and < 500 && IsPolicy(response);

    /// <summary>
    /// Any other 421 (4.3.x "shutting down", 4.4.x "too many connections", 4.0.0, none): the relay
    /// is closing the session, whatever the recipient, and is marked down. Review 28: one sick
    /// relay's "421 4.0.0" at RCPT was taken for every domain's throttle and slowed the whole pool.
    /// </summary>
    internal static bool IsRelayClosing(int status, string? response)
        => status == 421 && !IsPolicy(response ?? "");

    private static bool IsPolicy(string response) => response.TrimStart().StartsWith("4.7.", StringComparison.Ordinal);

    // The lean path (PipelinedWriter): false when the connection broke before MAIL FROM was answered.
    // valid: the recipients the client could write (in the order of wires, their RCPT TO addresses).
    private bool SendPipelined(SplicedBody body, string sender, List<Recipient> valid, List<string> wires, TransactionResult result)
    {
        result.Pending = true;
        try
        {
            _pipe!.Send(body.Post, body.Values, sender, valid, wires, result);
            if (_pipe.ServerClosing)
            {
                // 421 to MAIL FROM: nothing of the copy was sent (as a broken connection before it).
                result.Pending = false;
                Drop();
                return false;
            }

            result.Pending = _pipe.Pending?.Result == result;
            _sent++;
            return true;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The transaction read before this one, if its reply was still due, is deferred
            // (its data may have arrived); this one is deferred when its MAIL FROM was answered,
            // and sent again on a new connection when it was not.
            result.TimedOut = IsTimeout(e);
            if (_pipe!.Pending is { } previous)
            {
                previous.Result.TimedOut = result.TimedOut;
                previous.Result.Broken = BrokenOff(previous.Result);
                _lostReply = previous.Result.Broken;
            }

            var senderAccepted = _pipe!.SenderAccepted;
            result.Broken = senderAccepted && BrokenOff(result);
            _pipe.Abandon(e.Message);
            result.Pending = false;
            Drop();
            if (!senderAccepted && result.Bounced.Count + result.Deferred.Count == 0)
            {
                result.Deferred.AddRange(valid.Select(r => (r, 0, e.Message)));
                return false;
            }

            result.DeferUnsettled(valid, e.Message);
            return true;
        }
    }

    // A transaction whose connection broke before its last reply was broken off by the server,
    // unless we cut it (a stopping daemon) or the server said it closes (421).
    private bool BrokenOff(TransactionResult result) => !_aborted && !result.HasClosingReply;

    /// <summary>Reads the outcome of a pipelined transaction still waiting for it (end of a chunk, before MailKit's path, before closing).</summary>
    public void Complete()
    {
        if (_pipe?.Pending is null)
        {
            return;
        }

        try
        {
            _pipe.Complete();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            if (_pipe.Pending is { } pending)
            {
                pending.Result.TimedOut = IsTimeout(e);
                pending.Result.Broken = BrokenOff(pending.Result);
            }

            _pipe.Abandon(e.Message);
            Drop();
        }
    }

    public void Dispose()
    {
        Complete();
        if (_client is { IsConnected: true } client)
        {
            try
            {
                Arm(1);
                client.Disconnect(quit: true);
            }
            catch (Exception e) when (e is IOException or SocketException or SmtpProtocolException or SmtpCommandException or ObjectDisposedException)
            {
            }
        }

        Drop();
        lock (_deadlineGate)
        {
            _deadlineAt = 0;
            _deadline?.Dispose();
            _deadline = null;
        }
    }

    // RFC 5321 §4.2.1: 4yz is transient; 552 (storage exceeded) may be treated as transient too
    // (§4.5.3.1.10), but not 552 5.3.4 after DATA: the message is too big for the relay (Postfix's
    // "message size exceeds fixed limit"), and would be sent to every member again at every retry.
    internal static void Classify(TransactionResult result, Recipient r, int status, string response, bool atRecipient)
    {
        if (status is >= 400 and < 500 || (status == 552 && (atRecipient || !response.AsSpan().TrimStart().StartsWith("5.3.4", StringComparison.Ordinal))))
        {
            if (atRecipient && !IsAboutTheRecipient(status, response))
            {
                result.Deferred.Add((r, status, response));
            }
            else
            {
                result.DeferAnswered(r, status, response);
            }
        }
        else
        {
            result.Refuse(r, status, response, atRecipient);
        }
    }

    /// <summary>
    /// A temporary refusal at RCPT about the mailbox itself: RFC 3463 4.1.x (the address; not
    /// 4.1.7 or 4.1.8, the sender's: ours), 4.2.x (mailbox full or busy, postgrey's 4.2.0
    /// greylisting), or a 450 without a code. An answer for the refused-alike rule (review 118: a
    /// full mailbox beside its domain's dead members had them never scored), where a 421, 4.3.x,
    /// 4.4.x or 4.5.x (the relay's system, routing or protocol: Postfix's "451 4.3.0 Temporary
    /// lookup failure", its "452 4.5.3 too many recipients"), 4.7.x (its policy towards us: a
    /// rate limit, as <see cref="IsThrottle"/> reads it; review 119: Postfix's "450 4.7.1 Error:
    /// too many recipients from [ip]" had the members refused before it scored), or a 451 or 452
    /// without a code, is not.
    /// </summary>
    internal static bool IsAboutTheRecipient(int status, string response)
        => status != 421 && (Bounces.SmtpRefusals.EnhancedCode(response) is { Class: '4' } code
            ? code.Subject == '2' || (code.Subject == '1' && code.Detail is not ('7' or '8'))
            : status == 450);

    /// <summary>
    /// A refused DATA command: nothing of the message was sent and every recipient was taken at
    /// RCPT, so it is neither the message nor an address but the relay's state or policy at the
    /// DATA stage (a rate limit in smtpd_data_restrictions, a protocol error): the recipients wait
    /// in retry, 4xx or 5xx, as after a refused MAIL FROM (review 53: a 503 bounced them for good).
    /// </summary>
    internal static void ClassifyDataRefusal(TransactionResult result, Recipient r, int status, string response)
        => result.DeferAnswered(r, status, response);

    private ListSmtpClient EnsureConnected()
    {
        if (_client is { IsConnected: true } && (options.MaxSessionsPerConnection == 0 || _sent < options.MaxSessionsPerConnection) && !ClosedByServer())
        {
            return _client;
        }

        Dispose();
        _pipe = null;
        AttemptsChanged?.Invoke(1);
        try
        {
            return Connect();
        }
        finally
        {
            AttemptsChanged?.Invoke(-1);
        }
    }

    private static Exception Innermost(Exception e) => e.InnerException is { } inner ? Innermost(inner) : e;

    private static bool TimedOut(Exception e) => e switch
    {
        TimeoutException or OperationCanceledException => true,
        SocketException { SocketErrorCode: SocketError.TimedOut } => true,
        _ => e.InnerException is { } inner && TimedOut(inner),
    };

    private ListSmtpClient Connect(bool plain = false)
    {
        var client = new ListSmtpClient(options.PreferBdat)
        {
            Timeout = options.TimeoutSeconds * 1000,
            CheckCertificateRevocation = false,
        };
        if (!string.IsNullOrEmpty(options.HeloName))
        {
            client.LocalDomain = options.HeloName;
        }

        // The relay's trust decides; MailKit passes the host as the sender here. MailKit's TLS
        // stream, the one the copies' bodies must be written to (never the socket under it),
        // reaches ListSmtpClient.Tls through the SslStream's own callback.
        _tls = null;
        _tlsRefusal = null;
        client.ServerCertificateValidationCallback = (_, certificate, chain, errors) => relay.Trust.Accept(certificate, chain, errors, out _tlsRefusal);

        Socket? socket = null;
        ReplyBoundStream? stream = null;
        var connected = false;
        var greeted = false;
        try
        {
            // MailKit's Connect(host, port) leaves Nagle on: the last segment of every message
            // then waits for a delayed ACK (~40 ms). Our own socket has TCP_NODELAY.
            socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            Volatile.Write(ref _connecting, socket);
            if (_aborted)
            {
                throw new OperationCanceledException("the daemon is stopping");
            }

            ConnectWithTimeout(socket, Endpoint(), TimeSpan.FromSeconds(options.TimeoutSeconds));
            connected = true;
            Arm(SetupTimeouts);

            // The handshake is synchronous over the blocking socket (AuthenticateAsClient): no
            // async call ever turns the socket non-blocking. MailKit reads through a stream that
            // bounds what the server may send between two commands (ReplyBoundStream).
            stream = new ReplyBoundStream(new NetworkStream(socket, ownsSocket: true));
            client.Connect(stream, relay.Host, relay.Port, plain ? SecureSocketOptions.None : relay.SocketOptions, CancellationToken.None);
            greeted = true;
            if (relay.Password is { } password)
            {
                if (!client.IsSecure)
                {
                    throw new SmtpConnectException($"SMTP server {relay.Name} offers no STARTTLS: the password is not sent over a plain connection", null);
                }

                client.Authenticate(relay.User, password, CancellationToken.None);
            }

            client.OffersUtf8 = client.Capabilities.HasFlag(SmtpCapabilities.UTF8);

            _tls = client.Tls;
            client.Wire = client.IsSecure
                ? _tls is { IsAuthenticated: true } tls ? new BufferedStream(tls, WireBuffer) : null
                : new BufferedStream(new NetworkStream(socket, ownsSocket: false) { WriteTimeout = options.TimeoutSeconds * 1000 }, WireBuffer);

            // RFC 2920: one round trip per copy where the server pipelines (BDAT stays MailKit's).
            if (options.Pipelining && client.Wire is not null && !(options.PreferBdat && client.Capabilities.HasFlag(SmtpCapabilities.Chunking))
                && client.Capabilities.HasFlag(SmtpCapabilities.Pipelining))
            {
                Stream input = client.IsSecure ? _tls! : new NetworkStream(socket, ownsSocket: false) { ReadTimeout = options.TimeoutSeconds * 1000 };
                _pipe = new PipelinedWriter(client.Wire, input, client.Capabilities.HasFlag(SmtpCapabilities.Size), client.Capabilities.HasFlag(SmtpCapabilities.EightBitMime),
                    TimeSpan.FromSeconds(options.TimeoutSeconds));
            }

            Disarm();
        }
        catch (Exception e) when (e is SocketException or IOException or TimeoutException or OperationCanceledException or SmtpProtocolException or SmtpCommandException
            or AuthenticationException or SslHandshakeException or NotSupportedException or System.Security.Authentication.AuthenticationException or SmtpConnectException
            or ObjectDisposedException)
        {
            Disarm();
            var expired = _expired && !_aborted;
            Volatile.Write(ref _connecting, null);
            socket?.Dispose();
            client.Dispose();
            var why = e switch
            {
                SmtpConnectException => e.Message,
                SslHandshakeException or System.Security.Authentication.AuthenticationException when _tlsRefusal is not null => "TLS refused: " + _tlsRefusal,

                // MailKit's own text is about untrusted certificates, whatever went wrong; with no
                // refusal of ours the handshake itself failed (a plain server on a TLS port, say).
                SslHandshakeException or System.Security.Authentication.AuthenticationException => $"TLS handshake failed ({Innermost(e).Message.TrimEnd('.')})"
                    + (relay.Security == RelaySecurity.Tls ? "; Security tls is implicit TLS (port 465): a server that greets in plain text and offers STARTTLS needs starttls" : ""),
                AuthenticationException => $"AUTH as {relay.User} refused: {e.Message}",
                NotSupportedException when relay.Security == RelaySecurity.StartTls && !client.Capabilities.HasFlag(SmtpCapabilities.StartTLS) => "it offers no STARTTLS, and Security is starttls",
                NotSupportedException when relay.Password is not null => "it offers no AUTH: " + e.Message,
                SmtpCommandException c => $"{(int)c.StatusCode} {c.Message}",
                _ => e.Message,
            };
            // Postfix's "may": a relay that refuses STARTTLS (not with 421: that ends the session),
            // whose handshake fails or whose EHLO in TLS fails gets the session in plain text, on
            // a new connection. Not with a password (never sent in plain), nor when a certificate
            // we were asked to check failed (CaFile, Fingerprint): that is a refusal of ours.
            if (!plain && !expired && !_aborted && relay.Security == RelaySecurity.Opportunistic && relay.Password is null
                && stream is { SentStartTls: true } && _tlsRefusal is null && e is not SmtpCommandException { StatusCode: SmtpStatusCode.ServiceNotAvailable })
            {
                PlainFallback?.Invoke(why);
                return Connect(plain: true);
            }

            var silent = connected && !greeted && (expired || TimedOut(e));
            throw new SmtpConnectException(
                e is SmtpConnectException ? why
                : expired ? $"SMTP server {relay.Name} took the connection but did not finish its greeting, EHLO, STARTTLS and AUTH within {_deadlineSeconds} s"
                : silent ? $"SMTP server {relay.Name} took the connection but sent no greeting or EHLO reply within {options.TimeoutSeconds} s"
                : connected ? $"SMTP server {relay.Name} took the connection, then its session failed before the first message: {why}" // review 68: a flood at the greeting was "cannot connect"
                : $"cannot connect to SMTP server {relay.Name}: {why}", e)
            {
                // The server is there and took the connection, but not one more session (a limit
                // on connections from us, or a load shed): 421 to the greeting, EHLO or STARTTLS.
                Busy = !greeted && e is SmtpCommandException { StatusCode: SmtpStatusCode.ServiceNotAvailable },
            };
        }

        _client = client;
        _socket = socket;
        Volatile.Write(ref _connecting, null);
        if (_aborted)
        {
            Abort(); // it came between: the session is cut before its first transaction
        }

        _sent = 0;
        SessionsChanged?.Invoke(1);
        return client;
    }

    // Between transactions the server has nothing to say: a readable socket means it closed the
    // connection (EOF) or sent an unsolicited 421. Either way, open a new one now rather than
    // fail the next copy on a dead connection (one poll(2), no read).
    private bool ClosedByServer()
    {
        try
        {
            // Under TLS a readable socket may only hold a record the server sends by itself (a
            // TLS 1.3 session ticket): only an end of file says it closed. An unsolicited 421 in
            // TLS then fails the next copy before MAIL FROM, which is sent again on a new connection.
            return _socket is null || (_socket.Poll(0, SelectMode.SelectRead) && (_client is not { IsSecure: true } || _socket.Available == 0));
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
        => IPAddress.TryParse(relay.Host, out var ip) ? new IPEndPoint(ip, relay.Port) : new DnsEndPoint(relay.Host, relay.Port);

    private void Drop()
    {
        _pipe = null;
        // The wire owns nothing (the client closes the socket); disposing it would flush what a
        // failed write left in its buffer into a dead socket.
        if (_client is { } client)
        {
            client.Dispose();
            SessionsChanged?.Invoke(-1);
        }

        _client = null;
        _socket = null;
        _tls = null;
    }
}

/// <summary>The relay could not be reached, secured or authenticated to, or refused service before MAIL FROM.</summary>
public sealed class SmtpConnectException(string message, Exception? inner) : Exception(message, inner)
{
    /// <summary>The server answered the new connection with 421 before any transaction: it is up, but takes no more sessions from us now.</summary>
    public bool Busy { get; init; }

    /// <summary>
    /// The server took the session (greeting and EHLO answered) and answered our MAIL FROM with
    /// 421: one stray refusal is waited for like a 421 in a session, not taken for a relay that
    /// is gone (review 53: on the first transaction of a delivery it sent the rest to retry).
    /// </summary>
    public bool Answered { get; init; }
}

/// <summary>What became of each recipient of one or more transactions.</summary>
public sealed class TransactionResult
{
    public List<Recipient> Delivered { get; } = [];

    public List<(Recipient Recipient, int Status, string Response)> Deferred { get; } = [];

    public List<Refusal> Bounced { get; } = [];

    /// <summary>The destination answered 421 or 4.7.x: it asks us to slow down.</summary>
    public bool Throttled { get; set; }

    /// <summary>
    /// The transaction's index in its chunk and its recipients (where a refusal stood, for bounce
    /// scoring): set before it is sent, every refusal is stamped with it (<see cref="Refuse"/>).
    /// A follow-up after 452 4.5.3 shares its number; the part sent apart for SMTPUTF8 has its own
    /// (<see cref="Bounces.SmtpRefusals.PartApart"/>).
    /// </summary>
    public (int Index, int Size) Transaction { get; set; } = (0, 1);

    /// <summary>Records that <paramref name="r"/> was refused, in this <see cref="Transaction"/>; <paramref name="ours"/>: on our side, never sent.</summary>
    public void Refuse(Recipient r, int status, string response, bool atRecipient, bool ours = false)
        => Bounced.Add(new(r, status, response, atRecipient, Transaction.Index, Transaction.Size, ours));

    /// <summary>
    /// Deferred recipients the server answered for good: it had accepted them at RCPT (the DATA
    /// refused, a temporary refusal at the end of data, a break after the data was sent), or
    /// refused them for a while for a reason of their own (<see cref="SmtpConnection.IsAboutTheRecipient"/>:
    /// a full mailbox, greylisting); every other deferred recipient (a 421, the relay's system or
    /// protocol at RCPT, a break before its reply) was not.
    /// </summary>
    public int DeferredAnswered { get; private set; }

    internal void DeferAnswered(Recipient r, int status, string response)
    {
        Deferred.Add((r, status, response));
        DeferredAnswered++;
    }

    /// <summary>
    /// Recipients the server never answered for good (deferred, not <see cref="DeferredAnswered"/>),
    /// this transaction's and its part apart's: the refused-alike rule leaves them out (review
    /// 117: one "451 4.3.0 Temporary lookup failure" among nine refused alike, or a 421 "too many
    /// errors" after twenty, had the refused members scored).
    /// </summary>
    public int Unanswered => (_settled ? _unanswered : Deferred.Count - DeferredAnswered) + _apartUnanswered;

    private bool _settled;
    private int _unanswered;
    private int _apartUnanswered;

    /// <summary>
    /// The transaction is over (its follow-ups after 452 4.5.3 too, nothing of its part apart in
    /// it yet): each refusal's <see cref="Refusal.TransactionSize"/> becomes the recipients the
    /// server answered for good, for the refused-alike rule. Once; later calls do nothing.
    /// </summary>
    public void Settle()
    {
        if (_settled)
        {
            return;
        }

        _unanswered = Deferred.Count - DeferredAnswered;
        var size = Transaction.Size - _unanswered;
        for (var i = 0; i < Bounced.Count; i++)
        {
            Bounced[i] = Bounced[i] with { TransactionSize = size };
        }

        _settled = true;
    }

    /// <summary>The part apart's recipients, not sent (settles this transaction first: they are not of it).</summary>
    internal void DeferApart(List<Recipient> rest, string reason)
    {
        Settle();
        Deferred.AddRange(rest.Select(r => (r, 0, reason)));
        _apartUnanswered += rest.Count;
    }

    /// <summary>Pipelined: the data is sent, its reply is read with the next transaction or at <see cref="SmtpConnection.Complete"/>.</summary>
    public bool Pending { get; set; }

    /// <summary>The server did not answer within the timeout: the relay stalls.</summary>
    public bool TimedOut { get; set; }

    /// <summary>
    /// The connection broke (not by our stop) after the server accepted MAIL FROM and before its
    /// last reply: the data may have arrived. A relay that does this to every transaction (it
    /// closes after the data without answering) would get the whole list again at every retry.
    /// </summary>
    public bool Broken { get; set; }

    /// <summary>The server answered 421 in this transaction: it said it closes the connection (no break).</summary>
    internal bool HasClosingReply => Deferred.Exists(d => d.Status == 421);

    /// <summary>Transactions after this one's first, counted in the summary: for the recipients a server took no more of (452 4.5.3), and the one apart for those who need SMTPUTF8.</summary>
    public int FollowUps { get; private set; }

    /// <summary>Adds what became of <paramref name="next"/>'s recipients (a follow-up transaction of the same copy) to this one's; <paramref name="sent"/>: it went to the server (it counts).</summary>
    public void Add(TransactionResult next, bool sent = true)
    {
        if (next.Transaction.Index == Transaction.Index)
        {
            DeferredAnswered += next.DeferredAnswered; // a follow-up of the same transaction
        }
        else
        {
            // The part apart: each part is settled on its own, before they are put together.
            Settle();
            next.Settle();
            _apartUnanswered += next.Unanswered;
        }

        FollowUps += (sent ? 1 : 0) + next.FollowUps;
        Delivered.AddRange(next.Delivered);
        Deferred.AddRange(next.Deferred);
        Bounced.AddRange(next.Bounced);
        Throttled |= next.Throttled;
        TimedOut |= next.TimedOut;
        Broken |= next.Broken;
    }

    /// <summary>When the transaction began, on the relay pool's clock: a reply to a transaction begun before the relay was marked down does not say it is up again.</summary>
    public long Started { get; set; }

    /// <summary>Defers, with no status, every one of <paramref name="recipients"/> that has no outcome here yet.</summary>
    public void DeferUnsettled(IReadOnlyList<Recipient> recipients, string reason)
    {
        if (Delivered.Count + Deferred.Count + Bounced.Count >= recipients.Count)
        {
            return;
        }

        var settled = Delivered.Concat(Deferred.Select(d => d.Recipient)).Concat(Bounced.Select(b => b.Recipient)).ToHashSet();
        foreach (var r in recipients)
        {
            if (!settled.Contains(r))
            {
                Deferred.Add((r, 0, reason));
            }
        }
    }

    public void Clear()
    {
        Delivered.Clear();
        Deferred.Clear();
        Bounced.Clear();
        Throttled = false;
        Pending = false;
        TimedOut = false;
        Broken = false;
        DeferredAnswered = 0;
        _settled = false;
        _unanswered = 0;
        _apartUnanswered = 0;
    }
}
