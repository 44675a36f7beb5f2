// SMTP faults against real servers: per-recipient 4xx and 5xx, 421 and hang-up after DATA
// (SmtpServer in-process); unreachable and slow servers (smtp-sink, real processes). Run twice:
// through the pipelined writer (both servers offer PIPELINING) and through MailKit's path.
using System.Collections.Concurrent;
using System.Globalization;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.Tests.Runners;
using Mailman.TestSupport;

namespace Mailman.Tests.Delivery;

public sealed class PipelinedSmtpFaultTests() : SmtpFaultTests(pipelining: true);

public sealed class MailKitSmtpFaultTests() : SmtpFaultTests(pipelining: false);

public abstract class SmtpFaultTests : IDisposable
{
    private readonly TempInstance _instance = new();
    private readonly bool _pipelining;

    protected SmtpFaultTests(bool pipelining)
    {
        _pipelining = pipelining;
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(10));
    }

    public void Dispose()
    {
        _instance.Dispose();
        GC.SuppressFinalize(this);
    }

    private RunnerHarness Harness(int? port = null, int? maxRecipients = null) => new(_instance, o =>
    {
        o.Smtp.Port = port ?? o.Smtp.Port;
        o.Smtp.Pipelining = _pipelining;
        o.Smtp.MaxRecipients = maxRecipients ?? o.Smtp.MaxRecipients;
    });

    private Dictionary<string, string> Env(Dictionary<string, string>? env = null)
    {
        env ??= [];
        env["Mailman__Smtp__Pipelining"] = _pipelining ? "true" : "false";
        return env;
    }

    private static string M(int i) => $"m{i:D5}@example.com";

    private static void ToOut(RunnerHarness h)
    {
        h.Inject("dev@example.org", Posts.Plain());
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
    }

    private void Personalize(bool personalized)
    {
        using var store = new ListStore(_instance.Paths.Database);
        var list = store.GetList(ListName.Parse("dev@example.org"));
        list.Personalize = personalized ? Personalization.Full : Personalization.None;
        store.SaveList(list);
    }

    // Two members of example.com whose local parts need SMTPUTF8 (RFC 6531 §3.2).
    private void AddMembersWhoNeedSmtpUtf8() => _instance.AddMembers("dev@example.org", [new Member("jörg@example.com", "Jörg"), new Member("zoë@example.com", "Zoë")]);

    // A post whose header block is raw UTF-8 (RFC 6532), delivered to the list through `port`:
    // the recipients left in retry (none unless `retry`) and the bounce processor's lines.
    private (List<string> Retry, IReadOnlyList<string> Bounces) DeliverRawUtf8Post(int port, string messageId = "utf8@example.com", bool retry = false, int? maxRecipients = null)
    {
        using var h = Harness(port, maxRecipients);
        h.Inject("dev@example.org", Posts.Plain(from: "jörg@bücher.example", subject: "Grüße", messageId: messageId));
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        RunnerHarness.Drain(h.Outgoing);
        RunnerHarness.Drain(h.Bounces);
        var left = RetryRecipients(h);
        Assert.True(retry || left.Count == 0, "in retry: " + string.Join(", ", left));
        return (left, [.. h.BounceLog.Lines]);
    }

    private static List<string> RetryRecipients(RunnerHarness h)
    {
        var retry = h.Queues[QueueSet.Retry];
        var result = new List<string>();
        foreach (var name in retry.Pending())
        {
            var claim = retry.Claim(name)!;
            var entry = retry.Load(claim);
            result.AddRange(retry.Recipients(entry).Select(r => r.Address));
            retry.Unclaim(claim);
        }

        return result;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_4xx_on_some_RCPTs_defers_only_those_and_they_are_delivered_later(bool personalized)
    {
        Personalize(personalized);

        var refuse = new ConcurrentDictionary<string, bool>(new[] { M(2), M(7) }.ToDictionary(a => a, _ => true));
        using var server = ScriptedSmtpServer.Start(rcpt: a => refuse.ContainsKey(a) ? ScriptedSmtpServer.Reply(450, "mailbox busy") : null);
        using var h = Harness(server.Port);
        ToOut(h);

        RunnerHarness.Drain(h.Outgoing);
        Assert.Equal(8, server.Received.SelectMany(m => m.Recipients).Count());
        Assert.Equal([M(2), M(7)], RetryRecipients(h).Order());

        // Logged once for the chunk, with the server's reply (the retry entry keeps only the addresses).
        Assert.True(h.Logs.Lines.Any(l => l.Contains("2 recipients of ", StringComparison.Ordinal)
            && l.Contains(" deferred (", StringComparison.Ordinal) && l.Contains(": 450 mailbox busy", StringComparison.Ordinal) && l.EndsWith("(2)", StringComparison.Ordinal)), string.Join("\n", h.Logs.Lines));

        refuse.Clear();
        h.Time.Advance(h.Options.Retry.DelayFor(1));
        Assert.Equal(1, RunnerHarness.Drain(h.Retry));
        RunnerHarness.Drain(h.Outgoing);
        var all = server.Received.SelectMany(m => m.Recipients).ToList();
        Assert.Equal(10, all.Count);
        Assert.Equal(10, all.Distinct().Count());
        Assert.Empty(h.Queues[QueueSet.Retry].Pending());
    }

    [Fact]
    public void A_5xx_on_some_RCPTs_bounces_those_and_delivers_everyone_else()
    {
        using var server = ScriptedSmtpServer.Start(rcpt: a => a == M(3) || a == M(4) ? ScriptedSmtpServer.Reply(550, "no such user") : null);
        using var h = Harness(server.Port);
        ToOut(h);

        RunnerHarness.Drain(h.Outgoing);
        var delivered = server.Received.SelectMany(m => m.Recipients).ToList();
        Assert.Equal(8, delivered.Count);
        Assert.DoesNotContain(M(3), delivered);
        Assert.Empty(h.Queues[QueueSet.Retry].Pending());
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
    }

    // An IDN domain with an ASCII local part needs no SMTPUTF8: both paths send it as lower-case
    // A-labels, without SMTPUTF8, even to a server that offers it, as this one does (MailKit's
    // path once sent U-labels with SMTPUTF8; see the raw UTF-8 header tests below for why not).
    [Fact]
    public void An_IDN_member_goes_as_lower_case_A_labels_without_SMTPUTF8()
    {
        _instance.AddMembers("dev@example.org", [new Member("dora@BÜCHER.example", "Dora")]);
        using var server = ScriptedSmtpServer.Start();
        using var h = Harness(server.Port);
        ToOut(h);

        RunnerHarness.Drain(h.Outgoing);
        var delivered = server.Received.SelectMany(m => m.Recipients).ToList();
        Assert.Equal(11, delivered.Count);
        Assert.Contains("dora@xn--bcher-kva.example", delivered);
        Assert.All(server.Received, m => Assert.False(m.Parameters.ContainsKey("SMTPUTF8")));
    }

    // RCPT TO carries an IDN domain as lower-case A-labels, and MimeKit names a refused A-label
    // mailbox in U-labels: the refusal is still the member's, as the list spells it, on both list
    // kinds: a 5xx bounces, a 4xx retries, neither is taken for delivered.
    [Theory]
    [InlineData(true, 550)]
    [InlineData(false, 550)]
    [InlineData(true, 450)]
    [InlineData(false, 450)]
    public void A_refused_IDN_member_rewritten_for_RCPT_TO_is_that_members_refusal(bool personalized, int code)
    {
        Personalize(personalized);

        _instance.AddMembers("dev@example.org", [new Member("carl@MÜNCHEN.example", "Carl"), new Member("anna@xn--bcher-kva.example", "Anna")]);
        using var server = ScriptedSmtpServer.Start(rcpt: a => a.StartsWith("carl@", StringComparison.Ordinal) || a.StartsWith("anna@", StringComparison.Ordinal)
            ? ScriptedSmtpServer.Reply(code, code == 550 ? "5.1.1 no such user" : "4.2.0 try later") : null);
        using var h = Harness(server.Port);
        ToOut(h);

        RunnerHarness.Drain(h.Outgoing);
        var delivered = server.Received.SelectMany(m => m.Recipients).ToList();
        Assert.Equal(10, delivered.Count);
        Assert.DoesNotContain(delivered, r => r.StartsWith("carl@", StringComparison.Ordinal) || r.StartsWith("anna@", StringComparison.Ordinal));
        if (code == 550)
        {
            Assert.Empty(h.Queues[QueueSet.Retry].Pending());
            Assert.Contains(h.BounceLog.Lines, l => l.Contains("carl@MÜNCHEN.example", StringComparison.Ordinal) && l.Contains("5.1.1 no such user", StringComparison.Ordinal));
            Assert.Contains(h.BounceLog.Lines, l => l.Contains("anna@xn--bcher-kva.example", StringComparison.Ordinal) && l.Contains("5.1.1 no such user", StringComparison.Ordinal));
        }
        else
        {
            Assert.Equal(["anna@xn--bcher-kva.example", "carl@MÜNCHEN.example"], RetryRecipients(h).Order(StringComparer.Ordinal));
        }
    }

    [Theory]
    [InlineData(421)]
    [InlineData(451)]
    [InlineData(552)]
    public void A_temporary_failure_after_DATA_retries_that_transaction_and_loses_nothing(int code)
    {
        var failures = new ConcurrentDictionary<string, int>();
        using var server = ScriptedSmtpServer.Start(data: rcpts =>
            rcpts.Contains(M(5)) && failures.AddOrUpdate(M(5), 1, (_, n) => n + 1) == 1 ? ScriptedSmtpServer.Reply(code, "try again later") : null);
        using var h = Harness(server.Port);
        ToOut(h);

        RunnerHarness.Drain(h.Outgoing);
        if (code == 421)
        {
            // A 421 also halves the domain's pace: under load a later copy of this run can find
            // no token and wait in retry beside M(5). Every member is sent or waiting, once.
            var waiting = RetryRecipients(h);
            Assert.Contains(M(5), waiting);
            Assert.Equal(10, server.Received.Count + waiting.Count);
        }
        else
        {
            Assert.Equal(9, server.Received.Count);
            Assert.Equal([M(5)], RetryRecipients(h));
        }

        // A 421 or 4.7.x also halves the domain's pace (Pacer): under load a retried copy can
        // find no token within its second and wait in retry once more; none is lost or doubled.
        // A 421 without 4.7.x marks the sole relay down for 2 s on the system clock (the fake
        // one moves the retry queue only): a round within them finds every relay down.
        for (var round = 1; round <= 5 && h.Queues[QueueSet.Retry].Pending().Any(); round++)
        {
            Wait.Until(() => h.Outgoing.Relays.Snapshot().All(r => r.RetryInSeconds is null or 0), TimeSpan.FromSeconds(30), "the relay's backoff");
            h.Time.Advance(h.Options.Retry.DelayFor(round));
            RunnerHarness.Drain(h.Retry);
            RunnerHarness.Drain(h.Outgoing);
        }

        Assert.Equal(10, server.Received.Select(m => m.Recipients[0]).Distinct().Count());
        Assert.Equal(10, server.Received.Count);
    }

    // -f MAIL: a 5xx to MAIL FROM (the README promised a deferral; it was recorded as every
    // member's bounce). -f DATA: a 5xx to the DATA command, before any of the message (review
    // 53: every copy was bounced for good). -q .: hang up after the end of DATA without
    // replying, on every message.
    [Theory]
    [InlineData("-f", "MAIL")]
    [InlineData("-f", "DATA")]
    [InlineData("-q", ".")]
    public void A_refused_MAIL_FROM_or_DATA_or_a_connection_dropped_after_DATA_defers_every_copy_to_retry_and_loses_nobody(string fault, string command)
    {
        using (var faulty = SmtpSink.Start(fault, command))
        {
            using var h = Harness(faulty.Port);
            ToOut(h);
            RunnerHarness.Drain(h.Outgoing);
            Assert.Equal(10, RetryRecipients(h).Count);
        }

        Runners.RetryTestHelper.MakeDue(_instance);
        using var sink = SmtpSink.Start();
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, Env());
        Assert.Equal(10, sink.WaitFor(10).Select(m => m.Recipients[0]).Distinct().Count());
    }

    // Review 67: a server that takes 3 recipients a transaction (452 4.5.3 past them, as
    // Postfix's smtpd_recipient_limit) had the rest of each deferred to retry, about 650 members
    // a day at an hour's backoff. They go in the next transactions at once, on the connection.
    [Fact]
    public void Recipients_past_the_servers_limit_per_transaction_go_in_the_next_transactions_at_once()
    {
        using var server = RawSmtpServer.WithRecipientLimit(3);
        using var connection = new Mailman.Delivery.Smtp.SmtpConnection(new Mailman.Instance.SmtpOptions { Port = server.Port, Pipelining = _pipelining });
        var carrier = new Mailman.Delivery.Smtp.Carrier(Mailman.Delivery.PreparedPost.Create("Subject: t\r\nFrom: a@example.com\r\n\r\nbody\r\n"u8.ToArray(), null));
        carrier.SetRecipient(null);
        var recipients = Enumerable.Range(0, 10).Select(i => new Recipient(M(i), "")).ToList();
        var result = new Mailman.Delivery.Smtp.TransactionResult();

        connection.Send(carrier.Message, "dev-bounces@example.org", recipients, result);
        connection.Complete();

        Assert.Empty(result.Deferred);
        Assert.Empty(result.Bounced);
        Assert.Equal(recipients.Select(r => r.Address).Order(), result.Delivered.Select(r => r.Address).Order());
        Assert.Equal([3, 3, 3, 1], server.Messages);
        Assert.Equal(10, server.Delivered.Distinct().Count());

        // The summary counts the four (review 83: "3 transactions" for 250 taken one at a time).
        Assert.Equal(3, result.FollowUps);
    }

    // A server that takes none of a round (452 to every RCPT) is not asked again at once: they wait in retry.
    [Fact]
    public void Recipients_refused_all_with_too_many_recipients_wait_in_retry()
    {
        using var server = ScriptedSmtpServer.Start(rcpt: _ => ScriptedSmtpServer.Reply(452, "4.5.3 Error: too many recipients"));
        using var connection = new Mailman.Delivery.Smtp.SmtpConnection(new Mailman.Instance.SmtpOptions { Port = server.Port, Pipelining = _pipelining });
        var carrier = new Mailman.Delivery.Smtp.Carrier(Mailman.Delivery.PreparedPost.Create("Subject: t\r\nFrom: a@example.com\r\n\r\nbody\r\n"u8.ToArray(), null));
        carrier.SetRecipient(null);
        var result = new Mailman.Delivery.Smtp.TransactionResult();

        connection.Send(carrier.Message, "dev-bounces@example.org", [new Recipient(M(1), ""), new Recipient(M(2), "")], result);
        connection.Complete();

        Assert.Equal(2, result.Deferred.Count);
        Assert.Empty(result.Delivered);
        Assert.Empty(server.Received);
    }

    // Review 67: a relay that takes each message's data and hangs up without its reply was
    // never marked down; every transaction went out on a new connection, and every member got
    // the post again at each retry. Now the relay is down at the first such break, and each
    // connection of ours loses at most one transaction a try (the crash bound), not the list.
    [Fact]
    public void A_relay_that_hangs_up_after_every_message_is_marked_down_and_gets_at_most_one_copy_per_connection()
    {
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(200).Skip(10));
        using var faulty = SmtpSink.Start("-q", ".");
        using var h = Harness(faulty.Port);
        ToOut(h);
        RunnerHarness.Drain(h.Outgoing);

        Assert.Equal(200, RetryRecipients(h).Count);
        var relay = Assert.Single(h.Outgoing.Relays.Snapshot());
        Assert.Equal("down", relay.State);
        Assert.Contains("in the middle of a transaction", relay.LastError, StringComparison.Ordinal);
        // Waited for once (2 s), as after a 421 in a session: two rounds of one each.
        var copies = faulty.Messages().Count;
        Assert.InRange(copies, 1, 2 * h.Options.Smtp.Connections);
    }

    // Review 113: a post whose header block is raw UTF-8 (RFC 6532), as an author's MUA wrote
    // it, goes with BODY=8BITMIME and without SMTPUTF8 even to a relay that offers it (this one
    // does), on both paths and both list kinds: Postfix returns a message received with SMTPUTF8
    // and UTF-8 in a header as undeliverable to every next hop without SMTPUTF8, and delivers it
    // without the flag as it always has. So does a Latin-1 header; and a relay without SMTPUTF8
    // (smtp-sink) gets the copy.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_raw_UTF_8_header_block_is_sent_with_8BITMIME_and_without_SMTPUTF8(bool personalized)
    {
        Personalize(personalized);

        using var server = ScriptedSmtpServer.Start();
        using (var h = Harness(server.Port))
        {
            h.Inject("dev@example.org", Posts.Plain(from: "jörg@bücher.example", subject: "Grüße", messageId: "utf8@example.com"));
            h.Inject("dev@example.org", Posts.Plain(messageId: "ascii@example.com"));
            // Raw 8-bit bytes that are not UTF-8 (a Latin-1 header from an old MUA): not RFC 6532.
            var latin1 = Posts.Plain(messageId: "latin1@example.com");
            h.Inject("dev@example.org", [.. "X-Note: Gr"u8, 0xFC, 0xDF, (byte)'e', (byte)'\n', .. latin1]);
            RunnerHarness.Drain(h.Incoming);
            RunnerHarness.Drain(h.Pipeline);
            RunnerHarness.Drain(h.Outgoing);
        }

        static bool EightBitHeader(ReceivedMessage m)
        {
            var content = m.Content.AsSpan();
            return content[..content.IndexOf("\r\n\r\n"u8)].IndexOfAnyExceptInRange((byte)0, (byte)127) >= 0;
        }

        var received = server.Received.ToList();
        Assert.Equal(30, received.Sum(m => m.Recipients.Count));
        var eightBit = received.Where(EightBitHeader).ToList();
        Assert.Equal(20, eightBit.Sum(m => m.Recipients.Count));
        Assert.Equal(10, eightBit.Where(m => System.Text.Unicode.Utf8.IsValid(m.Content)).Sum(m => m.Recipients.Count));
        Assert.All(eightBit, m => Assert.Equal("8BITMIME", m.Parameters["BODY"]));
        Assert.All(received, m => Assert.False(m.Parameters.ContainsKey("SMTPUTF8")));

        using var sink = SmtpSink.Start();
        DeliverRawUtf8Post(sink.Port, "utf8-2@example.com");

        Wait.Until(() => sink.Messages().SelectMany(m => m.Recipients).Count() >= 10, TimeSpan.FromSeconds(60), "10 copies at the sink");
    }

    // Postfix applies that rule per transaction: a post not personalized, its header block raw
    // UTF-8, sent in one SMTPUTF8 transaction to a domain's members with one member whose local
    // part needs SMTPUTF8, would be returned for every other member there whose next hop lacks
    // it. Those who need SMTPUTF8 go in a transaction of their own (both of them together); the
    // others without the flag.
    [Fact]
    public void Members_who_need_SMTPUTF8_go_in_a_transaction_apart_and_the_rest_of_their_domain_without_it()
    {
        Personalize(false);

        AddMembersWhoNeedSmtpUtf8();
        using var server = ScriptedSmtpServer.Start();
        DeliverRawUtf8Post(server.Port);

        var received = server.Received.ToList();
        Assert.Equal(12, received.SelectMany(m => m.Recipients).Distinct().Count());
        Assert.Equal(12, received.Sum(m => m.Recipients.Count));
        var international = Assert.Single(received, m => m.Parameters.ContainsKey("SMTPUTF8"));
        Assert.Equal(2, international.Recipients.Count);
        Assert.All(international.Recipients, r => Assert.False(System.Text.Ascii.IsValid(r)));
        Assert.All(received.Where(m => m != international).SelectMany(m => m.Recipients), r => Assert.StartsWith("m0", r, StringComparison.Ordinal));
    }

    // Review 115 HIGH: a MAIL FROM refused for a while (451) is the relay's state, never the
    // members': MailKit pipelines the RCPTs after it, and their "need MAIL command" refusals were
    // taken for the members' (bounced, lost). The part sent apart for SMTPUTF8 always takes
    // MailKit's path; a personalized copy takes it without PIPELINING. Both wait in retry.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_MAIL_FROM_refused_for_a_while_sends_its_copies_to_retry_whatever_the_RCPTs_were_answered(bool personalized)
    {
        Personalize(personalized);
        AddMembersWhoNeedSmtpUtf8();
        var mails = 0;
        using var server = ScriptedSmtpServer.Start(mail: _ => Interlocked.Increment(ref mails) == 2 ? ScriptedSmtpServer.Reply(451, "4.3.0 try again later") : null);

        var (retry, bounces) = DeliverRawUtf8Post(server.Port, retry: true);

        Assert.Equal(personalized ? 1 : 2, retry.Count);
        Assert.Equal(12, retry.Count + server.Received.Sum(m => m.Recipients.Count));
        Assert.DoesNotContain(bounces, l => l.Contains("Bounce:", StringComparison.Ordinal));
    }

    // Review 116: the rest of a batch that sent members apart for SMTPUTF8 is a transaction of
    // its own for the refused-alike rule too: counted against the whole batch (six, with the two
    // apart) its four alike refusals were taken for the members' and scored.
    [Fact]
    public void Both_parts_of_a_batch_split_for_SMTPUTF8_are_judged_alike_on_their_own()
    {
        Personalize(false);
        AddMembersWhoNeedSmtpUtf8();
        var refuse = new HashSet<string> { M(6), M(7), M(8), M(9), "jörg@example.com", "zoë@example.com" };
        using var server = ScriptedSmtpServer.Start(rcpt: a => refuse.Contains(a) ? ScriptedSmtpServer.Reply(550, "5.1.1 Recipient address rejected: User unknown in local recipient table") : null);

        // Batches of six: m0-m5, then m6-m9 with jörg and zoë apart.
        var (_, bounces) = DeliverRawUtf8Post(server.Port, retry: true, maxRecipients: 6);

        Assert.DoesNotContain(bounces, l => l.Contains(": scored", StringComparison.Ordinal));
        Assert.Contains(bounces, l => l.Contains("SMTP server refused all", StringComparison.Ordinal) && l.Contains("the relay refuses, not the members; nothing scored", StringComparison.Ordinal));
        Assert.Equal(6, server.Received.Sum(m => m.Recipients.Count));
    }

    // Review 116 LOW: a transaction whose every RCPT is refused (ten, more than SmtpServer's
    // default of five errors in a row, after which it hung up without a word; Postfix answers
    // 554 5.5.1 to the DATA and keeps the session) leaves the connection whole: the part apart
    // goes on it, and nobody waits for a relay marked down.
    [Fact]
    public void A_transaction_whose_every_recipient_is_refused_keeps_the_connection_for_the_part_apart()
    {
        Personalize(false);
        AddMembersWhoNeedSmtpUtf8();
        using var server = ScriptedSmtpServer.Start(rcpt: a => a.StartsWith("m0", StringComparison.Ordinal) ? ScriptedSmtpServer.Reply(550, "5.1.1 Recipient address rejected: User unknown in local recipient table") : null);

        // One batch: m0-m9 refused, jörg and zoë apart.
        var (retry, bounces) = DeliverRawUtf8Post(server.Port, retry: true, maxRecipients: 12);

        Assert.Empty(retry);
        var received = Assert.Single(server.Received);
        Assert.Equal(["jörg@example.com", "zoë@example.com"], received.Recipients.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(bounces, l => l.Contains(": scored", StringComparison.Ordinal));
    }

    // The same against a real Postfix as the relay (its smtpd refusing m0-m9 by an access map,
    // its error limits out of the way): the DATA refused (554 5.5.1 "no valid recipients"), the
    // session kept, and the part apart relayed on.
    [Fact]
    public void Through_Postfix_a_transaction_whose_every_recipient_is_refused_keeps_the_connection_for_the_part_apart()
    {
        Personalize(false);
        AddMembersWhoNeedSmtpUtf8();
        using var server = ScriptedSmtpServer.Start();
        var refused = string.Join(", ", Enumerable.Range(0, 10).Select(i => $"{{{M(i)} = 550 5.1.1 User unknown}}"));
        using var postfix = PostfixInstance.Create(server.Port, $$"""
            smtpd_recipient_restrictions = check_recipient_access inline:{ {{refused}} }, permit_mynetworks, reject
            smtpd_soft_error_limit = 100
            smtpd_hard_error_limit = 100
            """, "");
        postfix.Start();

        var (retry, bounces) = DeliverRawUtf8Post(postfix.Port, retry: true, maxRecipients: 12);

        Assert.Empty(retry);
        Assert.DoesNotContain(bounces, l => l.Contains(": scored", StringComparison.Ordinal));
        // Every session (the probe that waited for Postfix to listen aside) ended by our QUIT, none
        // broken: the lean path's DATA without a valid recipient refused, then the part apart on
        // the same session; MailKit's path sends no DATA and takes a new session for the part
        // apart (it needs SMTPUTF8, the other did not).
        string[] expected = _pipelining ? [" mail=2 rcpt=2/12 data=1/2 rset=1 "] : [" mail=1 rcpt=0/10 rset=1 ", " mail=1 rcpt=2 data=1 "];
        List<string> Sessions() => [.. postfix.Log().Split('\n').Where(l => l.Contains(" disconnect from ", StringComparison.Ordinal) && l.Contains(" ehlo=1 ", StringComparison.Ordinal))];
        Wait.Until(() => Sessions().Count >= expected.Length, TimeSpan.FromSeconds(30), "Postfix to log the sessions' ends");
        var sessions = Sessions();
        Assert.All(sessions, l => Assert.Contains(" quit=1 ", l, StringComparison.Ordinal));
        Assert.Equal(expected, sessions.Select(l => l[l.IndexOf(" mail=", StringComparison.Ordinal)..(l.IndexOf(" quit=", StringComparison.Ordinal) + 1)]));
        Wait.Until(() => server.Received.Sum(m => m.Recipients.Count) >= 2, TimeSpan.FromSeconds(60), "Postfix to relay the part apart");
        Assert.Equal(["jörg@example.com", "zoë@example.com"], server.Received.SelectMany(m => m.Recipients).Order(StringComparer.Ordinal));
    }

    private const string UserUnknown = "5.1.1 Recipient address rejected: User unknown in local recipient table";

    // The post to the list's members through `port`: those left in retry and the bounce processor's lines.
    private (List<string> Retry, IReadOnlyList<string> Bounces) DeliverPost(int port)
    {
        using var h = Harness(port);
        ToOut(h);
        RunnerHarness.Drain(h.Outgoing);
        RunnerHarness.Drain(h.Bounces);
        return (RetryRecipients(h), [.. h.BounceLog.Lines]);
    }

    // Review 117 HIGH: a recipient the relay could not answer for a while (Postfix's broken
    // recipient map: "451 4.3.0 Temporary lookup failure") is no answer; the nine refused alike
    // beside it are the relay refusing everyone, as they are without it: in retry, nobody scored.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void One_lookup_failure_among_everyone_else_refused_alike_scores_nobody(bool personalized)
    {
        Personalize(personalized);
        using var server = ScriptedSmtpServer.Start(rcpt: a => a == M(4) ? ScriptedSmtpServer.Reply(451, $"4.3.0 <{a}>: Recipient address rejected: Temporary lookup failure") : ScriptedSmtpServer.Reply(550, UserUnknown));

        var (retry, bounces) = DeliverPost(server.Port);

        Assert.DoesNotContain(bounces, l => l.Contains(": scored", StringComparison.Ordinal));
        Assert.Equal(Enumerable.Range(0, 10).Select(M), retry.Order(StringComparer.Ordinal));
    }

    // Review 119 HIGH: the relay's own rate limit (4.7.x, as throttling is read) after it refused
    // everyone before alike is not an answer about the members: nobody scored.
    [Theory]
    [InlineData(450, "4.7.1 Error: too many recipients from [192.0.2.1]")]
    [InlineData(451, "4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77714)")]
    public void A_rate_limit_among_everyone_else_refused_alike_scores_nobody(int status, string reply)
    {
        Personalize(false);
        using var server = ScriptedSmtpServer.Start(rcpt: a => a == M(4) ? ScriptedSmtpServer.Reply(status, reply) : ScriptedSmtpServer.Reply(550, UserUnknown));

        var (retry, bounces) = DeliverPost(server.Port);

        Assert.DoesNotContain(bounces, l => l.Contains(": scored", StringComparison.Ordinal));
        Assert.Equal(10, retry.Count);
    }

    // Review 118 HIGH: a temporary refusal about a mailbox itself (full, greylisted) is an
    // answer: two dead members of a domain beside its full mailbox are scored (they were
    // "refused alike", 2 of the 2 answered, and never scored while the mailbox stayed full).
    [Theory]
    [InlineData(452, "4.2.2 Mailbox full")]
    [InlineData(450, "4.2.0 Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/")]
    [InlineData(450, "Mailbox busy")]
    public void Dead_members_beside_a_full_or_greylisted_mailbox_of_their_domain_are_scored(int status, string reply)
    {
        Personalize(false);
        _instance.AddMembers("dev@example.org", [new Member("dead1@old.example", ""), new Member("dead2@old.example", ""), new Member("full@old.example", "")]);
        using var server = ScriptedSmtpServer.Start(rcpt: a => a.StartsWith("dead", StringComparison.Ordinal) ? ScriptedSmtpServer.Reply(550, UserUnknown)
            : a == "full@old.example" ? ScriptedSmtpServer.Reply(status, reply) : null);

        var (retry, bounces) = DeliverPost(server.Port);

        Assert.Equal(["full@old.example"], retry);
        Assert.Equal(2, bounces.Count(l => l.Contains("@old.example", StringComparison.Ordinal) && l.Contains(": scored", StringComparison.Ordinal)));
        Assert.Equal(10, server.Received.Sum(m => m.Recipients.Count));
    }

    // Review 117 HIGH: a relay that refuses everyone alike and then closes (421) before it has
    // answered every RCPT refused all it answered: nobody scored, everyone waits in retry.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Refusals_alike_until_the_relay_closes_with_421_score_nobody(bool personalized)
    {
        Personalize(personalized);
        var answered = 0;
        using var server = ScriptedSmtpServer.Start(rcpt: _ => Interlocked.Increment(ref answered) <= 5 ? ScriptedSmtpServer.Reply(550, UserUnknown) : ScriptedSmtpServer.Reply(421, "4.3.2 Service shutting down"));

        var (retry, bounces) = DeliverPost(server.Port);

        Assert.DoesNotContain(bounces, l => l.Contains(": scored", StringComparison.Ordinal));
        Assert.Equal(10, retry.Count);
    }

    // The same through a real Postfix with its default error limits, whose access map refuses the
    // members' whole domain: after twenty errors it answers 421 4.7.0 "too many errors" and hangs
    // up (review 117: the twenty before were scored).
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Through_Postfix_a_domain_refused_past_its_error_limit_scores_nobody(bool personalized)
    {
        Personalize(personalized);
        _instance.AddMembers("dev@example.org", [.. Enumerable.Range(10, 20).Select(i => new Member(M(i), ""))]);
        using var server = ScriptedSmtpServer.Start();
        using var postfix = PostfixInstance.Create(server.Port, $$"""
            smtpd_recipient_restrictions = check_recipient_access inline:{ {example.com = 550 {{UserUnknown}}} }, permit_mynetworks, reject
            smtpd_error_sleep_time = 0
            """, "");
        postfix.Start();

        var (retry, bounces) = DeliverPost(postfix.Port);

        Assert.DoesNotContain(bounces, l => l.Contains(": scored", StringComparison.Ordinal));
        Assert.Equal(30, retry.Count);
        // Postfix logs through postlogd, after the session: waited for (ci95 read it too soon).
        Wait.Until(() => postfix.Log().Contains("too many errors", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "Postfix to log its 421 after twenty errors");
        Assert.Empty(server.Received);
    }

    // Review 117 MEDIUM: one member sent apart for SMTPUTF8, refused with the same reply as the
    // rest of its domain's batch, is the relay's as they are (alone it could never be alike).
    [Fact]
    public void A_lone_member_apart_refused_like_the_rest_of_the_domain_is_not_scored()
    {
        Personalize(false);
        _instance.AddMembers("dev@example.org", [new Member("jörg@example.com", "Jörg"), new Member("ok@other.example", "")]);
        using var server = ScriptedSmtpServer.Start(rcpt: a => a.EndsWith("@example.com", StringComparison.Ordinal) ? ScriptedSmtpServer.Reply(550, UserUnknown) : null);

        var (_, bounces) = DeliverRawUtf8Post(server.Port, retry: true);

        Assert.DoesNotContain(bounces, l => l.Contains(": scored", StringComparison.Ordinal));
        Assert.Equal(["ok@other.example"], server.Received.SelectMany(m => m.Recipients));
    }

    // Review 115 MEDIUM: the new connection MailKit's path takes for members who need SMTPUTF8
    // (it had the capability off for the transaction before) is read afresh: a relay that no
    // longer offers it has them refused on our side (5.6.7, not scored), never sent raw UTF-8
    // addresses without the flag (a relay refusing those with 501 had them scored).
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_relay_that_stops_offering_SMTPUTF8_on_a_new_connection_gets_no_raw_UTF_8_address(bool personalized)
    {
        Personalize(personalized);
        AddMembersWhoNeedSmtpUtf8();
        var ehlos = 0;
        using var server = ScriptedSmtpServer.Start(smtpUtf8: () => Interlocked.Increment(ref ehlos) == 1);

        var (_, bounces) = DeliverRawUtf8Post(server.Port);

        var received = server.Received.ToList();
        Assert.All(received.Where(m => m.Recipients.Any(r => !System.Text.Ascii.IsValid(r))), m => Assert.True(m.Parameters.ContainsKey("SMTPUTF8")));
        var refused = bounces.Count(l => l.Contains("5.6.7 SMTPUTF8 is required", StringComparison.Ordinal) && l.Contains("not scored", StringComparison.Ordinal));
        Assert.Equal(12, received.Sum(m => m.Recipients.Count) + refused);
        Assert.DoesNotContain(bounces, l => l.Contains(": scored", StringComparison.Ordinal));
        if (!_pipelining && !personalized)
        {
            // The ten in one transaction with the capability off, then a new connection for the two.
            Assert.Equal(2, refused);
            Assert.True(ehlos >= 2, $"{ehlos} EHLO");
        }
    }

    // An IDN domain needs no SMTPUTF8 (its A-labels are ASCII): its members' copies of a post
    // whose header block is raw UTF-8 go without the flag on both paths, as everyone else's.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Members_of_an_IDN_domain_get_a_raw_UTF_8_header_post_without_SMTPUTF8(bool personalized)
    {
        Personalize(personalized);

        _instance.AddMembers("dev@example.org", [new Member("anna@bücher.example", "Anna"), new Member("dora@BÜCHER.example", "Dora")]);
        using var server = ScriptedSmtpServer.Start();
        DeliverRawUtf8Post(server.Port);

        var received = server.Received.ToList();
        Assert.Equal(12, received.Sum(m => m.Recipients.Count));
        Assert.All(received, m => Assert.False(m.Parameters.ContainsKey("SMTPUTF8")));
        Assert.Equal(2, received.SelectMany(m => m.Recipients).Count(r => r.EndsWith("@xn--bcher-kva.example", StringComparison.Ordinal)));
    }

    // RFC 6531 §3.2: a non-ASCII local part needs SMTPUTF8, which smtp-sink does not offer (an IDN
    // domain goes as its A-labels). The copy is not sent raw: it is refused here, as Postfix does
    // (5.6.7), and not scored (the relay's capability, not the member's address); the others are
    // delivered.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_non_ASCII_local_part_is_refused_with_5_6_7_when_the_relay_offers_no_SMTPUTF8(bool personalized)
    {
        Personalize(personalized);

        _instance.AddMembers("dev@example.org", [new Member("jörg@example.com", "Jörg"), new Member("anna@bücher.example", "Anna"), new Member("carl@MÜNCHEN.example", "Carl")]);
        using var sink = SmtpSink.Start();
        using var h = Harness(sink.Port);
        ToOut(h);
        RunnerHarness.Drain(h.Outgoing);

        Wait.Until(() => sink.Messages().SelectMany(m => m.Recipients).Count() >= 12, TimeSpan.FromSeconds(60), "12 copies at the sink");
        Assert.Equal(12, sink.Messages().SelectMany(m => m.Recipients).Distinct().Count());
        Assert.Contains(sink.Messages(), m => m.Recipients.Contains("anna@xn--bcher-kva.example")); // an IDN domain needs no SMTPUTF8
        Assert.Contains(sink.Messages(), m => m.Recipients.Contains("carl@xn--mnchen-3ya.example")); // lower case before IDNA, as DNS has it
        Assert.DoesNotContain(sink.Messages(), m => m.Recipients.Any(r => !System.Text.Ascii.IsValid(r)));
        Assert.Empty(RetryRecipients(h));
        Assert.True(h.BounceLog.Lines.Any(l => l.Contains("jörg@example.com", StringComparison.Ordinal) && l.Contains("5.6.7 SMTPUTF8 is required", StringComparison.Ordinal) && l.Contains("not scored", StringComparison.Ordinal)), string.Join("\n", h.BounceLog.Lines));
    }

    // Our own refusals are not the relay's: a list whose every member needs SMTPUTF8 is refused
    // alike, by us, and must not be taken for a relay refusing us (that waits in retry).
    [Fact]
    public void Members_refused_alike_on_our_side_are_bounces_not_a_relay_refusing_us()
    {
        _instance.CreateList("intl@example.org", l =>
        {
            l.NonMemberAction = NonMemberAction.Accept;
            l.Personalize = Personalization.Full;
        });
        _instance.AddMembers("intl@example.org", [new Member("jörg@example.com", "Jörg"), new Member("zoë@example.net", "Zoë")]);
        using var sink = SmtpSink.Start();
        using var h = Harness(sink.Port);
        h.Inject("intl@example.org", Posts.Plain(to: "intl@example.org"));
        RunnerHarness.Drain(h.Incoming);
        RunnerHarness.Drain(h.Pipeline);
        RunnerHarness.Drain(h.Outgoing);

        Assert.Empty(RetryRecipients(h));
        foreach (var member in new[] { "jörg@example.com", "zoë@example.net" })
        {
            Assert.True(h.BounceLog.Lines.Any(l => l.Contains(member, StringComparison.Ordinal) && l.Contains("5.6.7 SMTPUTF8 is required", StringComparison.Ordinal)), string.Join("\n", h.BounceLog.Lines));
        }

        Assert.DoesNotContain(h.BounceLog.Lines, l => l.Contains("the relay refuses", StringComparison.Ordinal));
    }

    [Fact]
    public void An_unreachable_server_leaves_the_post_waiting_in_retry_until_it_comes_back()
    {
        using var h = Harness();
        var port = Net.FreePort();
        var env = new Dictionary<string, string> { ["Mailman__Smtp__Port"] = port.ToString(CultureInfo.InvariantCulture) };
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain()).ExitCode);
        var first = MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: Env(env));
        Assert.Equal(0, first.ExitCode);
        Assert.Contains("unreachable", first.Stdout + first.Stderr, StringComparison.Ordinal);
        Assert.Equal(10, RetryRecipients(h).Count);
        var status = MailmanProcess.Run(_instance.Home, ["status", "--json"]).Stdout;
        Assert.Contains("\"queue\":\"retry\",\"entries\":1", status, StringComparison.Ordinal);
        var next = System.Text.Json.JsonDocument.Parse(status).RootElement.GetProperty("nextRetry").GetDateTimeOffset();
        Assert.InRange(next, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddMinutes(2));
        Assert.Contains("retry: next attempt at", MailmanProcess.Run(_instance.Home, ["status"]).Stdout, StringComparison.Ordinal);

        // Each retry entry's next attempt in the list (review 59: only `queue show` said it).
        Assert.Matches(@"\twaiting\tdev@example\.org\t.*\tnext attempt \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, attempt 2, 10 recipients",
            MailmanProcess.Run(_instance.Home, ["queue", "list", "retry"]).Stdout);

        // One set further ahead than any backoff goes at once, and the list says so (review 71).
        Runners.RetryTestHelper.SetNotBefore(_instance, DateTimeOffset.UtcNow.AddYears(1));
        Assert.Contains("UTC (further ahead than Retry:MaximumDelay", MailmanProcess.Run(_instance.Home, ["queue", "list", "retry"]).Stdout, StringComparison.Ordinal);

        Runners.RetryTestHelper.MakeDue(_instance);
        using var sink = SmtpSink.StartOn(port);
        MailmanProcess.ServeUntilIdle(_instance.Home, port, Env());
        Assert.Equal(10, sink.WaitFor(10).Count);
        Assert.Empty(RetryRecipients(h));
    }

    [Fact]
    public void Queue_flush_sends_what_waits_in_retry_back_to_out_at_once_and_each_member_gets_one_copy()
    {
        using var h = Harness();
        var port = Net.FreePort();
        var env = new Dictionary<string, string> { ["Mailman__Smtp__Port"] = port.ToString(CultureInfo.InvariantCulture) };
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain()).ExitCode);
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: Env(env)).ExitCode);
        Assert.Equal(10, RetryRecipients(h).Count);
        var id = MailmanProcess.Run(_instance.Home, ["queue", "list", "retry"]).Stdout.Split('\t')[0];
        Assert.Contains("\"NotBefore\"", MailmanProcess.Run(_instance.Home, ["queue", "show", id]).Stdout, StringComparison.Ordinal);

        // An id of no retry entry is named, and the exit says not everything moved.
        var stray = MailmanProcess.Run(_instance.Home, ["queue", "flush", "20260101000000000-0000abcd"]);
        Assert.Equal(1, stray.ExitCode);
        Assert.Contains("20260101000000000-0000abcd: not in retry", stray.Stderr, StringComparison.Ordinal);
        Assert.Equal(64, MailmanProcess.Run(_instance.Home, ["queue", "flush", "../out"]).ExitCode);
        Assert.Equal(1, _instance.Count(QueueSet.Retry));

        // Its backoff (a minute and more) is not waited for: the next run sends it.
        var flush = MailmanProcess.Run(_instance.Home, ["queue", "flush"]);
        Assert.Equal(0, flush.ExitCode);
        Assert.Contains($"{id}\tdev@example.org\t10 recipients, attempt 2", flush.Stdout, StringComparison.Ordinal);
        Assert.Contains("1 entries asked to go back to out now", flush.Stdout, StringComparison.Ordinal);

        using var sink = SmtpSink.StartOn(port);
        MailmanProcess.ServeUntilIdle(_instance.Home, port, Env());
        Assert.Equal(10, sink.WaitFor(10).Count);
        Assert.Equal(10, sink.Messages().Select(m => m.Recipients.Single()).Distinct().Count());
        Assert.Equal(10, sink.Messages().Count);
        Assert.Empty(RetryRecipients(h));
    }

    [Theory]
    [InlineData(1, 10, 10)] // slower than usual but within the timeout: delivered
    [InlineData(3, 1, 0)]   // slower than the timeout: connections time out, copies wait in retry
    public void A_slow_server_is_waited_for_up_to_the_timeout_and_no_runner_hangs(int delaySeconds, int timeoutSeconds, int delivered)
    {
        using var sink = SmtpSink.Start("-w", delaySeconds.ToString(CultureInfo.InvariantCulture));
        var env = new Dictionary<string, string>
        {
            ["Mailman__Smtp__TimeoutSeconds"] = timeoutSeconds.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Smtp__Connections"] = "4",
        };
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.RemoveMembers(ListName.Parse("dev@example.org"), TempInstance.NumberedMembers(10).Skip(4).Select(m => m.Address));
        }

        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain()).ExitCode);
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, Env(env));
        Assert.Equal(Math.Min(delivered, 4), sink.Messages().Count(m => m.Body.Contains("bye", StringComparison.Ordinal)));
        Assert.Equal(delivered == 0 ? 1 : 0, _instance.Count(QueueSet.Retry));
    }
}
