// `mailman pending` and `members add --welcome/--no-welcome`, run as a real process against a
// temp instance whose pending requests the real request runner made.
using Mailman.Lists;
using Mailman.Tests.Runners;
using Mailman.TestSupport;

namespace Mailman.Tests.Cli;

public sealed class PendingCommandTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    private ProcessResult Run(params string[] args) => MailmanProcess.Run(_instance.Home, args);

    private bool IsMember(string address)
    {
        using var store = new ListStore(_instance.Paths.Database);
        return store.IsMember(ListName.Parse("dev@example.org"), address);
    }

    // anne@example.com's join mailed to dev@example.org, run by the request runner, its mail delivered.
    private void AnneAsksToJoin()
    {
        using var h = new RunnerHarness(_instance);

        // The verbs judge expiry by the real clock.
        if (DateTimeOffset.UtcNow > h.Time.GetUtcNow())
        {
            h.Time.SetUtcNow(DateTimeOffset.UtcNow);
        }

        h.InjectRequest("dev-join@example.org", RequestRunnerTests.Mail("dev-join@example.org"), "anne@example.com");
        RunnerHarness.Drain(h.Requests);
        RequestRunnerTests.Deliver(h);
    }

    [Fact]
    public void Subscriptions_awaiting_a_moderator_are_listed_shown_approved_and_rejected_from_the_command_line()
    {
        _instance.CreateList("dev@example.org", l => l.Set("subscription_policy", "moderate"));
        using (var h = new RunnerHarness(_instance))
        {
            // The verbs judge expiry by the real clock.
            if (DateTimeOffset.UtcNow > h.Time.GetUtcNow())
            {
                h.Time.SetUtcNow(DateTimeOffset.UtcNow);
            }

            h.InjectRequest("dev-join@example.org", RequestRunnerTests.Mail("dev-join@example.org"), "anne@example.com");
            h.Time.Advance(TimeSpan.FromSeconds(1));
            h.InjectRequest("dev-join@example.org", RequestRunnerTests.Mail("dev-join@example.org", from: "Bob <bob@example.com>", id: "b@example.com"), "bob@example.com");
            RunnerHarness.Drain(h.Requests);
            RequestRunnerTests.Deliver(h);
        }

        var list = Run("pending", "list").Stdout.Trim().Split('\n');
        Assert.Equal(2, list.Length);
        Assert.Matches(@"^1\tdev@example.org\tmoderate-subscribe\tAnne <anne@example.com>\tasked .*\texpires ", list[0]);
        Assert.Contains("address: bob@example.com", Run("pending", "show", "2").Stdout, StringComparison.Ordinal);

        var approve = Run("pending", "confirm", "1");
        Assert.Equal(0, approve.ExitCode);
        Assert.Equal("anne@example.com is now subscribed to dev@example.org", approve.Stdout.Trim());
        Assert.True(IsMember("anne@example.com"));
        Assert.Equal(1, _instance.Count("out")); // the welcome

        var again = Run("pending", "confirm", "1");
        Assert.Equal(Mailman.Cli.ExitCodes.NoUser, again.ExitCode);
        Assert.StartsWith("mailman: no pending request 1", Assert.Single(again.Stderr.Trim().Split('\n')), StringComparison.Ordinal);

        var reject = Run("pending", "discard", "2", "--reason", "members of the team only");
        Assert.Equal(0, reject.ExitCode);
        Assert.False(IsMember("bob@example.com"));
        Assert.Equal(2, _instance.Count("out")); // the refusal
        Assert.Empty(Run("pending", "list", "dev@example.org").Stdout.Trim());
        Assert.Contains(File.ReadAllText(Directory.GetFiles(_instance.Paths.LogsDirectory, "subscribe-*.log").Single()).Split('\n'),
            l => l.Contains("Join: anne@example.com subscribed to dev@example.org (approved by the command line", StringComparison.Ordinal));

        Assert.Equal(Mailman.Cli.ExitCodes.Usage, Run("pending", "confirm", "../../etc").ExitCode);
        Assert.Equal(Mailman.Cli.ExitCodes.NoUser, Run("pending", "confirm", "0123456789abcdef0123456789abcdef").ExitCode);
    }

    // Review 133: `pending discard N --reason R` of a request awaiting the address's own
    // confirmation said "rejected" and told nobody. It is discarded, and says the address is not
    // told (its asking may be forged: a refusal would be backscatter).
    [Fact]
    public void A_reason_for_a_request_awaiting_the_addresss_confirmation_is_not_sent_and_says_so()
    {
        _instance.CreateList("dev@example.org");
        AnneAsksToJoin();

        var discard = Run("pending", "discard", "1", "--reason", "no thanks");
        Assert.Equal(0, discard.ExitCode);
        Assert.StartsWith("the subscription request of anne@example.com was discarded; anne@example.com is not told (a reason is sent only for a request awaiting a moderator", discard.Stdout.Trim(), StringComparison.Ordinal);
        Assert.Equal(0, _instance.Count("out"));
        Assert.Empty(Run("pending", "list").Stdout.Trim());
    }

    // Review 127: `pending discard N --reason R` killed after it used the request and before it
    // queued the refusal lost the refusal, and run again it said "no pending request N". The
    // refusal is owed in the use's transaction, with its reason; the daemon sends what the dead
    // command line left, once. Review 128: a full out queue there said "make room and try
    // again", and trying again said "no pending request N": the command now says it decided.
    [Theory]
    [InlineData("signal=KILL")]
    [InlineData("error=ENOSPC")]
    public void A_refusal_left_by_a_command_line_stopped_before_queuing_it_is_sent_by_the_daemon_with_its_reason(string fault)
    {
        Assert.True(Strace.IsInstalled, "strace is missing: apt-get install strace (see .ci/run)");
        _instance.CreateList("dev@example.org", l => l.Set("subscription_policy", "moderate"));
        AnneAsksToJoin();

        // Its first rename is the refusal's, into out: killed there, or refused for a full disk
        // (and the link .NET falls back on), after the use's commit.
        var stopped = Strace.Run(_instance.Home, ["pending", "discard", "1", "--reason", "members of the team only"], "rename,renameat,renameat2,link,linkat", fault, 1);
        if (fault == "signal=KILL")
        {
            Assert.Equal(137, stopped.ExitCode);
        }
        else
        {
            Assert.Equal(0, stopped.ExitCode);
            Assert.StartsWith("mailman: request 1 is decided (reject members of the team only), but the notice it owes could not be queued (", stopped.Stderr, StringComparison.Ordinal);
            Assert.Contains("the daemon sends it when it can write its out queue", stopped.Stderr, StringComparison.Ordinal);
        }

        Assert.Equal(0, _instance.Count("out"));
        Assert.Equal(Mailman.Cli.ExitCodes.NoUser, Run("pending", "discard", "1", "--reason", "again").ExitCode); // used: the refusal is the first one's

        using var sink = SmtpSink.Start();
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port); // exit 0, or it throws
        var refusal = Assert.Single(sink.Messages());
        Assert.Equal(["anne@example.com"], refusal.Recipients);
        Assert.Contains("members of the team only", refusal.Text, StringComparison.Ordinal);
        Assert.False(IsMember("anne@example.com"));
        using (var store = new ListStore(_instance.Paths.Database))
        {
            Assert.Empty(store.OwedNotices());
        }

        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port); // exit 0, or it throws
        Assert.Single(sink.Messages());
    }

    // `pending confirm N` of a confirm_then_moderate request killed after its transaction, or
    // refused by a full disk, left the moderators untold until the daily summary, and the full
    // disk's line said the daemon would send what it owed. Their notice is owed in the
    // transaction that puts the request before them: the daemon tells them, once.
    [Theory]
    [InlineData("signal=KILL", false)]
    [InlineData("error=ENOSPC", false)]
    [InlineData("signal=KILL", true)]
    public void Moderators_left_untold_by_a_command_line_stopped_before_telling_them_are_told_by_the_daemon(string fault, bool decidedMeanwhile)
    {
        Assert.True(Strace.IsInstalled, "strace is missing: apt-get install strace (see .ci/run)");
        _instance.CreateList("dev@example.org", l => l.Set("subscription_policy", "confirm_then_moderate"));
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.AddRole(ListName.Parse("dev@example.org"), ListRole.Moderator, [new Member("mod@example.net", "Mod")]);
        }

        AnneAsksToJoin(); // her confirmation, delivered

        // Its second rename is the moderator's notice, into out, after the use's commit (the
        // first, inside the transaction, keeps the highest request number: var/pending.last);
        // refused, .NET tries a link next (its first): refused too.
        var stopped = Strace.Run(_instance.Home, ["pending", "confirm", "1"], "rename,renameat,renameat2", fault, 2, alsoInject: $"link,linkat:{fault}:when=1");
        if (fault == "signal=KILL")
        {
            Assert.Equal(137, stopped.ExitCode);
        }
        else
        {
            Assert.Equal(0, stopped.ExitCode);
            Assert.StartsWith("mailman: request 1 is confirmed and now awaits a moderator, but the moderators' notices could not be queued (", stopped.Stderr, StringComparison.Ordinal);
        }

        Assert.Equal(0, _instance.Count("out"));
        using (var store = new ListStore(_instance.Paths.Database))
        {
            Assert.Equal([PendingKind.ModerateSubscription], store.PendingRequests().Select(r => r.Kind));
        }

        using var sink = SmtpSink.Start();
        if (decidedMeanwhile)
        {
            // A moderator found it in `pending list` and dropped it: nobody is told of it, and it
            // is not put before them again (review 142).
            Assert.Equal(0, Run("pending", "discard", "2").ExitCode);
            MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port); // exit 0, or it throws
            Assert.Empty(sink.Messages());
            using var decided = new ListStore(_instance.Paths.Database);
            Assert.Empty(decided.OwedNotices());
            Assert.Empty(decided.PendingRequests());
            return;
        }

        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port); // exit 0, or it throws
        var told = Assert.Single(sink.Messages());
        Assert.Equal(["mod@example.net"], told.Recipients);
        Assert.Contains("anne@example.com", told.Text, StringComparison.Ordinal);
        Assert.False(IsMember("anne@example.com"));
        using (var store = new ListStore(_instance.Paths.Database))
        {
            Assert.Empty(store.OwedNotices());
            Assert.Equal([PendingKind.ModerateSubscription], store.PendingRequests().Select(r => r.Kind));
        }

        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port); // exit 0, or it throws
        Assert.Single(sink.Messages());
    }

    // `pending confirm N` of a confirm_then_moderate request used the address's request in one
    // transaction and put it before the moderators in another: killed between, the subscription
    // was lost ("no pending request N" when run again). Killed at each of its writes to the
    // database, the request is still the address's or awaits the moderators.
    [Fact]
    public void Pending_confirm_of_confirm_then_moderate_killed_at_any_database_write_leaves_the_request_waiting()
    {
        Assert.True(Strace.IsInstalled, "strace is missing: apt-get install strace (see .ci/run)");
        _instance.CreateList("dev@example.org", l => l.Set("subscription_policy", "confirm_then_moderate"));
        var dev = ListName.Parse("dev@example.org");
        for (var write = 1; ; write++)
        {
            long id;
            using (var store = new ListStore(_instance.Paths.Database))
            {
                foreach (var r in store.PendingRequests())
                {
                    store.DeletePending(r.Id);
                }

                store.UpsertPending(dev, PendingKind.Subscribe, "anne@example.com", "anne@example.com", "Anne", Mailman.Requests.SubscriptionRequests.ThenModerate,
                    DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1));
                id = store.PendingRequests().Single().Id;
            }

            var run = Strace.Run(_instance.Home, ["pending", "confirm", id.ToString(System.Globalization.CultureInfo.InvariantCulture)], "write,pwrite64", "signal=KILL", write,
                path: _instance.Paths.Database + "-wal");
            using (var store = new ListStore(_instance.Paths.Database))
            {
                var kinds = store.PendingRequests().Select(r => r.Kind).ToList();
                Assert.True(kinds is [PendingKind.Subscribe] or [PendingKind.ModerateSubscription], $"killed at write {write} ({run.ExitCode}): {string.Join(", ", kinds)}");
            }

            if (run.ExitCode == 0)
            {
                Assert.Contains("awaits the approval of a moderator", run.Stdout, StringComparison.Ordinal);
                Assert.True(write > 2, "the command wrote to the database without being killed");
                break;
            }

            Assert.Equal(137, run.ExitCode);
            Assert.True(write < 100, run.Stderr);
        }
    }

    // Review 129: `pending confirm N` of a held post said "requests of kind held-post cannot be
    // confirmed here"; it names the verb that decides it, and the post stays held.
    [Fact]
    public void Pending_confirm_of_a_held_post_names_the_held_verb()
    {
        _instance.CreateList("dev@example.org");
        string id;
        using (var h = new RunnerHarness(_instance))
        {
            h.Queues[Mailman.Queues.QueueSet.In].Enqueue(new Mailman.Queues.EntryMetadata { List = "dev@example.org", Sender = "stranger@example.net", Received = h.Time.GetUtcNow() },
                System.Text.Encoding.UTF8.GetBytes("From: stranger@example.net\nTo: dev@example.org\nSubject: Hi\nMessage-Id: <h@example.net>\n\nHello.\n"));
            RunnerHarness.Drain(h.Incoming);
            id = Assert.Single(h.Queues[Mailman.Queues.QueueSet.Hold].Pending());
        }

        var confirm = Run("pending", "confirm", "1");
        Assert.Equal(Mailman.Cli.ExitCodes.DataError, confirm.ExitCode);
        Assert.Equal($"mailman: request 1 is the held post {id}: `mailman held approve|reject|discard {id}` decides it", confirm.Stderr.Trim());
        Assert.Equal(1, _instance.Count("hold"));
    }

    [Fact]
    public void Members_add_welcomes_new_members_as_the_list_says_unless_told_otherwise()
    {
        Assert.Equal(0, Run("lists", "create", "dev@example.org").ExitCode);
        Assert.Contains("1 added, 0 already members, 1 welcomed", Run("members", "add", "dev@example.org", "Anne <anne@example.com>").Stdout, StringComparison.Ordinal);
        Assert.Equal(1, _instance.Count("out"));
        Assert.Equal(0, Run("members", "add", "dev@example.org", "anne@example.com", "bob@example.com", "--no-welcome").ExitCode);
        Assert.Equal(1, _instance.Count("out"));

        Assert.Equal(0, Run("lists", "set", "dev@example.org", "send_welcome_message", "false").ExitCode);
        Assert.Equal(0, Run("members", "add", "dev@example.org", "carol@example.com").ExitCode);
        Assert.Equal(1, _instance.Count("out"));
        Assert.Equal(0, Run("members", "add", "dev@example.org", "dave@example.com", "--welcome").ExitCode);
        Assert.Equal(2, _instance.Count("out"));
        Assert.Equal(64, Run("members", "add", "dev@example.org", "eve@example.com", "--welcome", "--no-welcome").ExitCode);
    }
}
