// Component tests: the runners against a real temp instance, a fake clock, and (for outgoing)
// a real smtp-sink.
using System.Globalization;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.TestSupport;

namespace Mailman.Tests.Runners;

public sealed class RunnerTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void Incoming_and_pipeline_move_a_post_to_out_with_its_recipients()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(25));
        using var h = new RunnerHarness(_instance);
        h.Inject("dev@example.org", Posts.Plain());

        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Equal(1, RunnerHarness.Drain(h.Pipeline));

        var outQueue = h.Queues[QueueSet.Out];
        var entry = outQueue.Load(outQueue.TryClaim()!);
        Assert.Equal(25, entry.Metadata.RecipientCount);
        Assert.True(entry.Metadata.Personalized);
        Assert.Equal(TempInstance.NumberedMembers(25).Select(m => m.Address), outQueue.Recipients(entry).Select(r => r.Address));
        Assert.Empty(h.Queues[QueueSet.In].Pending());
        Assert.Empty(h.Queues[QueueSet.Pipeline].Pending());
    }

    // Review 110: one LMTP transaction to dev+0@ ... dev+29@ (or thirty pipe runs of one
    // message) was thirty posts, every member getting each.
    [Fact]
    public void A_post_the_list_took_in_already_is_discarded_as_a_duplicate()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(2));
        using var h = new RunnerHarness(_instance);
        // As the MTA gives them (inject reads the Message-ID; dev+1@ is the list's address).
        var seen = new List<string>();
        string Inject(string address, byte[] post)
        {
            var result = MailmanProcess.Run(_instance.Home, ["inject", address], post);
            Assert.True(result.ExitCode == 0, result.Stderr);
            return h.Queues[QueueSet.In].Pending().Except(seen).Single();
        }

        var first = Inject("dev@example.org", Posts.Plain());
        seen.Add(first);
        var again = Inject("dev+1@example.org", Posts.Plain());
        seen.Add(again);
        var other = Inject("dev@example.org", Posts.Plain(messageId: "post2@example.com"));
        Assert.Equal(3, RunnerHarness.Drain(h.Incoming));
        var taken = h.Queues[QueueSet.Pipeline].Pending().Where(n => n != other).ToList();
        Assert.Equal(2, h.Queues[QueueSet.Pipeline].Pending().Count);
        Assert.Contains(Assert.Single(taken), new[] { first, again });
        var discarded = taken[0] == first ? again : first;
        Assert.True(h.Logs.Lines.Any(l => l.Contains($"Post post1@example.com to dev@example.org from", StringComparison.Ordinal)
            && l.Contains($"discarded, entry {discarded}: a duplicate of entry {taken[0]} of", StringComparison.Ordinal)), string.Join("\n", h.Logs.Lines));
        first = taken[0];

        // The same entry taken up again (a crash, unshunt) is no duplicate of itself; a week on, the id is new.
        using var store = new ListStore(_instance.Paths.Database);
        var dev = ListName.Parse("dev@example.org");
        var now = h.Time.GetUtcNow();
        var key = SeenKey.Of(" <post1@example.com> (the first)", () => throw new InvalidOperationException("an id needs no content"))!;
        Assert.Null(store.SeenBefore(dev, SeenKind.Post, key, first, now));
        Assert.Equal(first, store.SeenBefore(dev, SeenKind.Post, key, "another", now)?.Entry);
        Assert.Null(store.SeenBefore(dev, SeenKind.Owner, key, "another", now));
        Assert.Null(store.SeenBefore(dev, SeenKind.Post, key, "another", now + SeenKey.MessageIdLife + TimeSpan.FromSeconds(1)));
    }

    // Review 111: "Message-ID: < >" or "(comment)" was one key for every post carrying it
    // (different posts discarded); a post without a Message-ID was never looked at (thirty again).
    [Fact]
    public void Without_a_usable_Message_ID_the_same_content_within_an_hour_is_a_duplicate_and_other_posts_are_not()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(2));
        using var h = new RunnerHarness(_instance);
        static byte[] Post(string id, string subject, string extra = "")
            => System.Text.Encoding.ASCII.GetBytes($"{extra}From: a@example.com\nTo: dev@example.org\nSubject: {subject}\n{id}Date: Sat, 28 Nov 2026 10:00:00 +0000\n\nbody\n");
        foreach (var raw in new[]
        {
            Post("Message-ID: < >\n", "one"), Post("Message-ID: < >\n", "two"), Post("Message-ID: (comment)\n", "three"),
            Post("", "four", "Delivered-To: dev+1@example.org\n"), Post("", "four", "Delivered-To: dev+2@example.org\nReceived: by x\n"),
        })
        {
            Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], raw).ExitCode);
        }

        Assert.Equal(5, RunnerHarness.Drain(h.Incoming));
        Assert.Equal(4, h.Queues[QueueSet.Pipeline].Pending().Count);
        Assert.Single(h.Logs.Lines, l => l.Contains("Post (none; by its content) to dev@example.org from <> discarded", StringComparison.Ordinal));

        // An hour on, the same content is a post again (a script's identical mail of each day).
        h.Time.Advance(SeenKey.ContentLife + TimeSpan.FromSeconds(1));
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Post("", "four")).ExitCode);
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Equal(5, h.Queues[QueueSet.Pipeline].Pending().Count);
    }

    // Review 56: a post without Message-ID or Date went out without them (through a smarthost
    // that adds neither) and was logged as "Post null". The id is the entry's: a run repeated
    // after a crash gives the same one.
    [Fact]
    public void A_post_without_Message_ID_or_Date_goes_out_with_them()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(2));
        using var h = new RunnerHarness(_instance);
        h.Inject("dev@example.org", System.Text.Encoding.ASCII.GetBytes("From: a@example.com\nTo: dev@example.org\nSubject: bare\n\nbody\n"));
        var entry = Assert.Single(h.Queues[QueueSet.In].Pending());
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Equal(1, RunnerHarness.Drain(h.Pipeline));

        var outQueue = h.Queues[QueueSet.Out];
        var queued = outQueue.Load(outQueue.TryClaim()!);
        var message = MimeKit.MimeMessage.Load(new MemoryStream(queued.Message));
        Assert.Equal($"{entry}.mailman@example.org", message.MessageId);
        Assert.Equal(message.MessageId, queued.Metadata.MessageId);
        Assert.Equal(h.Time.GetUtcNow(), message.Date);
    }

    // Review 58 left: a second Message-ID (or Date, Subject) went out as it came; Gmail refuses
    // such a copy ("not RFC 5322 compliant").
    [Fact]
    public void A_post_with_two_Message_IDs_Dates_or_Subjects_goes_out_with_the_first_of_each()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(2));
        using var h = new RunnerHarness(_instance);
        h.Inject("dev@example.org", System.Text.Encoding.ASCII.GetBytes(
            "From: a@example.com\nTo: dev@example.org\nMessage-ID: <one@example.com>\nSubject: first\nDate: Mon, 30 Nov 2026 10:00:00 +0000\n" +
            "X-Between: kept\nMessage-ID: <two@example.com>\nSubject: second\nDate: Tue, 01 Dec 2026 10:00:00 +0000\nMessage-ID: <three@example.com>\n\nbody\n"));
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Equal(1, RunnerHarness.Drain(h.Pipeline));

        var outQueue = h.Queues[QueueSet.Out];
        var queued = outQueue.Load(outQueue.TryClaim()!);
        var message = MimeKit.MimeMessage.Load(new MemoryStream(queued.Message));
        Assert.Equal("one@example.com", Assert.Single(message.Headers, x => x.Id == MimeKit.HeaderId.MessageId).Value.Trim('<', '>', ' '));
        Assert.Equal("Mon, 30 Nov 2026 10:00:00 +0000", Assert.Single(message.Headers, x => x.Id == MimeKit.HeaderId.Date).Value.Trim());
        Assert.EndsWith("first", Assert.Single(message.Headers, x => x.Id == MimeKit.HeaderId.Subject).Value.Trim(), StringComparison.Ordinal);
        Assert.Equal("kept", message.Headers["X-Between"]);
        Assert.Equal("one@example.com", queued.Metadata.MessageId);
    }

    [Fact]
    public void The_incoming_runner_sweeps_the_temporaries_of_killed_injects_when_idle_every_ten_minutes()
    {
        // Review 28: they went only at the next start.
        using var h = new RunnerHarness(_instance);
        var inQueue = h.Queues[QueueSet.In];
        string Stale(string name)
        {
            var path = inQueue.PathOf(name, Switchboard.TempExtension);
            File.WriteAllText(path, "From: a@example.com\n");
            File.SetLastWriteTimeUtc(path, h.Time.GetUtcNow().UtcDateTime - TimeSpan.FromHours(2));
            return path;
        }

        var first = Stale("17000000000000000-0000aaaa");
        var killedHop = h.Queues[QueueSet.Pipeline].PathOf("17000000000000000-0000eeee", Switchboard.TempExtension); // a daemon's, killed mid-hop
        File.WriteAllBytes(killedHop, []);
        File.SetLastWriteTimeUtc(killedHop, h.Time.GetUtcNow().UtcDateTime - TimeSpan.FromHours(2));
        var young = inQueue.PathOf("17000000000000000-0000dddd", Switchboard.TempExtension);
        File.WriteAllText(young, "From: a@example.com\n"); // an inject that has opened its file and not yet locked it
        File.SetLastWriteTimeUtc(young, h.Time.GetUtcNow().UtcDateTime - TimeSpan.FromMinutes(30));
        Assert.False(h.Incoming.RunOnce(CancellationToken.None));
        Assert.False(File.Exists(first));
        Assert.False(File.Exists(killedHop));
        Assert.True(File.Exists(young));

        var second = Stale("17000000000000000-0000bbbb");
        using (var live = new FileStream(Stale("17000000000000000-0000cccc"), FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
            h.Time.Advance(TimeSpan.FromMinutes(5));
            h.Incoming.RunOnce(CancellationToken.None);
            Assert.True(File.Exists(second));
            h.Time.Advance(TimeSpan.FromMinutes(5));
            h.Incoming.RunOnce(CancellationToken.None);
            Assert.False(File.Exists(second));
            Assert.True(File.Exists(live.Name)); // a live writer's
        }
    }

    [Fact]
    public void A_post_whose_processing_throws_is_shunted_with_the_error_and_unshunt_puts_it_back()
    {
        using var h = new RunnerHarness(_instance);
        h.Inject("ghost@example.org", Posts.Plain(to: "ghost@example.org"));

        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        var shunt = h.Queues[QueueSet.Shunt];
        var name = Assert.Single(shunt.Pending());
        var metadata = shunt.ReadMetadata(name);
        Assert.Equal(QueueSet.In, metadata.FromQueue);
        Assert.Contains("no such list", metadata.Error, StringComparison.Ordinal);

        // The operator fixes the cause (creates the list), then unshunts.
        _instance.CreateList("ghost@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        var result = MailmanProcess.Run(_instance.Home, ["unshunt"]);
        Assert.Equal(0, result.ExitCode);
        Assert.Empty(shunt.Pending());
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Single(h.Queues[QueueSet.Pipeline].Pending());
    }

    [Theory]
    [InlineData("poster@example.com", "poster@example.com")]
    [InlineData(null, "poster@example.com")]
    [InlineData("", null)]
    [InlineData("<>", null)]
    public void A_rejected_post_gets_a_notice_to_its_sender_unless_it_was_a_bounce(string? envelopeSender, string? noticeTo)
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Reject);
        using var h = new RunnerHarness(_instance);
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = "dev@example.org", Sender = envelopeSender }, Posts.Plain());

        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Empty(h.Queues[QueueSet.Pipeline].Pending());
        var outQueue = h.Queues[QueueSet.Out];
        if (noticeTo is null)
        {
            Assert.Empty(outQueue.Pending());
            return;
        }

        var notice = outQueue.Load(outQueue.TryClaim()!);
        Assert.Equal([noticeTo], outQueue.Recipients(notice).Select(r => r.Address));
        var message = MimeKit.MimeMessage.Load(new MemoryStream(notice.Message));
        Assert.Equal("Your message to dev@example.org was rejected", message.Subject);
        Assert.Equal("auto-replied", message.Headers[MimeKit.HeaderId.AutoSubmitted]);
        Assert.Contains(message.BodyParts, p => p is MimeKit.MessagePart);
    }

    [Fact]
    public void An_unreadable_entry_goes_to_bad_and_the_runner_goes_on()
    {
        using var h = new RunnerHarness(_instance);
        File.WriteAllText(Path.Combine(_instance.QueueDir(QueueSet.In), "00000000000000001-deadbeef.msg"), "MAILMAN-QUEUE/1\n{\"Version\":1,\"MessageLength\":99999}\ntorn");
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        h.Inject("dev@example.org", Posts.Plain());

        Assert.Equal(2, RunnerHarness.Drain(h.Incoming));
        Assert.Equal(1, _instance.Count(QueueSet.Bad));
        Assert.Single(h.Queues[QueueSet.Pipeline].Pending());
    }

    [Fact]
    public void Retry_waits_for_the_backoff_on_the_clock_then_moves_the_entry_to_out()
    {
        using var h = new RunnerHarness(_instance);
        var retry = h.Queues[QueueSet.Retry];
        retry.Enqueue(new EntryMetadata { List = "dev@example.org", Attempts = 1, NotBefore = h.Time.GetUtcNow().AddMinutes(2) }, "x"u8, [new Recipient("a@example.com", "")]);

        Assert.Equal(0, RunnerHarness.Drain(h.Retry));
        h.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(0, RunnerHarness.Drain(h.Retry));
        h.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, RunnerHarness.Drain(h.Retry));
        Assert.Single(h.Queues[QueueSet.Out].Pending());
    }

    // Review 63: `queue flush` claimed and moved entries itself; killed half-way it left a claim
    // the running daemon never settled (the post held until the next start). It asks now, and
    // the retry runner moves them under its own claim.
    [Fact]
    public void Queue_flush_asks_the_retry_runner_which_moves_what_was_asked_for_at_once_and_nothing_else()
    {
        using var h = new RunnerHarness(_instance);
        var retry = h.Queues[QueueSet.Retry];
        var later = h.Time.GetUtcNow().AddHours(1);
        var asked = retry.Enqueue(new EntryMetadata { List = "dev@example.org", Attempts = 3, NotBefore = later }, "x"u8, [new Recipient("a@example.com", "")]);
        Assert.Equal(0, RunnerHarness.Drain(h.Retry));

        // A killed verb's temporary is no request; one over the bound (no flush writes one) is removed unread.
        var requests = _instance.Paths.FlushRequests;
        Directory.CreateDirectory(requests);
        File.WriteAllText(Path.Combine(requests, "1-2-3.tmp"), asked + "\n");
        var huge = Path.Combine(requests, "1-2-4" + Mailman.Runners.RetryRunner.FlushExtension);
        File.WriteAllText(huge, asked + "\n" + new string('x', (int)Mailman.Runners.RetryRunner.MaxFlushRequestBytes));
        Assert.Equal(0, RunnerHarness.Drain(h.Retry));
        Assert.False(File.Exists(huge));

        var flush = MailmanProcess.Run(_instance.Home, ["queue", "flush"]);
        Assert.Equal(0, flush.ExitCode);
        Assert.Contains($"{asked}\tdev@example.org\t1 recipients, attempt 4", flush.Stdout, StringComparison.Ordinal);
        Assert.Contains("1 entries asked to go back to out now", flush.Stdout, StringComparison.Ordinal);
        Assert.Equal(asked, Assert.Single(retry.Pending())); // the verb moved nothing, claimed nothing
        Assert.Empty(retry.Claimed());
        Assert.Contains("retry: 1 queue flush requests not yet done (no daemon runs: its start does them)", MailmanProcess.Run(_instance.Home, ["status"]).Stdout, StringComparison.Ordinal);

        // An entry deferred after the request is not asked for.
        var after = retry.Enqueue(new EntryMetadata { List = "dev@example.org", Attempts = 1, NotBefore = later }, "y"u8, [new Recipient("b@example.com", "")]);
        Assert.Equal(1, RunnerHarness.Drain(h.Retry));
        Assert.Equal(asked, Assert.Single(h.Queues[QueueSet.Out].Pending()));
        Assert.Null(h.Queues[QueueSet.Out].ReadMetadata(asked).NotBefore);
        Assert.Equal(after, Assert.Single(retry.Pending()));
        Assert.Empty(Directory.GetFiles(requests, "*" + Mailman.Runners.RetryRunner.FlushExtension)); // done, removed
        Assert.DoesNotContain("queue flush requests", MailmanProcess.Run(_instance.Home, ["status"]).Stdout, StringComparison.Ordinal);

        // Named ids: one in retry is asked for; one elsewhere or nowhere is named, exit 1.
        var named = MailmanProcess.Run(_instance.Home, ["queue", "flush", after, asked, "20260101000000000-0000abcd"]);
        Assert.Equal(1, named.ExitCode);
        Assert.Contains($"{asked}: not in retry (it is in out)", named.Stderr, StringComparison.Ordinal);
        Assert.Contains("20260101000000000-0000abcd: not in retry", named.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, RunnerHarness.Drain(h.Retry));
        Assert.Empty(retry.Pending());
        Assert.Equal(64, MailmanProcess.Run(_instance.Home, ["queue", "flush", "../out"]).ExitCode);
    }

    // Review 137: `queue flush` after the relays came back, within their backoff, found every
    // relay down and untried: the post was deferred again with no transaction, its attempt
    // counted and its next retry put off twice as long. The flushed entry tries them at once.
    [Fact]
    public void Queue_flush_tries_a_relay_in_backoff_at_once()
    {
        var port = Net.FreePort(); // nothing listens yet: the relay refuses
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(3));
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = port);
        h.Inject("dev@example.org", Posts.Plain());
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
        var retry = h.Queues[QueueSet.Retry];
        var deferred = Assert.Single(retry.Pending());
        var pool = h.Outgoing.Relays;
        var relay = Assert.Single(pool.Relays);
        Assert.True(relay.IsDown);
        lock (pool.Gate)
        {
            relay.DownUntil = pool.Time.GetTimestamp() + 60 * pool.Time.TimestampFrequency; // a minute's backoff, as after a few failed tries
        }

        using var sink = SmtpSink.StartOn(port);
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["queue", "flush"]).ExitCode);
        Assert.Equal(1, RunnerHarness.Drain(h.Retry));
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));

        Assert.Equal(3, Wait.For(() => sink.Messages() is { Count: 3 } m ? m : null, TimeSpan.FromSeconds(30), "three copies").Count);
        Assert.Empty(retry.Pending());
        Assert.Contains(h.Logs.Lines, l => l.Contains($"tried again now, before its backoff ends: `queue flush` asked for {deferred}", StringComparison.Ordinal));
    }

    // A three-member list whose post waits in out, the harness delivering to the sink.
    private RunnerHarness ThreeMembersInOut(SmtpSink sink, Action<Mailman.Instance.MailmanOptions> configure)
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(3));
        var h = new RunnerHarness(_instance, o =>
        {
            o.Smtp.Port = sink.Port;
            configure(o);
        });
        h.Inject("dev@example.org", Posts.Plain());
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        return h;
    }

    // Backoffs of 1, 2, 3, 3 ... minutes and a lifetime of 10.
    private RunnerHarness ThreeMembersInOutWithShortRetries(SmtpSink sink) => ThreeMembersInOut(sink, o =>
    {
        o.Retry.MinimumDelay = TimeSpan.FromMinutes(1);
        o.Retry.MaximumDelay = TimeSpan.FromMinutes(3);
        o.Retry.MaximumLifetime = TimeSpan.FromMinutes(10);
    });

    [Fact]
    public void Deferred_recipients_back_off_exponentially_and_give_up_after_the_lifetime()
    {
        using var sink = SmtpSink.Start("-r", "RCPT");
        using var h = ThreeMembersInOutWithShortRetries(sink);

        var retry = h.Queues[QueueSet.Retry];
        var expectedDelays = new[] { 1, 2, 3, 3 };
        foreach (var minutes in expectedDelays)
        {
            Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
            var metadata = retry.ReadMetadata(Assert.Single(retry.Pending()));
            Assert.Equal(3, metadata.RecipientCount);
            Assert.Equal(h.Time.GetUtcNow().AddMinutes(minutes), metadata.NotBefore);
            h.Time.Advance(TimeSpan.FromMinutes(minutes));
            Assert.Equal(1, RunnerHarness.Drain(h.Retry));
        }

        // 9 minutes in: one more failure, then the lifetime (10 minutes) is over.
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
        h.Time.Advance(TimeSpan.FromMinutes(3));
        RunnerHarness.Drain(h.Retry);
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
        Assert.Empty(retry.Pending());
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
        Assert.Empty(sink.Messages());

        // Each run's summary counts its deferrals; the last one says they were given up, not sent to retry.
        var summaries = h.Logs.Lines.Where(l => l.Contains(" delivered: 3 recipients, 0 delivered, 3 deferred, 0 bounced", StringComparison.Ordinal)).ToList();
        Assert.True(summaries.Count == 6, string.Join("\n", h.Logs.Lines));
        Assert.All(summaries[..^1], l => Assert.DoesNotContain("given up", l, StringComparison.Ordinal));
        Assert.EndsWith("; the retry lifetime expired: 3 deferred recipients given up, none sent to retry", summaries[^1], StringComparison.Ordinal);
    }

    // One more failed attempt, the longest backoff (3 minutes) on: still in retry, or given up.
    private static void FailsAgain(RunnerHarness h, bool staysInRetry)
    {
        h.Time.Advance(TimeSpan.FromMinutes(3));
        Assert.Equal(1, RunnerHarness.Drain(h.Retry));
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
        Assert.Equal(staysInRetry, h.Queues[QueueSet.Retry].Pending().Count == 1);
    }

    // Review 42: a clock stepped forward between two attempts (6 days: a VM restored from a
    // snapshot) gave up every recipient in retry at the next failure; one stepped back left the
    // entry due a year ahead, where the clock had been.
    [Fact]
    public void A_clock_step_neither_ends_the_retry_lifetime_nor_stalls_the_next_attempt()
    {
        using var sink = SmtpSink.Start("-r", "RCPT");
        using var h = ThreeMembersInOutWithShortRetries(sink);
        var retry = h.Queues[QueueSet.Retry];
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
        h.Time.Advance(TimeSpan.FromDays(6));
        Assert.Equal(1, RunnerHarness.Drain(h.Retry));
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
        var metadata = retry.ReadMetadata(Assert.Single(retry.Pending()));
        Assert.Equal((3, 2), (metadata.RecipientCount, metadata.Attempts));
        Assert.DoesNotContain(h.Logs.Lines, l => l.Contains("gave up", StringComparison.Ordinal));

        // Written by a clock a year ahead: due now all the same (further than Retry:MaximumDelay).
        RetryTestHelper.SetNotBefore(_instance, h.Time.GetUtcNow().AddDays(365));
        Assert.Equal(1, RunnerHarness.Drain(h.Retry));
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));

        // Within the longest backoff it waits as it should.
        metadata = retry.ReadMetadata(Assert.Single(retry.Pending()));
        Assert.Equal(h.Time.GetUtcNow().AddMinutes(3), metadata.NotBefore);
        Assert.Equal(0, RunnerHarness.Drain(h.Retry));

        // The lifetime ends once the backoffs waited add up to it: 1 + 2 + 3 + 3 + 3 minutes.
        for (var attempt = 4; attempt <= 6; attempt++)
        {
            FailsAgain(h, staysInRetry: attempt < 6);
        }

        Assert.Contains(h.Logs.Lines, l => l.Contains("Retry lifetime of", StringComparison.Ordinal) && l.Contains("expired: 3 recipients given up (each named above; not scored against them", StringComparison.Ordinal));
        Assert.Empty(sink.Messages());
    }

    // Review 43: a first attempt stamped by a clock a year ahead kept the recipients in retry for
    // that year (now - FirstAttempt stayed negative); the backoffs waited end it.
    [Fact]
    public void A_first_attempt_stamped_by_a_clock_that_was_ahead_still_ends_with_the_lifetime()
    {
        using var sink = SmtpSink.Start("-r", "RCPT");
        using var h = ThreeMembersInOutWithShortRetries(sink);
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
        RetryTestHelper.Rewrite(_instance, m => m.FirstAttempt = h.Time.GetUtcNow().AddDays(365));
        for (var attempt = 2; attempt <= 6; attempt++)
        {
            FailsAgain(h, staysInRetry: attempt < 6);
        }

        Assert.Contains(h.Logs.Lines, l => l.Contains("expired: 3 recipients given up (each named above; not scored against them", StringComparison.Ordinal));
    }

    // A delivery stopped after one member was deferred, then resumed: the resumed run's summary
    // counts its own copies (0 deferred), and with the earlier runs' they make every member once;
    // it says the earlier run deferred one, which is in retry (review 133: "0 deferred" alone).
    [Fact]
    public void A_resumed_delivery_counts_this_runs_deferrals_and_the_earlier_ones_go_to_retry()
    {
        _instance.CreateList("dev@example.org", l =>
        {
            l.NonMemberAction = NonMemberAction.Accept;
            l.Personalize = Personalization.Full;
        });
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(6));
        using var stop = new CancellationTokenSource();
        using var server = ScriptedSmtpServer.Start(rcpt: a =>
        {
            if (!a.StartsWith("m00001@", StringComparison.Ordinal))
            {
                return null;
            }

            stop.Cancel();
            return ScriptedSmtpServer.Reply(451, "4.3.0 try again later");
        });
        using var h = new RunnerHarness(_instance, o =>
        {
            o.Smtp.Port = server.Port;
            o.Smtp.CheckpointRecipients = 1;
            o.Smtp.Connections = 1; // one chunk after the other: the stop leaves some for the next run
        });
        h.Inject("dev@example.org", Posts.Plain());
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);

        h.Outgoing.RunOnce(stop.Token);
        Assert.Single(h.Queues[QueueSet.Out].Pending()); // stopped: stays in out with its checkpoint
        var first = server.Received.Count;
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));

        var summary = System.Text.RegularExpressions.Regex.Match(string.Join("\n", h.Logs.Lines), @"delivered: 6 recipients, (\d+) delivered, 0 deferred, 0 bounced.*; resumed: (\d+) recipients were handled in earlier runs \(delivered, deferred or refused there; 1 deferred, with this run's\)");
        Assert.True(summary.Success, string.Join("\n", h.Logs.Lines));
        Assert.Equal(6, int.Parse(summary.Groups[1].Value, CultureInfo.InvariantCulture) + int.Parse(summary.Groups[2].Value, CultureInfo.InvariantCulture));
        Assert.Equal(5 - first, int.Parse(summary.Groups[1].Value, CultureInfo.InvariantCulture));
        var retry = h.Queues[QueueSet.Retry];
        Assert.Equal(["m00001@example.com"], retry.Recipients(retry.Load(retry.Claim(Assert.Single(retry.Pending()))!)).Select(r => r.Address));
    }

    [Fact]
    public void The_backoff_counts_from_the_end_of_the_delivery_not_its_start()
    {
        using var sink = SmtpSink.Start("-r", "RCPT");
        using var h = ThreeMembersInOut(sink, o =>
        {
            o.Smtp.CheckpointRecipients = 1;
            o.Retry.MinimumDelay = TimeSpan.FromMinutes(1);
        });

        // A long delivery: every reading of the clock during it is a minute later.
        var before = h.Time.GetUtcNow();
        h.Time.AutoAdvanceAmount = TimeSpan.FromMinutes(1);
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
        h.Time.AutoAdvanceAmount = TimeSpan.Zero;
        var after = h.Time.GetUtcNow();

        var metadata = h.Queues[QueueSet.Retry].ReadMetadata(Assert.Single(h.Queues[QueueSet.Retry].Pending()));
        Assert.True(metadata.FirstAttempt < metadata.NotBefore!.Value.AddMinutes(-1), $"first attempt {metadata.FirstAttempt} is the delivery's start");
        Assert.True(metadata.NotBefore >= after, $"next attempt {metadata.NotBefore} due by the end of the delivery ({before} to {after})");
    }

    [Fact]
    public void A_5xx_about_the_address_is_a_bounce_and_is_not_retried()
    {
        // About each address (5.1.1, two replies): bounces. The same 5xx to everyone is the
        // relay's, and waits in retry instead (BounceRunnerTests).
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(3));
        using var server = ScriptedSmtpServer.Start(rcpt: a => ScriptedSmtpServer.Reply(550, a.StartsWith("m00001", StringComparison.Ordinal) ? "5.1.1 <" + a + ">: User unknown" : "5.2.1 mailbox disabled"));
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = server.Port);
        h.Inject("dev@example.org", Posts.Plain());
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
        Assert.Empty(h.Queues[QueueSet.Retry].Pending());
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
    }
}
