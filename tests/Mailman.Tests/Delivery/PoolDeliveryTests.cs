// PostDelivery over a pool of two relays, one of them down (nothing listens on its port), on a
// fake clock that never moves: the relay's backoff never ends, so the delivery can only finish if
// it does not wait for it once the other relay has sent every copy.
using System.Text;
using Mailman.Delivery;
using Mailman.Delivery.Smtp;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace Mailman.Tests.Delivery;

public sealed class PoolDeliveryTests
{
    private sealed class Progress : IDeliveryProgress
    {
        public int TransactionsDone(long chunk) => 0;

        public void Record(long chunk, int transactions, long delivered, IReadOnlyList<(Recipient Recipient, int Status, string Response)> deferred, IReadOnlyList<Refusal> bounced, long unanswered)
        {
        }
    }

    [Fact]
    public async Task A_delivery_ends_when_the_other_relay_has_sent_everything_not_when_the_down_ones_backoff_ends()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero));
        using var server = ScriptedSmtpServer.Start();
        var relays = new[] { Relay.Plain("127.0.0.1", Net.FreePort(), connections: 4), Relay.Plain("127.0.0.1", server.Port, connections: 4) };
        var delivery = new PostDelivery(new SmtpOptions { TimeoutSeconds = 10 }, relays, time: time);
        var post = PreparedPost.Create(Encoding.UTF8.GetBytes("Subject: t\r\nFrom: a@example.com\r\n\r\nbody\r\n"), null);
        var members = Enumerable.Range(0, 40).Select(i => new Recipient($"m{i}@d{i}.example", "")).ToList();

        var run = Task.Run(() => delivery.Deliver(post, ListName.Parse("dev@example.org"), personalized: false, members, new Progress(), CancellationToken.None, chunkSize: 5));

        using var report = await run.WaitAsync(TimeSpan.FromSeconds(60)); // TimeoutException: it waited for the down relay's backoff
        Assert.Equal(40, report.Delivered);
        Assert.Equal(40, server.Received.Count);
        var down = delivery.Pool.Snapshot()[0];
        Assert.Equal("down", down.State);

        // Its four connections failed together: one try, the first backoff (2 s), not 2 × 2⁴.
        Assert.Equal(2, down.RetryInSeconds);
    }

    [Fact]
    public void A_relay_that_takes_the_connection_and_never_greets_is_down_for_that_not_for_a_failed_connect()
    {
        // The kernel completes the handshake for a listener that never accepts: connected, silent.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
        var delivery = new PostDelivery(new SmtpOptions { TimeoutSeconds = 1 }, [Relay.Plain("127.0.0.1", port, connections: 1)]);
        var post = PreparedPost.Create(Encoding.UTF8.GetBytes("Subject: t\r\nFrom: a@example.com\r\n\r\nbody\r\n"), null);

        using var report = delivery.Deliver(post, ListName.Parse("dev@example.org"), personalized: false, [new Recipient("m@example.com", "")], new Progress(), CancellationToken.None);

        Assert.Equal(DeliveryStop.ServerUnreachable, report.Stop);
        Assert.Contains($"SMTP server 127.0.0.1:{port} took the connection but sent no greeting or EHLO reply within 1 s", report.StopReason, StringComparison.Ordinal);
        Assert.Equal(["m@example.com"], report.Remaining.Select(r => r.Address));
    }
}
