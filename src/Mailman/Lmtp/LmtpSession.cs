// One LMTP session (RFC 2033): LHLO, then transactions of MAIL, RCPT and DATA. RCPT refuses any
// address that is not one of a list's (550 5.1.1, so Postfix bounces at once and nothing is
// accepted that could only become backscatter); after DATA each accepted recipient gets its own
// reply, 250 only once its entry is on disk as inject writes it (Queues/Intake: fsync, rename,
// directory fsync), 452/451 when the queue cannot be written now. The state table
// (LmtpStateTable) says which command is legal when; this class says what each one does.
using System.Globalization;
using Mailman.Queues;
using Microsoft.Extensions.Logging;

namespace Mailman.Lmtp;

internal sealed class LmtpSession(LmtpConnection connection, Intake intake, LmtpLimits limits, string spoolDirectory, ILogger logger)
{
    private readonly List<IntakeRoute> _recipients = [];
    private LmtpState _state = LmtpState.Connected;
    private string? _sender;

    /// <summary>Set by the server on shutdown: the session ends after the transaction in progress.</summary>
    public volatile bool Stopping;

    /// <summary>Commands out of protocol (unknown, out of sequence, unreadable) a session may send between messages taken before it is closed.</summary>
    public const int MaxProtocolErrors = 20;

    private int _protocolErrors;

    /// <summary>Posts accepted so far (one per recipient entry written).</summary>
    public long Accepted { get; private set; }

    public void Run()
    {
        connection.Reply($"220 {limits.HostName} LMTP Mailman ready");
        while (!Stopping)
        {
            var line = connection.ReadLine();
            if (line is null)
            {
                return;
            }

            var space = line.IndexOf(' ', StringComparison.Ordinal);
            var verb = space < 0 ? line : line[..space];
            var argument = space < 0 ? "" : line[(space + 1)..];
            if ((line.Length == 0 ? "500 5.5.2 Error: bad syntax or line too long" : LmtpStateTable.Refusal(verb, _state)) is { } refusal)
            {
                connection.Reply(refusal);
                // Postfix's smtpd_hard_error_limit: a client that sends junk is let go (review
                // 95: 200 KB of random bytes drew a 500 a line for as long as it sent).
                if (++_protocolErrors >= MaxProtocolErrors)
                {
                    logger.LogWarning("LMTP: a client sent {Count} commands out of protocol; closing its session", _protocolErrors);
                    connection.Reply("421 4.7.0 Error: too many errors; closing");
                    connection.Flush();
                    return;
                }

                continue;
            }

            switch (verb.ToUpperInvariant())
            {
                case "LHLO": Lhlo(argument); break;
                case "MAIL": Mail(argument); break;
                case "RCPT": Rcpt(argument); break;
                case "DATA": Data(); break;
                case "RSET":
                    Reset();
                    connection.Reply("250 2.0.0 Ok");
                    break;
                case "NOOP": connection.Reply("250 2.0.0 Ok"); break;
                case "VRFY": connection.Reply("252 2.5.0 Cannot VRFY; send the mail and RCPT will tell"); break;
                case "HELP": connection.Reply("214 2.0.0 LHLO MAIL RCPT DATA RSET NOOP QUIT (RFC 2033)"); break;
                case "QUIT":
                    connection.Reply("221 2.0.0 Bye");
                    connection.Flush();
                    return;
            }
        }

        connection.Reply("421 4.3.2 Service shutting down, try again later");
        connection.Flush();
    }

    private void Lhlo(string argument)
    {
        if (argument.Trim().Length == 0)
        {
            connection.Reply("501 5.5.4 Syntax: LHLO hostname");
            return;
        }

        Reset();
        _state = LmtpState.Ready;
        connection.Reply($"250-{limits.HostName}");
        connection.Reply("250-PIPELINING");
        connection.Reply("250-ENHANCEDSTATUSCODES");
        connection.Reply("250-8BITMIME");
        connection.Reply("250-SMTPUTF8");
        connection.Reply(string.Create(CultureInfo.InvariantCulture, $"250 SIZE {limits.MaxMessageBytes}"));
    }

    private void Mail(string argument)
    {
        if (!TryPath(argument, "FROM:", out var sender, out var parameters))
        {
            connection.Reply("501 5.5.4 Syntax: MAIL FROM:<address>");
            return;
        }

        foreach (var parameter in parameters)
        {
            var eq = parameter.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? parameter : parameter[..eq];
            var value = eq < 0 ? "" : parameter[(eq + 1)..];
            if (name.Equals("SIZE", StringComparison.OrdinalIgnoreCase))
            {
                // RFC 1870 §6: a declared size over the limit is refused before any data.
                // Digits past a long's range are a size over any limit (review 95).
                var tooBig = value.TrimStart('0').Length > 18 && value.All(char.IsAsciiDigit);
                var size = 0L;
                if (!tooBig && !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out size))
                {
                    connection.Reply("501 5.5.4 Bad SIZE parameter");
                    return;
                }

                if (tooBig || size > limits.MaxMessageBytes)
                {
                    connection.Reply("552 5.3.4 Message size exceeds fixed limit");
                    return;
                }
            }
            else if (name.Equals("SMTPUTF8", StringComparison.OrdinalIgnoreCase) && eq < 0)
            {
                // RFC 6531: UTF-8 addresses and headers, as the pipe takes them (review 36: Postfix
                // bounced mail that needs it, the bounces of UTF-8 members' copies among them).
            }
            else if (!name.Equals("BODY", StringComparison.OrdinalIgnoreCase) || !(value.Equals("7BIT", StringComparison.OrdinalIgnoreCase) || value.Equals("8BITMIME", StringComparison.OrdinalIgnoreCase)))
            {
                connection.Reply($"555 5.5.4 Unsupported MAIL parameter {Printable(name)}");
                return;
            }
        }

        // The sender goes into the entry and, for bounces and notices, back onto the wire.
        if (sender.Length > Intake.MaxEnvelopeSender || sender.Any(char.IsControl))
        {
            connection.Reply("501 5.1.7 Bad sender address syntax");
            return;
        }

        _sender = sender;
        _state = LmtpState.Mail;
        connection.Reply("250 2.1.0 Ok");
    }

    private void Rcpt(string argument)
    {
        if (!TryPath(argument, "TO:", out var address, out var parameters) || address.Length == 0)
        {
            connection.Reply("501 5.5.4 Syntax: RCPT TO:<address>");
            return;
        }

        if (parameters.Count > 0)
        {
            connection.Reply($"555 5.5.4 Unsupported RCPT parameter {Printable(parameters[0])}");
            return;
        }

        if (_recipients.Count >= limits.MaxRecipients)
        {
            connection.Reply("452 4.5.3 Error: too many recipients");
            return;
        }

        try
        {
            var route = Intake.Route(address);
            intake.CheckList(route);
            _recipients.Add(route);
            _state = LmtpState.Recipients;
            connection.Reply("250 2.1.5 Ok");
        }
        catch (IntakeException e) when (e.Failure is IntakeFailure.NoSuchList or IntakeFailure.Usage)
        {
            logger.LogInformation("LMTP: refused recipient {Recipient} from {Sender}: {Error}", Delivery.Verp.Redact(Printable(address)), _sender, e.Message);
            connection.Reply($"550 5.1.1 <{Printable(address)}>: Recipient address rejected: no such list");
        }
        catch (IntakeException e)
        {
            logger.LogWarning("LMTP: recipient {Recipient} deferred: {Error}", Delivery.Verp.Redact(Printable(address)), e.Message);
            connection.Reply("451 4.3.0 Error: the list database cannot be read now, try again later");
        }
    }

    private void Data()
    {
        connection.Reply("354 End data with <CR><LF>.<CR><LF>");
        using var spool = new MessageSpool(spoolDirectory);
        var fits = connection.ReadData(spool, limits.MaxMessageBytes);
        var recipients = _recipients.ToList();
        var sender = _sender;
        Reset();
        _state = LmtpState.Ready;
        if (!fits)
        {
            logger.LogInformation("LMTP: message from {Sender} refused: more than {Limit} bytes", sender, limits.MaxMessageBytes);
            Each(recipients, "552 5.3.4 Message size exceeds fixed limit");
            return;
        }

        if (spool.Failure is { } failure)
        {
            // Nothing was accepted: the MTA keeps the post and tries again (review 78).
            var full = failure.HResult is 28 or 122; // ENOSPC, EDQUOT
            logger.LogWarning("LMTP: message from {Sender} deferred: the spool in {Directory} cannot be written ({Error}){Full}",
                sender, spoolDirectory, failure.Message, full ? "; var/ is full" : "");
            Each(recipients, full ? "452 4.3.1 Insufficient system storage, try again later" : "451 4.3.0 Error: the message cannot be held now, try again later");
            return;
        }

        MessageHead head;
        try
        {
            head = Intake.Inspect(spool.Head(Intake.HeadBytes));
            spool.CheckShape();
        }
        catch (IntakeException e)
        {
            logger.LogInformation("LMTP: message from {Sender} refused: {Error}", sender, e.Message);
            Each(recipients, (e.Failure == IntakeFailure.HeaderTooLarge ? "552 5.3.4 Error: " : "554 5.6.0 Error: ") + e.Message);
            return;
        }

        // One entry per recipient, each durable before its own reply (RFC 2033 §4.2: one reply
        // per accepted RCPT, in order). A From_ line is not expected here, but skipped like inject.
        // The same address twice in one transaction is one entry (a client must not multiply a
        // post by repeating RCPT): the repeat gets the first one's reply.
        var answered = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var route in recipients)
        {
            if (answered.TryGetValue(route.Address, out var same))
            {
                connection.Reply(same);
                connection.Flush();
                continue;
            }

            try
            {
                var (entry, metadata) = intake.Enqueue(route, sender, head.MessageId, s => spool.CopyTo(s, head.Skip));
                Accepted++;
                _protocolErrors = 0; // counted between messages taken: a cached connection carries many (review 96)
                if (route.Queue == QueueSet.In)
                {
                    logger.LogDebug("LMTP: queued {QueueEntry} in {Queue} for {ListId} ({Size} bytes)", entry, route.Queue, route.List.Fqdn, metadata.MessageLength);
                }
                else
                {
                    logger.LogInformation("Queued for {ListId} in {Queue}: to {Destination}, Message-Id {MessageId}, envelope sender {Sender}, {Size} bytes, entry {QueueEntry} (LMTP)",
                        route.List.Fqdn, route.Queue, Delivery.Verp.Redact(route.Address), metadata.MessageIdForLog, metadata.SenderForLog, metadata.MessageLength, entry);
                }

                answered[route.Address] = $"250 2.0.0 <{route.Address}> queued as {entry}";
                connection.Reply(answered[route.Address]);
            }
            catch (IntakeException e)
            {
                logger.LogWarning("LMTP: message for {Recipient} deferred: {Error}", Delivery.Verp.Redact(route.Address), e.Message);
                answered[route.Address] = e.OutOfSpace
                    ? $"452 4.3.1 <{route.Address}> Insufficient system storage, try again later"
                    : $"451 4.3.0 <{route.Address}> Error: the queue cannot be written now, try again later";
                connection.Reply(answered[route.Address]);
            }

            // Each reply goes out as soon as its entry is on disk.
            connection.Flush();
        }
    }

    private void Each(List<IntakeRoute> recipients, string reply)
    {
        foreach (var _ in recipients)
        {
            connection.Reply(reply);
        }
    }

    private void Reset()
    {
        _recipients.Clear();
        _sender = null;
        if (_state != LmtpState.Connected)
        {
            _state = LmtpState.Ready;
        }
    }

    /// <summary>
    /// Parses "FROM:&lt;path&gt; PARAM=VALUE ..." (RFC 5321 §4.1.2): the path in angle brackets
    /// (a quoted local part may hold spaces and '&gt;'), "&lt;&gt;" for the null sender.
    /// </summary>
    internal static bool TryPath(string argument, string keyword, out string path, out List<string> parameters)
    {
        path = "";
        parameters = [];
        if (!argument.StartsWith(keyword, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var rest = argument[keyword.Length..].TrimStart();
        if (rest.Length == 0 || rest[0] != '<')
        {
            return false;
        }

        var quoted = false;
        var end = -1;
        for (var i = 1; i < rest.Length; i++)
        {
            var c = rest[i];
            if (c == '\\' && quoted)
            {
                i++;
            }
            else if (c == '"')
            {
                quoted = !quoted;
            }
            else if (c == '>' && !quoted)
            {
                end = i;
                break;
            }
        }

        if (end < 0)
        {
            return false;
        }

        path = rest[1..end];
        // A source route (@a,@b:user@host) is obsolete; its mailbox is what counts (RFC 5321 §4.1.2).
        if (path.StartsWith('@') && path.IndexOf(':', StringComparison.Ordinal) is var colon and > 0)
        {
            path = path[(colon + 1)..];
        }

        parameters = rest[(end + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        return true;
    }

    private static string Printable(string text)
    {
        var clean = new string(text.Select(c => char.IsControl(c) ? '?' : c).ToArray());
        return clean.Length > 200 ? clean[..200] + "..." : clean;
    }
}

/// <summary>What every session of one listener announces and enforces.</summary>
internal sealed record LmtpLimits(string HostName, long MaxMessageBytes, int MaxRecipients);
