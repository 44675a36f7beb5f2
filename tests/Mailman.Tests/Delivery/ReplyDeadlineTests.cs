// A server that trickles a reply (one line of a multi-line reply at a time, more often than the
// timeout, never the last) is cut once the reply has taken longer than its deadline: the
// timeouts of MailKit and of the socket are per read, and alone would wait for ever.
using System.Text;
using Mailman.Delivery;
using Mailman.Delivery.Smtp;
using Mailman.Instance;
using Mailman.Queues;
using Mailman.TestSupport;

namespace Mailman.Tests.Delivery;

public sealed class ReplyDeadlineTests
{
    // Each line well within the timeout, even on a loaded machine: only the deadline can cut.
    private const int Timeout = 3;
    private static readonly TimeSpan Every = TimeSpan.FromMilliseconds(250);

    // Far above what the deadlines give (15 s at most): only a hang reaches it.
    private static readonly TimeSpan Hang = TimeSpan.FromSeconds(90);

    [Fact]
    public void A_greeting_that_never_ends_fails_the_connection_as_a_stall()
    {
        using var server = RawSmtpServer.Trickling("greeting", Every);
        using var connection = new SmtpConnection(new SmtpOptions { Port = server.Port, TimeoutSeconds = Timeout });
        var result = new TransactionResult();

        var send = Task.Run(() => connection.Send(Carrier().Message, "dev-bounces@example.org", [new Recipient("ann@example.com", "")], result));

        Assert.True(((IAsyncResult)send).AsyncWaitHandle.WaitOne(Hang), "the connection still waits for the greeting to end");
        var e = Assert.IsType<SmtpConnectException>(send.Exception?.InnerException);
        Assert.Contains($"did not finish its greeting, EHLO, STARTTLS and AUTH within {SmtpConnection.SetupTimeouts * Timeout} s", e.Message, StringComparison.Ordinal);
        Assert.True(server.Trickled > 1, "the greeting came in one piece");
    }

    // Review 67: MailKit keeps a reply whole until its last line; a relay that sent a greeting
    // without end, as fast as we read, grew the daemon by gigabytes before the deadline cut it.
    // The deadline here (5 × 30 s) is beyond Hang: only the bound on a reply ends it.
    [Fact]
    public void A_greeting_that_floods_without_end_is_cut_at_the_reply_bound_not_kept()
    {
        using var server = RawSmtpServer.Flooding("greeting");
        using var connection = new SmtpConnection(new SmtpOptions { Port = server.Port, TimeoutSeconds = 30 });
        var result = new TransactionResult();

        var send = Task.Run(() => connection.Send(Carrier().Message, "dev-bounces@example.org", [new Recipient("ann@example.com", "")], result));

        Assert.True(((IAsyncResult)send).AsyncWaitHandle.WaitOne(Hang), "the connection still reads the greeting");
        var e = Assert.IsType<SmtpConnectException>(send.Exception?.InnerException);
        Assert.Contains($"sent more than {ReplyBoundStream.MaxReply >> 20} MiB without a command of ours", e.Message, StringComparison.Ordinal);
        Assert.StartsWith($"SMTP server 127.0.0.1:{server.Port} took the connection, then its session failed before the first message: ", e.Message, StringComparison.Ordinal); // not "cannot connect" (review 68)
    }

    // The same after the end of data, on both paths (review 68: the pipelined writer, which
    // keeps only a reply's last line, read the flood until the reply's deadline, a core busy).
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_reply_to_the_data_that_floods_without_end_defers_the_copy_at_the_reply_bound(bool pipelined)
    {
        using var server = RawSmtpServer.Flooding("data");
        using var connection = new SmtpConnection(new SmtpOptions { Port = server.Port, TimeoutSeconds = 30, Pipelining = pipelined });
        var result = new TransactionResult();

        var send = Task.Run(() =>
        {
            connection.Send(Carrier().Message, "dev-bounces@example.org", [new Recipient("ann@example.com", "")], result);
            connection.Complete();
        });

        Assert.True(((IAsyncResult)send).AsyncWaitHandle.WaitOne(Hang), "the transaction still reads the reply to its data");
        Assert.Null(send.Exception);
        Assert.Empty(result.Delivered);
        var (_, _, response) = Assert.Single(result.Deferred);
        Assert.Contains($"more than {ReplyBoundStream.MaxReply >> 20} MiB", response, StringComparison.Ordinal);
        Assert.False(result.TimedOut, response);
        Assert.True(result.Broken, "the data went and no reply came: the relay is to be marked down");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_reply_to_the_data_that_never_ends_defers_the_copy_as_a_stall(bool pipelined)
    {
        using var server = RawSmtpServer.Trickling("data", Every);
        using var connection = new SmtpConnection(new SmtpOptions { Port = server.Port, TimeoutSeconds = Timeout, Pipelining = pipelined });
        var result = new TransactionResult();

        var send = Task.Run(() =>
        {
            connection.Send(Carrier().Message, "dev-bounces@example.org", [new Recipient("ann@example.com", "")], result);
            connection.Complete();
        });

        Assert.True(((IAsyncResult)send).AsyncWaitHandle.WaitOne(Hang), "the transaction still waits for the reply to its data to end");
        Assert.Null(send.Exception);
        Assert.Empty(result.Delivered);
        var (recipient, _, response) = Assert.Single(result.Deferred);
        Assert.Equal("ann@example.com", recipient.Address);
        Assert.True(result.TimedOut, response);
        Assert.Contains("did not end within", response, StringComparison.Ordinal);
        Assert.True(server.Trickled > 1, "the reply came in one piece");
    }

    // Review 53: a fresh connection whose MAIL FROM went unanswered was logged as the relay
    // having "refused the transaction before MAIL FROM: ... timed out".
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_MAIL_FROM_unanswered_on_a_fresh_connection_is_said_to_be_unanswered_not_refused(bool pipelined)
    {
        using var held = new ManualResetEventSlim();
        using var server = ScriptedSmtpServer.Start(mail: _ =>
        {
            held.Wait(Hang);
            return null;
        });
        try
        {
            using var connection = new SmtpConnection(new SmtpOptions { Port = server.Port, TimeoutSeconds = 1, Pipelining = pipelined });
            var send = Task.Run(() => connection.Send(Carrier().Message, "dev-bounces@example.org", [new Recipient("ann@example.com", "")], new TransactionResult()));

            Assert.True(((IAsyncResult)send).AsyncWaitHandle.WaitOne(Hang), "the transaction still waits for the reply to MAIL FROM");
            var e = Assert.IsType<SmtpConnectException>(send.Exception?.InnerException);
            Assert.Contains($"SMTP server 127.0.0.1:{server.Port} did not answer MAIL FROM in time: ", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("refused", e.Message, StringComparison.Ordinal);
            Assert.False(e.Answered);
        }
        finally
        {
            held.Set();
        }
    }

    // Review 59: smtp-sink's -W delay answered a pipelined end of data after the next
    // transaction's commands; the 354 read as RCPT's reply was taken for the member's refusal
    // (a permanent one: never sent to retry). Replies out of step break the connection now.
    [Fact]
    public void Replies_out_of_step_with_the_commands_defer_the_copy_and_refuse_no_one()
    {
        using var server = RawSmtpServer.OutOfStep();
        using var connection = new SmtpConnection(new SmtpOptions { Port = server.Port, TimeoutSeconds = 10, Pipelining = true });
        var first = new TransactionResult();
        var second = new TransactionResult();
        connection.Send(Carrier().Message, "dev-bounces@example.org", [new Recipient("ann@example.com", "")], first);
        connection.Send(Carrier().Message, "dev-bounces@example.org", [new Recipient("bob@example.com", "")], second);
        connection.Complete();

        Assert.Empty(first.Bounced);
        Assert.Empty(second.Bounced);
        var (recipient, status, response) = Assert.Single(second.Deferred.Concat(first.Deferred), d => d.Recipient.Address == "bob@example.com");
        Assert.Equal(0, status);
        Assert.Contains("out of step", response, StringComparison.Ordinal);
        Assert.Equal("bob@example.com", recipient.Address);
    }

    private static Carrier Carrier()
    {
        var carrier = new Carrier(PreparedPost.Create(Encoding.UTF8.GetBytes("Subject: t\r\nFrom: a@example.com\r\n\r\nbody\r\n"), null));
        carrier.SetRecipient(null);
        return carrier;
    }
}
