// Review 90: a long delivery makes way for the notices and small posts waiting behind it; the
// turn it gives them ends with those that waited when it made way, so a stream of them arriving
// as fast as they go cannot hold the post back for good.
using Mailman.Lists;
using Mailman.Queues;
using Mailman.TestSupport;

namespace Mailman.Tests.Runners;

public sealed class MakeWayTests : IDisposable
{
    private const string Big = "dev@example.org";
    private const string Small = "small@example.org";
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    private static void Queue(RunnerHarness h, string list, string messageId)
    {
        h.Time.Advance(TimeSpan.FromMilliseconds(1)); // entry names sort by the time they were made
        h.Inject(list, Posts.Plain(to: list, messageId: messageId));
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
    }

    private static int MadeWay(RunnerHarness h) => h.Logs.Lines.Count(l => l.Contains("makes way for the notices and small posts waiting behind it", StringComparison.Ordinal));

    [Fact]
    public void A_post_that_made_way_resumes_after_the_entries_that_waited_then_not_after_those_that_came_since()
    {
        _instance.CreateList(Big, l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers(Big, TempInstance.NumberedMembers(150));
        _instance.CreateList(Small, l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers(Small, [new Member("someone@small.example", "")]);
        using var server = ScriptedSmtpServer.Start();
        using var h = new RunnerHarness(_instance, o =>
        {
            o.Smtp.Port = server.Port;
            o.Smtp.YieldAfterSeconds = 0; // makes way at its first chunk whenever a small entry waits
        });
        Queue(h, Big, "big@example.com");
        Queue(h, Small, "s1@example.com");
        Queue(h, Small, "s2@example.com");

        Assert.True(h.Outgoing.RunOnce(CancellationToken.None)); // the big post, oldest: makes way at once
        Assert.True(MadeWay(h) == 1, string.Join("\n", h.Logs.Lines));
        Assert.Empty(server.Received);

        Queue(h, Small, "s3@example.com");
        Queue(h, Small, "s4@example.com");
        Assert.True(h.Outgoing.RunOnce(CancellationToken.None));
        Assert.True(h.Outgoing.RunOnce(CancellationToken.None));
        Assert.Equal(2, server.Received.Count); // s1 and s2, which waited when it made way

        // Its turn again, before s3 and s4 (it makes way for them at once, the slice being 0:
        // its later turns are logged at Debug).
        Assert.True(h.Outgoing.RunOnce(CancellationToken.None));
        Assert.Equal(2, server.Received.Count);
        Assert.Equal(3, h.Queues[QueueSet.Out].Pending().Count);

        RunnerHarness.Drain(h.Outgoing);
        var received = server.Received.ToList();
        Assert.Equal(4, received.Count(m => m.Recipients[0] == "someone@small.example"));
        var copies = received.SelectMany(m => m.Recipients).Where(r => r.EndsWith("@example.com", StringComparison.Ordinal)).ToList();
        Assert.Equal(TempInstance.NumberedMembers(150).Select(m => m.Address).Order(StringComparer.Ordinal), copies.Order(StringComparer.Ordinal));
        Assert.Equal(1, MadeWay(h));
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
    }
}
