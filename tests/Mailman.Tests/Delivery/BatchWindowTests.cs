// How a post that is not personalized is cut into transactions of one domain's recipients, against
// a real server (SmtpServer in-process). Review 71: with the members' domains alternating (as
// members who joined one by one have them), partial batches were closed once a chunk's worth
// waited, and 10,000 members of 50 domains went in 2,557 transactions where 100 carry them.
using System.Collections.Concurrent;
using System.Text;
using Mailman.Delivery;
using Mailman.Delivery.Smtp;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.TestSupport;

namespace Mailman.Tests.Delivery;

public sealed class BatchWindowTests
{
    private sealed class Progress : IDeliveryProgress
    {
        public ConcurrentDictionary<long, int> Done { get; } = new();

        public ConcurrentDictionary<long, long> Delivered { get; } = new();

        public int TransactionsDone(long chunk) => Done.GetValueOrDefault(chunk);

        public void Record(long chunk, int transactions, long delivered, IReadOnlyList<(Recipient Recipient, int Status, string Response)> deferred, IReadOnlyList<Refusal> bounced, long unanswered)
        {
            Done[chunk] = transactions;
            Delivered.AddOrUpdate(chunk, delivered, (_, before) => before + delivered);
        }
    }

    private static List<Recipient> Alternating(int members, int domains)
        => [.. Enumerable.Range(0, members).Select(i => new Recipient($"m{i:D5}@d{i % domains}.example", ""))];

    private static (DeliveryReport Report, List<ReceivedMessage> Received) Deliver(List<Recipient> members, int? batchWindow = null) => Deliver(members, new Progress(), batchWindow);

    private static (DeliveryReport Report, List<ReceivedMessage> Received) Deliver(List<Recipient> members, Progress progress, int? batchWindow = null)
    {
        using var server = ScriptedSmtpServer.Start();
        var delivery = new PostDelivery(new SmtpOptions { TimeoutSeconds = 10, MaxRecipients = 100 }, [Relay.Plain("127.0.0.1", server.Port, 2)]);
        var post = PreparedPost.Create(Encoding.UTF8.GetBytes("Subject: t\r\nFrom: a@example.com\r\n\r\nbody\r\n"), null);
        var report = delivery.Deliver(post, ListName.Parse("dev@example.org"), personalized: false, members, progress, CancellationToken.None,
            chunkSize: 100, maxRecipients: 100, batchWindow: batchWindow);
        return (report, [.. server.Received]);
    }

    [Fact]
    public void Members_of_alternating_domains_go_in_full_batches_of_their_domain_each_once()
    {
        var members = Alternating(10_000, 50);

        var (report, received) = Deliver(members);
        using (report)
        {
            Assert.Equal(10_000, report.Delivered);
            Assert.Equal(100, report.Transactions);
        }

        Assert.Equal(100, received.Count);
        Assert.All(received, m => Assert.Single(m.Recipients.Select(r => r[(r.IndexOf('@') + 1)..]).Distinct()));
        Assert.Equal(members.Select(m => m.Address).Order(StringComparer.Ordinal), received.SelectMany(m => m.Recipients).Order(StringComparer.Ordinal));
    }

    // Chunks stay the checkpoint's size however much the window holds, to the last one: a crash
    // sends again at most the chunks in flight (here 60 domains of 40 members: every batch is
    // still open when the members end).
    [Fact]
    public void The_batches_open_at_the_end_go_in_chunks_of_the_checkpoints_size()
    {
        var progress = new Progress();

        var (report, _) = Deliver(Alternating(2_400, 60), progress);
        using (report)
        {
            Assert.Equal(2_400, report.Delivered);
        }

        Assert.All(progress.Delivered.Values, n => Assert.InRange(n, 1, 100 + 99));
        Assert.InRange(progress.Delivered.Count, 20, 60);
    }

    // A delivery recorded before the window was recorded resumes cut as it started: a window of
    // one chunk (a cut of another window would skip or repeat members of the chunks done).
    [Fact]
    public void A_delivery_recorded_without_a_window_is_cut_with_a_window_of_one_chunk()
    {
        var members = Alternating(1_000, 50);

        var (report, received) = Deliver(members, batchWindow: 100);
        using (report)
        {
            Assert.Equal(1_000, report.Delivered);
            Assert.InRange(report.Transactions, 250, 1_000); // two to four recipients a batch
        }

        Assert.Equal(members.Select(m => m.Address).Order(StringComparer.Ordinal), received.SelectMany(m => m.Recipients).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_checkpoint_records_the_window_and_reads_an_older_record_as_one_chunk()
    {
        var dir = Directory.CreateTempSubdirectory("mailman-window-");
        try
        {
            Check(dir.FullName);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static void Check(string directory)
    {
        var fs = new System.IO.Abstractions.FileSystem();
        var queue = new Switchboard(fs, directory, "out", TimeProvider.System);
        var claim = queue.Claim(queue.Enqueue(new EntryMetadata { List = "dev@example.org" }, "post"u8, [new Recipient("a@example.com", "")]))!;
        using (var checkpoint = DeliveryCheckpoint.Open(fs, queue, claim))
        {
            checkpoint.Start(100, 100, "", PostDelivery.BatchWindow(100));
        }

        using (var reopened = DeliveryCheckpoint.Open(fs, queue, claim))
        {
            Assert.Equal(5_000, reopened.BatchWindow);
        }

        // "C 100 100", as the builds before the window wrote it.
        var body = "C 100 100\n"u8.ToArray();
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(body).AsSpan(0, 8));
        File.WriteAllBytes(queue.CheckpointPath(claim.Name), [.. Encoding.ASCII.GetBytes($"#{body.Length} {hash}\n"), .. body]);
        using var older = DeliveryCheckpoint.Open(fs, queue, claim);
        Assert.Equal(100, older.ChunkSize);
        Assert.Equal(100, older.BatchWindow);
    }
}
