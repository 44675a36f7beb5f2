// The SmtpServer package in-process on an ephemeral loopback port, for faults smtp-sink cannot
// script per recipient: refuse some RCPTs with 4xx or 5xx, or answer the end of DATA with an
// error; and, with a certificate and a user table, a server that offers STARTTLS and requires AUTH.
using System.Buffers;
using System.Security.Cryptography.X509Certificates;
using System.Collections.Concurrent;
using System.Net;
using SmtpServer;
using SmtpServer.Mail;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace Mailman.TestSupport;

/// <summary>A received transaction; <paramref name="User"/> is who authenticated, and Secure whether the session was under TLS.</summary>
public sealed record ReceivedMessage(string MailFrom, IReadOnlyList<string> Recipients, byte[] Content, string? User = null, bool Secure = false)
{
    /// <summary>The MAIL FROM parameters (SIZE, BODY, SMTPUTF8), by name in upper case.</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();

    /// <summary>When the server accepted it.</summary>
    public DateTime At { get; init; } = DateTime.UtcNow;
}

public sealed class ScriptedSmtpServer : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;

    private ScriptedSmtpServer(int port, Func<string, SmtpResponse?> rcpt, Func<IReadOnlyList<string>, SmtpResponse?> data, X509Certificate2? certificate, IReadOnlyDictionary<string, string>? users, Func<string, SmtpResponse?> mail, Func<bool>? smtpUtf8)
    {
        Port = port;
        var options = new SmtpServerOptionsBuilder()
            .ServerName("localhost")
            // SmtpServer hangs up without a word after five refused commands in a row (by
            // default); a real server answers on (Postfix: 554 5.5.1 to a DATA without a valid
            // recipient, 421 after 20 errors), and a transaction may have every RCPT refused.
            .MaxRetryCount(1000)
            .Endpoint(b =>
            {
                b.Endpoint(new IPEndPoint(IPAddress.Loopback, port));
                if (certificate is not null)
                {
                    b.Certificate(certificate).AllowUnsecureAuthentication(false);
                }

                if (users is not null)
                {
                    b.AuthenticationRequired(true);
                }
            })
            .Build();
        var services = new SmtpServer.ComponentModel.ServiceProvider();
        services.Add(new Filter(rcpt, mail));
        services.Add(new Store(this, data));
        if (smtpUtf8 is not null)
        {
            services.Add(new Commands(smtpUtf8));
        }
        if (users is not null)
        {
            services.Add(new SmtpServer.Authentication.DelegatingUserAuthenticator((user, password) =>
            {
                var ok = users.TryGetValue(user, out var expected) && expected == password;
                AuthAttempts.Enqueue((user, ok));
                return ok;
            }));
        }
        var server = new SmtpServer.SmtpServer(options, services);
        _running = server.StartAsync(_stop.Token);
    }

    public int Port { get; }

    public ConcurrentQueue<ReceivedMessage> Received { get; } = new();

    /// <summary>Every AUTH attempt: the user name and whether it was accepted.</summary>
    public ConcurrentQueue<(string User, bool Accepted)> AuthAttempts { get; } = new();

    /// <summary>
    /// <paramref name="rcpt"/> answers each RCPT TO (null: accept); <paramref name="data"/> answers
    /// the end of DATA for the accepted recipients (null: 250); <paramref name="mail"/> each MAIL
    /// FROM (null: accept). A 421 to MAIL or RCPT also hangs up.
    /// </summary>
    /// <param name="certificate">Offer STARTTLS with this certificate (and never AUTH before it).</param>
    /// <param name="users">Require AUTH (PLAIN or LOGIN) as one of these users, by password.</param>
    /// <param name="smtpUtf8">Asked at each EHLO whether to offer SMTPUTF8 (null: always).</param>
    public static ScriptedSmtpServer Start(Func<string, SmtpResponse?>? rcpt = null, Func<IReadOnlyList<string>, SmtpResponse?>? data = null,
        X509Certificate2? certificate = null, IReadOnlyDictionary<string, string>? users = null, Func<string, SmtpResponse?>? mail = null, Func<bool>? smtpUtf8 = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var port = Net.FreePort();
            var server = new ScriptedSmtpServer(port, rcpt ?? (_ => null), data ?? (_ => null), certificate, users, mail ?? (_ => null), smtpUtf8);
            Wait.Until(() => Net.CanConnect(port) || server._running.IsCompleted, TimeSpan.FromSeconds(10), "the SMTP server to listen");
            if (!server._running.IsCompleted)
            {
                return server;
            }

            // It could not listen: whatever answered the probe is not this server. Another test
            // process (each has its own FreePort) may have taken the port in between (ci61): another.
            var why = server._running.Exception?.GetBaseException();
            server.Dispose();
            if (attempt == 5 || why is not System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.AddressAlreadyInUse })
            {
                throw new InvalidOperationException($"the SMTP server on port {port} stopped: {why?.Message}");
            }
        }
    }

    public static SmtpResponse Reply(int code, string text) => new((SmtpReplyCode)code, text);

    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _running.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        _stop.Dispose();
    }

    // EHLO offering SMTPUTF8 or not, as asked at each session.
    private sealed class Commands(Func<bool> smtpUtf8) : SmtpServer.Protocol.SmtpCommandFactory
    {
        public override SmtpServer.Protocol.SmtpCommand CreateEhlo(string domainOrAddress) => new Ehlo(domainOrAddress, smtpUtf8);
    }

    private sealed class Ehlo(string domainOrAddress, Func<bool> smtpUtf8) : SmtpServer.Protocol.EhloCommand(domainOrAddress)
    {
        protected override IEnumerable<string> GetExtensions(ISessionContext context)
        {
            var offer = smtpUtf8();
            return base.GetExtensions(context).Where(e => offer || e != "SMTPUTF8");
        }
    }

    private sealed class Filter(Func<string, SmtpResponse?> rcpt, Func<string, SmtpResponse?> mail) : MailboxFilter
    {
        public override Task<bool> CanAcceptFromAsync(ISessionContext context, IMailbox from, int size, CancellationToken cancellationToken)
        {
            var response = mail(from.AsAddress());
            if (response is null)
            {
                return Task.FromResult(true);
            }

            throw new SmtpResponseException(response, quit: response.ReplyCode == SmtpReplyCode.ServiceUnavailable);
        }

        public override Task<bool> CanDeliverToAsync(ISessionContext context, IMailbox to, IMailbox from, CancellationToken cancellationToken)
        {
            var response = rcpt(to.AsAddress());
            if (response is null)
            {
                return Task.FromResult(true);
            }

            throw new SmtpResponseException(response, quit: response.ReplyCode == SmtpReplyCode.ServiceUnavailable);
        }
    }

    private sealed class Store(ScriptedSmtpServer owner, Func<IReadOnlyList<string>, SmtpResponse?> data) : MessageStore
    {
        public override Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            var recipients = transaction.To.Select(t => t.AsAddress()).ToList();
            // SmtpServer swallows exceptions from the store without a reply: answer instead.
            if (data(recipients) is { } response)
            {
                return Task.FromResult(response);
            }

            var user = context.Authentication.IsAuthenticated ? context.Authentication.User : null;
            owner.Received.Enqueue(new ReceivedMessage(transaction.From.AsAddress(), recipients, buffer.ToArray(), user, context.Pipe is { IsSecure: true })
            {
                Parameters = transaction.Parameters.ToDictionary(p => p.Key.ToUpperInvariant(), p => p.Value),
            });
            return Task.FromResult(SmtpResponse.Ok);
        }
    }
}
