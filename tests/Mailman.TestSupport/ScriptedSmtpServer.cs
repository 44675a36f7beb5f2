// The SmtpServer package in-process on an ephemeral loopback port, for faults smtp-sink cannot
// script per recipient: refuse some RCPTs with 4xx or 5xx, or answer the end of DATA with an error.
using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using SmtpServer;
using SmtpServer.Mail;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace Mailman.TestSupport;

/// <summary>A received transaction.</summary>
public sealed record ReceivedMessage(string MailFrom, IReadOnlyList<string> Recipients, byte[] Content);

public sealed class ScriptedSmtpServer : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;

    private ScriptedSmtpServer(int port, Func<string, SmtpResponse?> rcpt, Func<IReadOnlyList<string>, SmtpResponse?> data)
    {
        Port = port;
        var options = new SmtpServerOptionsBuilder()
            .ServerName("localhost")
            .Endpoint(b => b.Endpoint(new IPEndPoint(IPAddress.Loopback, port)))
            .Build();
        var services = new SmtpServer.ComponentModel.ServiceProvider();
        services.Add(new Filter(rcpt));
        services.Add(new Store(this, data));
        var server = new SmtpServer.SmtpServer(options, services);
        _running = server.StartAsync(_stop.Token);
    }

    public int Port { get; }

    public ConcurrentQueue<ReceivedMessage> Received { get; } = new();

    /// <summary>
    /// <paramref name="rcpt"/> answers each RCPT TO (null: accept); <paramref name="data"/> answers
    /// the end of DATA for the accepted recipients (null: 250). A 421 to RCPT also hangs up.
    /// </summary>
    public static ScriptedSmtpServer Start(Func<string, SmtpResponse?>? rcpt = null, Func<IReadOnlyList<string>, SmtpResponse?>? data = null)
    {
        var port = Net.FreePort();
        var server = new ScriptedSmtpServer(port, rcpt ?? (_ => null), data ?? (_ => null));
        Wait.Until(() => Net.CanConnect(port), TimeSpan.FromSeconds(10), "the SMTP server to listen");
        return server;
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

    private sealed class Filter(Func<string, SmtpResponse?> rcpt) : MailboxFilter
    {
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

            owner.Received.Enqueue(new ReceivedMessage(transaction.From.AsAddress(), recipients, buffer.ToArray()));
            return Task.FromResult(SmtpResponse.Ok);
        }
    }
}
