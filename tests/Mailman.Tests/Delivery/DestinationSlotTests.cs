// A destination's concurrency counted in connections through the pipelined writer, against a real
// server (SmtpServer in-process): while the server reads a copy's end of data, the connection has
// already sent the next copy's commands, and must still hold one slot of the destination, not two.
using System.Collections.Concurrent;
using System.Text;
using Mailman.Delivery;
using Mailman.Delivery.Smtp;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.TestSupport;

namespace Mailman.Tests.Delivery;

public sealed class DestinationSlotTests
{
    private sealed class Progress : IDeliveryProgress
    {
        public ConcurrentQueue<string> Deferred { get; } = new();

        public int TransactionsDone(long chunk) => 0;

        public void Record(long chunk, int transactions, long delivered, IReadOnlyList<(Recipient Recipient, int Status, string Response)> deferred, IReadOnlyList<Refusal> bounced)
        {
            foreach (var d in deferred)
            {
                Deferred.Enqueue(d.Response);
            }
        }
    }

    [Theory]
    [InlineData(1, 20)]
    [InlineData(3, 20)]
    [InlineData(3, 3)] // at the limit: no copy waits for a slot its own connection holds
    public void Pipelined_copies_to_one_domain_hold_a_slot_per_connection(int connections, int limit)
    {
        PostDelivery? delivery = null;
        var inFlight = new ConcurrentQueue<int>();
        using var server = ScriptedSmtpServer.Start(data: _ =>
        {
            // The end of a copy's data: its connection has sent the next copy's MAIL, RCPT, DATA.
            inFlight.Enqueue(delivery!.Pacer.Of("example.com").InFlight);
            return null;
        });
        var options = new SmtpOptions { TimeoutSeconds = 10, DestinationDefaults = new() { MaxConnections = limit } };
        delivery = new PostDelivery(options, [Relay.Plain("127.0.0.1", server.Port, connections)]);
        var post = PreparedPost.Create(Encoding.UTF8.GetBytes("Subject: t\r\nFrom: a@example.com\r\n\r\nbody\r\n"), null);
        var members = Enumerable.Range(0, 60).Select(i => new Recipient($"m{i:D2}@example.com", "")).ToList();
        var progress = new Progress();

        using var report = delivery.Deliver(post, ListName.Parse("dev@example.org"), personalized: false, members, progress, CancellationToken.None, chunkSize: 10, maxRecipients: 1);

        Assert.Equal(60, report.Delivered);
        Assert.Empty(progress.Deferred);
        Assert.Equal(60, server.Received.Count);
        Assert.InRange(inFlight.Max(), 1, connections);
        Assert.Equal(0, delivery.Pacer.Of("example.com").InFlight);
    }
}
