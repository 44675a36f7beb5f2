// Component tests: held posts through the real runners on a temp instance with a fake clock.
// Holding tells the moderators and the poster; approve, reject, discard, defer, a moderator's
// reply and the expiry sweep act once; bad ids and vanished entries are refused cleanly.
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Queues;
using Mailman.Requests;
using Mailman.Tests.Runners;
using Mailman.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Mailman.Tests.Moderation;

public sealed class HeldPostsTests : IDisposable
{
    private const string List = "dev@example.org";
    private readonly TempInstance _instance = new();

    public HeldPostsTests()
    {
        _instance.CreateList(List);
        _instance.AddMembers(List, [new Member("ann@example.com", "Ann"), new Member("bob@example.com", "Bob")]);
    }

    public void Dispose() => _instance.Dispose();

    private static ListName Name => ListName.Parse(List);

    private void Roles(string role, params string[] people)
    {
        using var store = new ListStore(_instance.Paths.Database);
        store.AddRole(Name, role, people.Select(Member.Parse));
    }

    private void Configure(Action<MailingList> change)
    {
        using var store = new ListStore(_instance.Paths.Database);
        var list = store.GetList(Name);
        change(list);
        store.SaveList(list);
    }

    private static string Hold(RunnerHarness h, string from = "stranger@example.net", string extra = "")
    {
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = from, Received = h.Time.GetUtcNow() },
            System.Text.Encoding.UTF8.GetBytes($"From: Stranger <{from}>\nTo: {List}\nSubject: Hello there\nMessage-Id: <{(from == "stranger@example.net" ? "held" : "held." + from.Replace('@', '.'))}@example.net>\n{extra}\nPlease post this.\n"));
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        return Assert.Single(h.Queues[QueueSet.Hold].Pending());
    }

    // The held post Hold makes, sent to the list again.
    private static void ResendHeld(RunnerHarness h) => h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = "stranger@example.net", Received = h.Time.GetUtcNow() },
        System.Text.Encoding.UTF8.GetBytes($"From: Stranger <stranger@example.net>\nTo: {List}\nSubject: Hello there\nMessage-Id: <held@example.net>\n\nPlease post this.\n"));

    private static int DuplicateLines(RunnerHarness h) => h.Logs.Lines.Count(l => l.Contains("a duplicate of entry", StringComparison.Ordinal));

    // Every waiting out entry, parsed, left in place.
    private static List<(EntryMetadata Metadata, MimeMessage Message, List<Recipient> To)> Out(RunnerHarness h)
    {
        var q = h.Queues[QueueSet.Out];
        var result = new List<(EntryMetadata, MimeMessage, List<Recipient>)>();
        foreach (var name in q.Pending())
        {
            var claim = q.Claim(name)!;
            var entry = q.Load(claim);
            result.Add((entry.Metadata, MimeMessage.Load(new MemoryStream(entry.Message)), q.Recipients(entry).ToList()));
            q.Unclaim(claim);
        }

        return result;
    }

    private static string Token(MimeMessage notice)
    {
        var replyTo = Assert.Single(notice.ReplyTo.Mailboxes).Address;
        Assert.Matches("^dev-confirm\\+[0-9a-f]{32}@example\\.org$", replyTo);
        return replyTo["dev-confirm+".Length..replyTo.IndexOf('@', StringComparison.Ordinal)];
    }

    private PendingRequest? Pending(string token, RunnerHarness h)
    {
        using var store = new ListStore(_instance.Paths.Database);
        return store.FindPending(token, h.Time.GetUtcNow());
    }

    [Fact]
    public void A_held_post_tells_each_owner_and_moderator_once_with_the_post_attached_and_the_poster_that_it_awaits_approval()
    {
        Roles(ListRole.Owner, "Olga <olga@example.com>", "oscar@example.com", "ida@bücher.example");
        Roles(ListRole.Moderator, "Mo <mo@example.com>", "OLGA@example.com", "IDA@XN--BCHER-KVA.EXAMPLE");
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);

        var metadata = h.Queues[QueueSet.Hold].ReadMetadata(id);
        Assert.Equal(h.Time.GetUtcNow(), metadata.HeldAt);
        Assert.StartsWith("nonmember-moderation: ", Assert.Single(metadata.HoldReasons!), StringComparison.Ordinal);

        var notices = Out(h);
        Assert.Equal(5, notices.Count);
        var moderators = notices.Where(n => n.Message.Headers["X-Mailman-Notice"] == "list:admin:action:post").ToList();
        Assert.Equal(["ida@bücher.example", "mo@example.com", "olga@example.com", "oscar@example.com"], moderators.Select(n => Assert.Single(n.To).Address).Order());
        foreach (var (m, message, to) in moderators)
        {
            Assert.Equal("dev-owner@example.org", Assert.Single(message.From.Mailboxes).Address);
            Assert.Equal("auto-generated", message.Headers[HeaderId.AutoSubmitted]);
            Assert.Equal(Mailman.Delivery.Verp.Encode(Name, to[0].Address), m.EnvelopeSender);
            Assert.StartsWith($"dev-bounces+{to[0].Address.Split('@')[0]}=", m.EnvelopeSender, StringComparison.Ordinal);
            Assert.Contains(id, message.TextBody, StringComparison.Ordinal);
            Assert.Contains("post from non-member stranger@example.net", message.TextBody, StringComparison.Ordinal);
            var attached = Assert.Single(Assert.IsType<Multipart>(message.Body).OfType<MessagePart>());
            Assert.Equal("held@example.net", attached.Message?.MessageId);
            var request = Assert.IsType<PendingRequest>(Pending(Token(message), h));
            Assert.Equal((PendingKind.HeldPost, id), (request.Kind, request.Key));
        }

        Assert.Single(moderators.Select(n => Token(n.Message)).Distinct());
        var poster = Assert.Single(notices, n => n.Message.Headers["X-Mailman-Notice"] == "list:user:notice:hold");
        Assert.Equal("stranger@example.net", Assert.Single(poster.To).Address);
        Assert.Equal("auto-replied", poster.Message.Headers[HeaderId.AutoSubmitted]);
        Assert.Equal("held@example.net", poster.Message.InReplyTo);
        Assert.Contains("awaits moderator approval", poster.Message.Subject, StringComparison.Ordinal);

        // It promises what follows: approval posts it, a rejection is told, a discard is silent
        // (review 49: it said "You will be told when the moderator decides, or you may cancel nothing").
        Assert.Contains("If the moderator approves it, it is posted to the list; if the moderator\nrejects it, you will be told why.", poster.Message.TextBody!.ReplaceLineEndings("\n"), StringComparison.Ordinal);
    }

    // Review 98: a database restored from a backup listed requests for posts decided since (they
    // never expired) and had none for posts held since (their mailed tokens did not work). The
    // daemon's first sweep makes them match hold again.
    [Fact]
    public void The_held_posts_requests_are_made_to_match_hold_with_the_tokens_that_were_mailed()
    {
        Roles(ListRole.Moderator, "mo@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var token = Token(Assert.Single(Out(h), n => n.Message.Headers["X-Mailman-Notice"] == "list:admin:action:post").Message);
        using (var store = new ListStore(_instance.Paths.Database))
        {
            // As a restore leaves them: this post's request gone, one for a post no longer held.
            Assert.True(store.DeletePending(store.FindPending(Name, PendingKind.HeldPost, id)!.Id));
            store.UpsertPending(Name, PendingKind.HeldPost, "20261101T000000000-0001-gone", "x@example.net", "", "decided since", h.Time.GetUtcNow(), DateTimeOffset.MaxValue);
        }

        Assert.Null(Pending(token, h));
        h.Time.Advance(TimeSpan.FromMinutes(2));
        using (var store = new ListStore(_instance.Paths.Database))
        {
            Assert.Equal((1, 1), h.Held.Reconcile(store));
        }

        var again = Assert.IsType<PendingRequest>(Pending(token, h));
        Assert.Equal(id, again.Key);
        Assert.Equal("stranger@example.net", again.Address);
        using (var store = new ListStore(_instance.Paths.Database))
        {
            Assert.Equal([id], store.PendingRequests().Select(r => r.Key));
        }

        using (var store = new ListStore(_instance.Paths.Database))
        {
            Assert.Equal((0, 0), h.Held.Reconcile(store));
        }

        Assert.Contains(h.Logs.Lines, l => l.Contains("given one again", StringComparison.Ordinal));
    }

    // Review 69: a post with a header line over 998 characters went to the moderators (and back
    // to the poster when rejected) with that line as it was: a relay may refuse the notice.
    [Fact]
    public void A_held_post_with_an_overlong_header_line_is_attached_as_its_headers_with_the_line_cut()
    {
        Roles(ListRole.Moderator, "mo@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Hold(h, extra: "X-Long: " + new string('a', 1500) + "\nX-Wide: " + string.Concat(Enumerable.Repeat("é", 1200)) + "\n");

        var notice = Assert.Single(Out(h), n => n.Message.Headers["X-Mailman-Notice"] == "list:admin:action:post").Message;
        AttachedAsHeaders(notice);
        using var bytes = new MemoryStream();
        notice.WriteTo(Mailman.Delivery.WireFormat.Options, bytes);
        var lines = bytes.ToArray().AsSpan();
        var longest = 0;
        foreach (var range in lines.Split((byte)'\n'))
        {
            longest = Math.Max(longest, lines[range].TrimEnd((byte)'\r').Length);
        }

        Assert.InRange(longest, 1, 998);
        var text = System.Text.Encoding.UTF8.GetString(lines);
        Assert.Contains("Subject: Hello there", text, StringComparison.Ordinal);
        Assert.Contains("X-Long: aaaa", text, StringComparison.Ordinal);
        Assert.Equal(2, text.Split("[cut: the line was longer than 998 characters]").Length - 1);
        Assert.DoesNotContain("\uFFFD", text, StringComparison.Ordinal); // no UTF-8 sequence split

        // The rejection sent to the poster attaches it the same way.
        Assert.True(h.Held.Reject(id, "no", "cli:test").Done);
        var rejected = Assert.Single(Out(h), n => n.Message.Headers["X-Mailman-Notice"] == "list:user:notice:rejected").Message;
        AttachedAsHeaders(rejected);

        // (MimeKit reads text/rfc822-headers back as a MessagePart of its own.)
        static void AttachedAsHeaders(MimeMessage notice)
        {
            var parts = Assert.IsType<Multipart>(notice.Body);
            Assert.DoesNotContain(parts, p => p.ContentType.MimeType == "message/rfc822");
            Assert.Single(parts, p => p.ContentType.MimeType == "text/rfc822-headers");
        }
    }

    // The moderators' notice of a post from a stranger, held by the real incoming runner.
    private MimeMessage ModeratorsNotice(string post)
    {
        Roles(ListRole.Moderator, "mo@example.com");
        using var h = new RunnerHarness(_instance);
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = "stranger@example.net", Received = h.Time.GetUtcNow() }, System.Text.Encoding.UTF8.GetBytes(post));
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        return Assert.Single(Out(h), n => n.Message.Headers["X-Mailman-Notice"] == "list:admin:action:post").Message;
    }

    // RFC 6532 3.7: a held post whose header block is raw UTF-8 goes to the moderators as message/global.
    [Fact]
    public void A_post_with_raw_UTF8_headers_is_attached_as_message_global()
    {
        var notice = ModeratorsNotice($"From: Zoë <stranger@example.net>\nTo: {List}\nSubject: Grüße\nMessage-Id: <held@example.net>\n\nPlease post this.\n");
        var part = Assert.IsType<MessagePart>(Assert.IsType<Multipart>(notice.Body)[1]);
        Assert.Equal("message/global", part.ContentType.MimeType);
        Assert.Equal("Grüße", part.Message!.Subject);
    }

    // Review 75: a line of 999 with LF ends (as the MTA's pipe gives it) passed the check, and
    // a long body line was not looked at; 998 is allowed. Review 79: a long body line is
    // re-encoded (quoted-printable) as delivery does, and the post attached whole.
    [Theory]
    [InlineData("X-E: {994}\n", "", false)]
    [InlineData("X-E: {993}\n", "", true)]
    [InlineData("", "{2000}\n", true)]
    [InlineData("", "{998}\n", true)]
    public void A_post_is_attached_whole_only_when_no_line_is_longer_than_998(string header, string body, bool whole)
    {
        static string Expand(string s) => System.Text.RegularExpressions.Regex.Replace(s, @"\{(\d+)\}", m => new string('c', int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)));
        var notice = ModeratorsNotice($"From: Stranger <stranger@example.net>\nTo: {List}\nSubject: Hello there\nMessage-Id: <held@example.net>\n{Expand(header)}\nPlease post this.\n{Expand(body)}");
        var parts = Assert.IsType<Multipart>(notice.Body);
        Assert.Equal(whole ? "message/rfc822" : "text/rfc822-headers", parts[1].ContentType.MimeType);
        if (whole)
        {
            Assert.Contains(Expand(body).TrimEnd(), Assert.IsType<MessagePart>(parts[1]).Message!.TextBody, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Holding_again_after_a_crash_names_the_same_token_and_queues_no_second_notice()
    {
        Roles(ListRole.Owner, "olga@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var before = Out(h);
        var token = Token(before.Single(n => n.To[0].Address == "olga@example.com").Message);

        // The incoming runner's hold step run a second time for the same entry, as after a kill.
        var claim = h.Queues[QueueSet.Hold].Claim(id)!;
        var entry = h.Queues[QueueSet.Hold].Load(claim);
        var post = Mailman.Runners.PostParser.Parse(entry.Message);
        h.Queues[QueueSet.Hold].Unclaim(claim);
        var hold = h.Queues[QueueSet.Hold];
        h.Held.Put(Assert.IsType<MailingList>(new ListStore(_instance.Paths.Database).FindList(Name)), post, entry.Metadata, entry.Message.Length, id,
            [new RuleHit("nonmember-moderation", Verdict.Hold, "again")], (m, told) =>
            {
                told(); // as a hop killed before the rename: its notices are queued again
                return hold.Enqueue(m, entry.Message, name: id);
            });

        Assert.Equal(before.Count, Out(h).Count);
        Assert.Single(h.Queues[QueueSet.Hold].Pending());
        Assert.Equal(id, Pending(token, h)?.Key);
    }

    // Review 66: a `held approve` killed between its claim and its move left the post claimed
    // (NAME.bak, its rewrite's NAME.tmp beside it): every later action was refused as "acting on
    // it right now" until the daemon restarted. One action at a time holds var/hold.lock, so
    // the next one knows the claim's owner is gone and puts the post back first.
    [Fact]
    public void A_post_left_claimed_by_a_killed_action_is_put_back_and_the_next_action_takes_it()
    {
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var hold = h.Queues[QueueSet.Hold];
        Assert.NotNull(hold.Claim(id)); // the killed verb's claim, and its torn rewrite
        var temp = Path.Combine(_instance.QueueDir(QueueSet.Hold), id + ".tmp");
        File.WriteAllText(temp, "torn");

        var approved = h.Held.Approve(id, "mo@example.com");

        Assert.True(approved.Done, approved.Summary);
        Assert.Equal([id], h.Queues[QueueSet.In].Pending());
        Assert.Empty(hold.Pending());
        Assert.Empty(hold.Claimed());
        Assert.False(File.Exists(temp));
    }

    // Review 68: a directory at var/hold.lock was taken for another action holding the lock (a
    // dangling link made the action wait 30 s first): said at once, the post left held.
    [Theory]
    [InlineData("directory")]
    [InlineData("dangling link")]
    public void A_moderation_lock_that_is_no_file_is_named_at_once_and_the_post_stays_held(string kind)
    {
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var lockPath = Path.Combine(_instance.Paths.VarDirectory, "hold.lock");
        File.Delete(lockPath);
        if (kind == "directory")
        {
            Directory.CreateDirectory(lockPath);
        }
        else
        {
            File.CreateSymbolicLink(lockPath, "/nonexistent/hold.lock");
        }

        var approved = h.Held.Approve(id, "mo@example.com");

        Assert.False(approved.Done);
        Assert.Contains("hold.lock is not a regular file (a directory, a link or a FIFO?): remove it", approved.Summary, StringComparison.Ordinal);
        Assert.Equal([id], h.Queues[QueueSet.Hold].Pending());
    }

    [Fact]
    public void Settings_turn_the_notices_off_and_the_site_owner_stands_in_for_a_list_without_people()
    {
        using (var h = new RunnerHarness(_instance, o => o.SiteOwner = "site@example.com"))
        {
            Hold(h);
            Assert.Equal(["site@example.com", "stranger@example.net"], Out(h).Select(n => n.To[0].Address).Order());
        }

        using (var h = new RunnerHarness(_instance))
        {
            foreach (var n in h.Queues[QueueSet.Out].Pending())
            {
                h.Queues[QueueSet.Out].Finish(h.Queues[QueueSet.Out].Claim(n)!);
            }

            Configure(l =>
            {
                l.RespondToPostRequests = false;
                l.AdminImmedNotify = false;
            });
            h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = "x@example.net" }, ModerationFixture.Post("From: x@example.net\n"));
            RunnerHarness.Drain(h.Incoming);
            Assert.Equal(2, h.Queues[QueueSet.Hold].Pending().Count);
            Assert.Empty(Out(h));
        }
    }

    [Fact]
    public void Approve_sends_the_post_through_the_rest_of_the_chain_and_the_pipeline_once()
    {
        Roles(ListRole.Moderator, "mo@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var token = Token(Out(h).First(n => n.To[0].Address == "mo@example.com").Message);

        var first = h.Held.Approve(id, "cli:test");
        Assert.True(first.Done, first.Summary);
        var second = h.Held.Approve(id, "cli:test");
        Assert.False(second.Done);
        Assert.Contains("not held", second.Summary, StringComparison.Ordinal);
        Assert.Null(Pending(token, h));
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());
        Assert.Empty(h.Queues[QueueSet.Hold].Claimed());
        var metadata = h.Queues[QueueSet.In].ReadMetadata(id);
        Assert.True(metadata.Approved);
        Assert.Equal("cli:test", metadata.ApprovedBy);

        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Equal(1, RunnerHarness.Drain(h.Pipeline));
        var copy = Out(h).Single(n => n.Metadata.MessageId == "held@example.net");
        Assert.Equal(["ann@example.com", "bob@example.com"], copy.To.Select(r => r.Address));
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());
    }

    [Fact]
    public void Reject_tells_only_the_poster_why_discard_tells_nobody_and_defer_keeps_the_post()
    {
        Configure(l => l.RespondToPostRequests = false);
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        Assert.Empty(Out(h));

        Assert.True(h.Held.Defer(id, "cli:test").Done);
        Assert.Equal([id], h.Queues[QueueSet.Hold].Pending());

        var rejected = h.Held.Reject(id, "Off topic, see the list rules", "mo@example.com");
        Assert.True(rejected.Done, rejected.Summary);
        var notice = Assert.Single(Out(h));
        Assert.Equal("stranger@example.net", Assert.Single(notice.To).Address);
        Assert.Contains("Off topic, see the list rules", notice.Message.TextBody, StringComparison.Ordinal);
        Assert.Equal("auto-replied", notice.Message.Headers[HeaderId.AutoSubmitted]);
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());

        h.Queues[QueueSet.Out].Finish(h.Queues[QueueSet.Out].TryClaim()!);
        var other = Hold(h, from: "spammer@example.net");
        Assert.True(h.Held.Discard(other, "cli:test").Done);
        Assert.Empty(Out(h));
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());
        Assert.Empty(h.Queues[QueueSet.In].Pending());
    }

    // Review 111: a post the moderators rejected kept its Message-ID's record for a week, so the
    // poster's resend after a fix was discarded as a duplicate. A rejected, discarded or expired
    // post is forgotten; a held one is remembered while held (review 113: held past the week, its
    // resend was held again, and two approvals would deliver it twice), an approved one a week on.
    [Fact]
    public void A_post_the_moderators_rejected_or_discarded_may_come_again_and_one_held_or_approved_may_not()
    {
        Configure(l => l.RespondToPostRequests = false);
        using var h = new RunnerHarness(_instance);
        foreach (var act in new Func<string, ModerationOutcome>[] { id => h.Held.Reject(id, "fix it", "mo@example.com"), id => h.Held.Discard(id, "mo@example.com"), id => h.Held.Expire(id, 14) })
        {
            var id = Hold(h);
            Assert.True(act(id).Done);
            Assert.Empty(h.Queues[QueueSet.Hold].Pending());
            Assert.DoesNotContain(h.Logs.Lines, l => l.Contains("a duplicate of entry", StringComparison.Ordinal));
        }

        void Resend() => ResendHeld(h);
        int Duplicates() => DuplicateLines(h);

        // Held past the week a Message-ID is remembered, the post is still the list's: its resend
        // is a duplicate, not a second post to approve. Approved, it is the list's for a week more.
        var approved = Hold(h);
        h.Time.Advance(TimeSpan.FromDays(8));
        Resend();
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Equal([approved], h.Queues[QueueSet.Hold].Pending());
        Assert.Equal(1, Duplicates());
        Assert.True(h.Held.Approve(approved, "mo@example.com").Done);
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming)); // the approved post, to the pipeline
        h.Time.Advance(TimeSpan.FromDays(6));
        Resend();
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());
        Assert.Equal(2, Duplicates());
        Assert.Equal(2, h.Logs.Lines.Count(l => l.Contains($"a duplicate of entry {approved}", StringComparison.Ordinal)));
        h.Time.Advance(TimeSpan.FromDays(2));
        Resend();
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        var again = Assert.Single(h.Queues[QueueSet.Hold].Pending());

        // A held post removed by hand keeps nothing for ever: the start's reconciliation lets it
        // go a week on, as if it had been taken in then (not in its first minute: a post being
        // held has its record kept just before its entry is in hold).
        h.Queues[QueueSet.Hold].Finish(h.Queues[QueueSet.Hold].Claim(again)!);
        using (var store = new ListStore(_instance.Paths.Database))
        {
            h.Held.Reconcile(store);
            Assert.NotEmpty(store.HeldSeenEntries(h.Time.GetUtcNow() + TimeSpan.FromSeconds(1)));
            h.Time.Advance(TimeSpan.FromMinutes(2));
            h.Held.Reconcile(store);
            Assert.Empty(store.HeldSeenEntries(h.Time.GetUtcNow() + TimeSpan.FromSeconds(1)));
        }

        h.Time.Advance(TimeSpan.FromDays(8));
        Resend();
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Single(h.Queues[QueueSet.Hold].Pending());
        Assert.Equal(2, Duplicates());
    }

    // Review 114: a database restored from before a post was held had no record of it (its
    // resend was held again, two approvals would deliver it twice): the start's reconciliation
    // makes it again from the entry. A held post gone without a decision (an approval killed
    // after the move, a file removed by hand) kept its record for ever under a running daemon:
    // the next action on it, finding it gone, lets it go a week on.
    [Fact]
    public void A_held_posts_record_is_made_again_after_a_restore_and_let_go_when_it_is_gone()
    {
        Configure(l => l.RespondToPostRequests = false);
        using var h = new RunnerHarness(_instance);
        void Resend() => ResendHeld(h);
        int Duplicates() => DuplicateLines(h);

        var held = Hold(h);
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.ForgetSeen(Name, SeenKind.Post, held); // as a backup taken before it was held has it
            h.Held.Reconcile(store);
        }

        h.Time.Advance(TimeSpan.FromDays(8));
        Resend();
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Equal([held], h.Queues[QueueSet.Hold].Pending());
        Assert.Equal(1, Duplicates());

        // Removed by hand under the daemon; the moderator's approval finds it gone.
        h.Queues[QueueSet.Hold].Finish(h.Queues[QueueSet.Hold].Claim(held)!);
        Assert.False(h.Held.Approve(held, "mo@example.com").Done);
        h.Time.Advance(TimeSpan.FromDays(6));
        Resend();
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Equal(2, Duplicates());
        h.Time.Advance(TimeSpan.FromDays(2));
        Resend();
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Single(h.Queues[QueueSet.Hold].Pending());
        Assert.Equal(2, Duplicates());
    }

    // Review 36: `held reject` killed after the poster was told and before the post left hold:
    // at the next start the post was held again, and an approval delivered it. Here the kill is
    // the out queue failing after the post was marked (the state a kill leaves is the same: the
    // post marked rejected, back in hold after recovery).
    [Fact]
    public void A_rejection_cut_short_is_finished_by_the_next_action_never_turned_into_an_approval()
    {
        Configure(l => l.RespondToPostRequests = false);
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var outDir = _instance.QueueDir(QueueSet.Out);
        Directory.Move(outDir, outDir + ".away");
        File.WriteAllText(outDir, "not a directory");
        try
        {
            Assert.ThrowsAny<IOException>(() => h.Held.Reject(id, "Off topic", "mo@example.com"));
        }
        finally
        {
            File.Delete(outDir);
            Directory.Move(outDir + ".away", outDir);
        }

        Assert.Equal([id], h.Queues[QueueSet.Hold].Pending());
        Assert.Equal("mo@example.com", Assert.Single(h.Held.List(null)).RejectedBy);
        var approve = h.Held.Approve(id, "cli:other");
        Assert.False(approve.Done, approve.Summary);
        Assert.Contains("rejected by mo@example.com", approve.Summary, StringComparison.Ordinal);
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());
        Assert.Empty(h.Queues[QueueSet.In].Pending());
        var notice = Assert.Single(Out(h));
        Assert.Equal("stranger@example.net", Assert.Single(notice.To).Address);
        Assert.Contains("Off topic", notice.Message.TextBody, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("")]
    [InlineData("17000000000000000-0000abcd/../x")]
    [InlineData("17000000000000000-0000ABCD")]
    [InlineData("17000000000000000-0000abcd")]
    public void Ids_that_are_not_held_entries_are_refused_and_nothing_is_touched(string id)
    {
        using var h = new RunnerHarness(_instance);
        var held = Hold(h);
        foreach (var outcome in new[] { h.Held.Approve(id, "t"), h.Held.Reject(id, "r", "t"), h.Held.Discard(id, "t"), h.Held.Defer(id, "t") })
        {
            Assert.False(outcome.Done, outcome.Summary);
        }

        Assert.Equal([held], h.Queues[QueueSet.Hold].Pending());
        Assert.Empty(h.Queues[QueueSet.In].Pending());
    }

    [Fact]
    public void A_held_entry_deleted_under_a_running_daemon_is_reported_gone_and_its_token_forgotten()
    {
        Roles(ListRole.Owner, "olga@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var token = Token(Out(h).First(n => n.To[0].Address == "olga@example.com").Message);
        File.Delete(Path.Combine(_instance.QueueDir(QueueSet.Hold), id + ".msg"));

        Assert.Empty(h.Held.List());
        var outcome = new HeldPostConfirmation(h.Held).Confirm(Pending(token, h)!, "approve", null, "olga@example.com", id);
        Assert.False(outcome.Done);
        Assert.Contains("not held", outcome.Summary, StringComparison.Ordinal);
        Assert.Null(Pending(token, h));
        Assert.Empty(h.Queues[QueueSet.In].Pending());
    }

    [Fact]
    public void An_unreadable_held_entry_goes_to_bad_when_acted_on()
    {
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        File.WriteAllText(Path.Combine(_instance.QueueDir(QueueSet.Hold), id + ".msg"), "torn");
        var outcome = h.Held.Approve(id, "t");
        Assert.False(outcome.Done);
        Assert.Contains("moved to bad", outcome.Summary, StringComparison.Ordinal);
        Assert.Equal([id], h.Queues[QueueSet.Bad].Pending());
        Assert.Empty(h.Queues[QueueSet.In].Pending());
    }

    [Theory]
    [InlineData("approve", null, "in")]
    [InlineData(null, "Approve\n\n> quoted notice\n", "in")]
    [InlineData("reject Please use the forum", null, "rejected")]
    [InlineData("discard", null, "gone")]
    public void A_moderators_reply_decides_the_post(string? command, string? replyBody, string expected)
    {
        Roles(ListRole.Moderator, "mo@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var token = Token(Out(h).First(n => n.To[0].Address == "mo@example.com").Message);
        foreach (var n in h.Queues[QueueSet.Out].Pending())
        {
            h.Queues[QueueSet.Out].Finish(h.Queues[QueueSet.Out].Claim(n)!);
        }

        var reply = replyBody is null ? null : new MimeMessage { Body = new TextPart("plain") { Text = replyBody } };
        var result = new HeldPostConfirmation(h.Held).Confirm(Pending(token, h)!, command, reply, "mo@example.com", "17000000000000000-0000abcd");

        Assert.True(result.Done, result.Summary);
        Assert.Null(Pending(token, h));
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());

        // The reply's entry run again after a kill past the decision answers as its first run
        // did (it was told "the token is unknown"), and does nothing again; any other message
        // with the token is told what was decided (it was told "unknown, used or expired").
        var confirmations = h.Services.GetRequiredService<Confirmations>();
        var (_, again) = confirmations.ConfirmToken(Name, token, command, reply, "mo@example.com", "17000000000000000-0000abcd");
        Assert.Equal((result.Done, result.Summary), (again.Done, again.Summary));
        var (_, other) = confirmations.ConfirmToken(Name, token, command, reply, "mo@example.com", "17000000000000000-0000abce");
        Assert.False(other.Done);
        Assert.Equal($"held post to {List}: decided already; " + result.Summary[$"held post to {List}: ".Length..], other.Summary);
        switch (expected)
        {
            case "in":
                Assert.True(h.Queues[QueueSet.In].ReadMetadata(id).Approved);
                break;
            case "rejected":
                Assert.Contains("Please use the forum", Assert.Single(Out(h)).Message.TextBody, StringComparison.Ordinal);
                break;
            default:
                Assert.Empty(Out(h));
                Assert.Empty(h.Queues[QueueSet.In].Pending());
                break;
        }
    }

    // Review 128 MEDIUM: a reply's "approve" killed after the post went back to `in` and before
    // its use of the request was recorded was told, run again, that the post "is not held". The
    // request is used before the action, and the decision recorded, provisional, just before the
    // step: run again from any point, the entry finishes the decision or answers as its first run
    // would have, and the post goes once. Reviews 129, 130: killed before its step, with the post
    // decided meanwhile by the command line, it answered "approved" (or "discarded") for a post
    // that went the other way; whoever decides after overrides a provisional record.
    [Theory]
    [InlineData("taken", "approve", "approved")]
    [InlineData("recorded", "approve", "approved")]
    [InlineData("moved", "approve", "approved")]
    [InlineData("taken, then discarded by another", "approve", "not held")]
    [InlineData("recorded, then discarded by another", "approve", "not held")]
    [InlineData("recorded, then approved by another", "discard", "not held, approved")]
    [InlineData("rejected, then finished by another", "reject", "rejected")]
    public void A_reply_stopped_between_using_the_request_and_recording_what_it_did_answers_as_decided_when_run_again(string left, string verb, string expected)
    {
        Roles(ListRole.Moderator, "mo@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var token = Token(Out(h).First(n => n.To[0].Address == "mo@example.com").Message);
        const string Trigger = "17000000000000000-0000abcd";
        var said = verb == "approve" ? HeldPosts.ApprovedSummary : "discarded";
        void Provisional()
        {
            using var store = new ListStore(_instance.Paths.Database);
            store.UsedOutcome(Trigger, PendingKind.HeldPost, id, $"?+{id}: {said}");
        }

        // What the first run did before the kill (and what another did after).
        Assert.True(h.Held.TakeRequest(Pending(token, h)!, Trigger));
        if (left.StartsWith("recorded", StringComparison.Ordinal))
        {
            Provisional();
        }

        if (left == "moved")
        {
            Assert.True(h.Held.Approve(id, "mo@example.com", Trigger).Done);
            Provisional(); // killed after the move, before its final record
        }
        else if (left.EndsWith("discarded by another", StringComparison.Ordinal))
        {
            Assert.True(h.Held.Discard(id, "cli").Done);
        }
        else if (left.EndsWith("approved by another", StringComparison.Ordinal))
        {
            Assert.True(h.Held.Approve(id, "cli").Done);
        }
        else if (left.StartsWith("rejected", StringComparison.Ordinal))
        {
            // Stopped after marking the post rejected (review 131: the rejection another action
            // finished was answered "not held"); the out queue cannot take the notice.
            var outDir = _instance.QueueDir(QueueSet.Out);
            Directory.Move(outDir, outDir + ".away");
            File.WriteAllText(outDir, "not a directory");
            Assert.ThrowsAny<IOException>(() => h.Held.Reject(id, "Off topic", "mo@example.com", Trigger));
            File.Delete(outDir);
            Directory.Move(outDir + ".away", outDir);
            Assert.False(h.Held.Approve(id, "cli").Done);
        }

        // The restart's look at hold gives a post still held its request back, and says why.
        if (left == "taken")
        {
            using var store = new ListStore(_instance.Paths.Database);
            Assert.Equal((0, 1), h.Held.Reconcile(store));
            Assert.Contains(h.Logs.Lines, l => l.Contains($"its request was taken by the moderator's reply {Trigger}, which stopped before it decided", StringComparison.Ordinal));
        }

        var confirmations = h.Services.GetRequiredService<Confirmations>();
        var (_, again) = confirmations.ConfirmToken(Name, token, verb, null, "mo@example.com", Trigger);
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());
        Assert.Null(Pending(token, h));
        Assert.Equal(expected is "approved" or "rejected", again.Done);
        Assert.StartsWith($"held post to {List}: {id}: {expected switch { "approved" => HeldPosts.ApprovedSummary, "rejected" => "rejected", _ => HeldPosts.NotHeldSummary }}", again.Summary, StringComparison.Ordinal);
        Assert.Equal(expected.EndsWith("approved", StringComparison.Ordinal) ? [id] : [], h.Queues[QueueSet.In].Pending());

        // Once more: the answer it recorded; another message with the token is told what it decided.
        Assert.Equal(again.Summary, confirmations.ConfirmToken(Name, token, verb, null, "mo@example.com", Trigger).Result.Summary);
        Assert.Equal($"held post to {List}: decided already; " + again.Summary[$"held post to {List}: ".Length..],
            confirmations.ConfirmToken(Name, token, verb, null, "mo@example.com", "17000000000000000-0000abce").Result.Summary);
    }

    // The record a run again reads is written before the step that decides: an approval whose
    // move to `in` cannot be made (a directory in the way) leaves it, provisional, and the post held.
    [Fact]
    public void A_replys_decision_is_recorded_provisional_before_the_step_that_makes_it()
    {
        Roles(ListRole.Moderator, "mo@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var token = Token(Out(h).First(n => n.To[0].Address == "mo@example.com").Message);
        const string Trigger = "17000000000000000-0000abcd";
        Assert.True(h.Held.TakeRequest(Pending(token, h)!, Trigger));
        Directory.CreateDirectory(Path.Combine(_instance.QueueDir(QueueSet.In), id + ".msg"));

        Assert.ThrowsAny<Exception>(() => h.Held.Approve(id, "mo@example.com", Trigger));
        Assert.Equal([id], h.Queues[QueueSet.Hold].Pending());
        using var store = new ListStore(_instance.Paths.Database);
        Assert.Equal($"?+{id}: {HeldPosts.ApprovedSummary}", store.FindUsedRequest(token, Trigger, Name)?.Replayed);
    }

    // Review 130 LOW: a reason's U+2028 became a line break in the poster's notice, and U+202E
    // turned the text after it around there and in the log.
    [Fact]
    public void A_rejection_reason_is_one_line_without_direction_marks()
    {
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        foreach (var n in h.Queues[QueueSet.Out].Pending())
        {
            h.Queues[QueueSet.Out].Finish(h.Queues[QueueSet.Out].Claim(n)!);
        }

        Assert.True(h.Held.Reject(id, "spam\u2028Bcc: evil@example.com\u202e gnp.exe", "mo@example.com").Done);
        var body = Assert.Single(Out(h)).Message.TextBody ?? "";
        Assert.Contains("spam Bcc: evil@example.com  gnp.exe", body, StringComparison.Ordinal);
        Assert.DoesNotContain('\u2028', body);
        Assert.DoesNotContain('\u202e', body);
    }

    // Stop 56's note: a moderator's reply to a post the command line or the expiry decided was
    // told "the confirmation token is unknown, used or expired". The token is remembered as
    // used by them, with what they decided, and the reply is told that, changing nothing.
    [Theory]
    [InlineData("approve")]
    [InlineData("reject")]
    [InlineData("discard")]
    [InlineData("expire")]
    public void A_reply_to_a_post_decided_without_a_token_is_told_what_was_decided(string how)
    {
        Roles(ListRole.Moderator, "mo@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var token = Token(Out(h).First(n => n.To[0].Address == "mo@example.com").Message);
        RequestRunnerTests.Deliver(h);
        var outcome = how switch
        {
            "approve" => h.Held.Approve(id, "root"),
            "reject" => h.Held.Reject(id, "off topic", "root"),
            "discard" => h.Held.Discard(id, "root"),
            _ => h.Held.Expire(id, 3),
        };
        Assert.True(outcome.Done, outcome.Summary);
        var outBefore = Out(h).Count;

        var confirmations = h.Services.GetRequiredService<Confirmations>();
        var (request, said) = confirmations.ConfirmToken(Name, token, "discard", null, "mo@example.com", "17000000000000000-0000abcd");
        Assert.Null(request);
        Assert.False(said.Done);
        Assert.Equal($"held post to {List}: decided already; {outcome.Summary}", said.Summary);
        Assert.Null(Pending(token, h));
        Assert.Equal(how == "approve" ? [id] : [], h.Queues[QueueSet.In].Pending());
        Assert.Equal(outBefore, Out(h).Count);
        Assert.Contains(h.Logs.Lines, l => l.Contains("refused: the token was used already", StringComparison.Ordinal));
    }

    // A reply whose action decides nothing (a post that shows the moderator password cannot be
    // approved: it stays held) gives the request back with its token, and a reply after decides.
    [Fact]
    public void A_reply_that_decides_nothing_leaves_the_request_live()
    {
        Roles(ListRole.Moderator, "mo@example.com");
        Configure(l => l.Set("moderator_password", "Sekr1tPassw0rd"));
        using var h = new RunnerHarness(_instance);
        var id = Hold(h, extra: "Approved: Sekr1tPassw0rd\nX-Note: mine is Sekr1tPassw0rd\n");
        var token = Token(Out(h).First(n => n.To[0].Address == "mo@example.com").Message);
        var confirmations = h.Services.GetRequiredService<Confirmations>();

        var number = Pending(token, h)!.Id;
        var (_, approve) = confirmations.ConfirmToken(Name, token, "approve", null, "mo@example.com", "17000000000000000-0000abcd");
        Assert.False(approve.Done);
        Assert.Contains("cannot be approved", approve.Summary, StringComparison.Ordinal);
        Assert.Equal([id], h.Queues[QueueSet.Hold].Pending());
        Assert.Equal(number, Pending(token, h)?.Id); // under its own number (review 129)

        var (_, discard) = confirmations.ConfirmToken(Name, token, "discard", null, "mo@example.com", "17000000000000000-0000abce");
        Assert.True(discard.Done, discard.Summary);
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());
        Assert.Null(Pending(token, h));
    }

    [Theory]
    [InlineData("please approve this", null)]
    [InlineData(null, "> approve\nThanks!\n")]
    [InlineData("", "")]
    [InlineData(null, "")]
    [InlineData("\u0000\u0001 garbage", "\ud83d\ude00")]
    public void A_reply_with_garbage_changes_nothing_and_says_what_was_expected(string? command, string? replyBody)
    {
        Roles(ListRole.Moderator, "mo@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Hold(h);
        var token = Token(Out(h).First(n => n.To[0].Address == "mo@example.com").Message);
        var reply = replyBody is null ? null : new MimeMessage { Body = new TextPart("plain") { Text = replyBody } };

        var result = new HeldPostConfirmation(h.Held).Confirm(Pending(token, h)!, command, reply, "mo@example.com", "17000000000000000-0000abcd");

        Assert.False(result.Done);
        Assert.Contains("\"approve\", \"reject REASON\" or \"discard\"", result.Summary, StringComparison.Ordinal);
        Assert.Equal([id], h.Queues[QueueSet.Hold].Pending());
        Assert.NotNull(Pending(token, h));
    }

    [Fact]
    public void Held_posts_older_than_max_days_to_hold_are_discarded_and_the_moderators_told()
    {
        Roles(ListRole.Owner, "olga@example.com");
        Configure(l =>
        {
            l.MaxDaysToHold = 2;
            l.RespondToPostRequests = false;
        });
        using var h = new RunnerHarness(_instance, o => o.Moderation.SummaryHour = -1); // the summary has its own tests
        var old = Hold(h);
        h.Time.Advance(TimeSpan.FromDays(1));
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = "x@example.net", Received = h.Time.GetUtcNow() }, ModerationFixture.Post("From: x@example.net\n"));
        RunnerHarness.Drain(h.Incoming);
        foreach (var n in h.Queues[QueueSet.Out].Pending())
        {
            h.Queues[QueueSet.Out].Finish(h.Queues[QueueSet.Out].Claim(n)!);
        }

        Assert.Equal(0, h.Expiry.Sweep());
        Assert.Equal(h.Time.GetUtcNow() + TimeSpan.FromDays(1), h.Expiry.NextDue);
        Assert.False(h.Expiry.HasDueWork(h.Time.GetUtcNow()));
        h.Time.Advance(TimeSpan.FromDays(1));
        Assert.True(h.Expiry.HasDueWork(h.Time.GetUtcNow()));

        Assert.Equal(1, h.Expiry.Sweep());
        Assert.DoesNotContain(old, h.Queues[QueueSet.Hold].Pending());
        Assert.Single(h.Queues[QueueSet.Hold].Pending());
        var notice = Assert.Single(Out(h));
        Assert.Equal("olga@example.com", notice.To[0].Address);
        Assert.Equal("list:admin:notice:held-expired", notice.Message.Headers["X-Mailman-Notice"]);
        Assert.Contains("2 days", notice.Message.Subject, StringComparison.Ordinal);

        Configure(l => l.MaxDaysToHold = 0);
        h.Time.Advance(TimeSpan.FromDays(365));
        Assert.Equal(0, h.Expiry.Sweep());
        Assert.Single(h.Queues[QueueSet.Hold].Pending());
    }

    [Fact]
    public async Task The_expiry_service_wakes_on_the_clock()
    {
        Configure(l =>
        {
            l.MaxDaysToHold = 1;
            l.RespondToPostRequests = false;
        });
        using var h = new RunnerHarness(_instance);
        Hold(h);
        await h.Expiry.StartAsync(CancellationToken.None);
        try
        {
            Wait.Until(() => h.Expiry.NextDue < DateTimeOffset.MaxValue, TimeSpan.FromSeconds(30), "the first sweep");
            Assert.Single(h.Queues[QueueSet.Hold].Pending());

            // A day later the service's timer fires (its wait is at most an hour, at least a second).
            h.Time.Advance(TimeSpan.FromHours(25));
            Wait.Until(() =>
            {
                if (h.Queues[QueueSet.Hold].Pending().Count == 0)
                {
                    return true;
                }

                h.Time.Advance(TimeSpan.FromHours(1)); // the service sleeps an hour at most, whatever it saw
                return false;
            }, TimeSpan.FromSeconds(30), "the post to expire");
        }
        finally
        {
            await h.Expiry.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public void A_wrong_Approved_password_is_held_without_it_and_approving_delivers_no_password()
    {
        Configure(l => l.Set("moderator_password", "the-right-one"));
        using var h = new RunnerHarness(_instance);
        var id = Hold(h, extra: "Approved: wrong-guess\n");
        var reasons = h.Queues[QueueSet.Hold].ReadMetadata(id).HoldReasons!;
        Assert.Contains(reasons, r => r.StartsWith("approved: ", StringComparison.Ordinal));
        Assert.Contains(reasons, r => r.StartsWith("nonmember-moderation: ", StringComparison.Ordinal));

        var claim = h.Queues[QueueSet.Hold].Claim(id)!;
        Assert.DoesNotContain("wrong-guess", System.Text.Encoding.UTF8.GetString(h.Queues[QueueSet.Hold].Load(claim).Message), StringComparison.Ordinal);
        h.Queues[QueueSet.Hold].Unclaim(claim);
        Assert.DoesNotContain(Out(h), n => n.Message.ToString().Contains("wrong-guess", StringComparison.Ordinal));
    }

    // Review 56: a post that shows the right password where it cannot be removed is held; a
    // moderator's approve would have taken it to every member.
    [Fact]
    public void A_post_that_shows_the_right_password_where_it_cannot_be_removed_cannot_be_approved()
    {
        Configure(l => l.Set("moderator_password", "Sekr1tPassw0rd"));
        using var h = new RunnerHarness(_instance);
        var id = Hold(h, extra: "Approved: Sekr1tPassw0rd\nX-Note: mine is Sekr1tPassw0rd\n");
        Assert.Contains(h.Queues[QueueSet.Hold].ReadMetadata(id).HoldReasons!, r => r.StartsWith("approved: " + Mailman.Moderation.Rules.Approved.ShowsPassword, StringComparison.Ordinal));

        var approved = h.Held.Approve(id, "mo@example.com");
        Assert.False(approved.Done);
        Assert.Contains("cannot be approved; reject or discard it", approved.Summary, StringComparison.Ordinal);
        Assert.Equal([id], h.Queues[QueueSet.Hold].Pending());
        Assert.Empty(h.Queues[QueueSet.In].Pending());
        Assert.True(h.Held.Discard(id, "mo@example.com").Done);
    }

    // Review 134: a member's HTML-only post whose Approved: line came after text a mail client
    // hides (an element whose end HTML lets out) went to every member with the password. The
    // password is found among the first lines, removed, and the post held; approved, it goes
    // without it.
    [Fact]
    public void An_Approved_line_behind_hidden_text_is_removed_and_the_post_held_then_approved_without_it()
    {
        Configure(l => l.Set("moderator_password", "Sekr1tPassw0rd"));
        using var h = new RunnerHarness(_instance);
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = "ann@example.com", Received = h.Time.GetUtcNow() },
            System.Text.Encoding.UTF8.GetBytes($"From: Ann <ann@example.com>\nTo: {List}\nSubject: Hi\nMessage-Id: <hidden@example.net>\nContent-Type: text/html; charset=utf-8\n\n"
                + "<p style=\"display:none\">Preview: news<div>Approved: Sekr1tPassw0rd</div><div>Hello list.</div>\n"));
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        var id = Assert.Single(h.Queues[QueueSet.Hold].Pending());
        Assert.Contains(h.Queues[QueueSet.Hold].ReadMetadata(id).HoldReasons!, r => r == "approved: " + Mailman.Moderation.Rules.Approved.NotFirstLine);

        Assert.True(h.Held.Approve(id, "cli:test").Done);
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Equal(1, RunnerHarness.Drain(h.Pipeline));
        var copy = Out(h).Single(n => n.Metadata.MessageId == "hidden@example.net");
        Assert.Equal(["ann@example.com", "bob@example.com"], copy.To.Select(r => r.Address));
        Assert.Contains("Hello list.", copy.Message.HtmlBody, StringComparison.Ordinal);
        Assert.DoesNotContain("Sekr1tPassw0rd", copy.Message.ToString(), StringComparison.Ordinal);
    }

    // Review 60: `pending list` named a held post by its envelope sender (a forwarder's, a
    // MAILER-DAEMON's) while `held list` named its From: author.
    [Fact]
    public void A_held_posts_pending_request_names_its_author_not_its_envelope_sender()
    {
        using var h = new RunnerHarness(_instance);
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = "fwd-bounces@relay.example.net", Received = h.Time.GetUtcNow() },
            System.Text.Encoding.UTF8.GetBytes($"From: Pia Author <pia@example.net>\nTo: {List}\nSubject: Hi\nMessage-Id: <pia@example.net>\n\nPlease post this.\n"));
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        var id = Assert.Single(h.Queues[QueueSet.Hold].Pending());
        using var store = new ListStore(_instance.Paths.Database);
        var request = Assert.Single(store.PendingRequests(), r => r.Kind == PendingKind.HeldPost && r.Key == id);
        Assert.Equal(("pia@example.net", "Pia Author"), (request.Address, request.DisplayName));
        Assert.Equal("pia@example.net", Assert.Single(h.Held.List()).From.Split('<', '>')[^2]);
    }

    [Fact]
    public void A_hold_in_the_pipeline_is_a_held_post_like_any_other()
    {
        Roles(ListRole.Owner, "olga@example.com");
        Configure(l => l.MaxMessageSizeKb = 1);
        using var h = new RunnerHarness(_instance, o =>
        {
            o.Moderation.Chain = ["loop-detection", "member-moderation", "nonmember-moderation"];
            o.Pipeline.Handlers = ["maximum-size", .. o.Pipeline.Handlers];
        });
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = "ann@example.com" }, ModerationFixture.Post("From: ann@example.com\n", new string('x', 4000)));
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        var id = Assert.Single(h.Queues[QueueSet.Hold].Pending());
        Assert.StartsWith("maximum-size: ", Assert.Single(h.Queues[QueueSet.Hold].ReadMetadata(id).HoldReasons!), StringComparison.Ordinal);
        Assert.Contains(Out(h), n => n.To[0].Address == "olga@example.com");

        // Approved, it is not held by the same handler again.
        Assert.True(h.Held.Approve(id, "t").Done);
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());
        Assert.Contains(Out(h), n => n.Metadata.MessageId == "t@example.com" && n.To.Count == 2);
    }

    // A post over 2 GB is held without being read; acting on it reads only its head. The verbs
    // loaded it whole: an OverflowException, a stack trace for the moderator, the post left claimed.
    [Fact]
    public void A_held_post_over_2_GB_is_rejected_from_its_head_alone()
    {
        using var h = new RunnerHarness(_instance);
        h.Queues[QueueSet.In].Enqueue(new EntryMetadata { List = List, Sender = "big@example.net", Received = h.Time.GetUtcNow() }, s =>
        {
            s.Write(System.Text.Encoding.ASCII.GetBytes($"From: big@example.net\nTo: {List}\nSubject: huge\nMessage-Id: <huge@example.net>\n\n"));
            s.Seek(2_200_000_000, SeekOrigin.Current); // a hole: the file is sparse
            s.Write("end\n"u8);
        }, null);
        RunnerHarness.Drain(h.Incoming);
        var id = Assert.Single(h.Queues[QueueSet.Hold].Pending());

        var rejected = h.Held.Reject(id, "far too big", "mo@example.com");
        Assert.True(rejected.Done, rejected.Summary);
        Assert.Empty(h.Queues[QueueSet.Hold].Pending());
        Assert.Empty(h.Queues[QueueSet.Hold].Claimed());
        var notice = Assert.Single(Out(h), n => n.To[0].Address == "big@example.net" && n.Message.TextBody?.Contains("far too big", StringComparison.Ordinal) == true);
        Assert.True(notice.Metadata.MessageLength < 64 * 1024, $"the notice carries {notice.Metadata.MessageLength} bytes");
    }
}
