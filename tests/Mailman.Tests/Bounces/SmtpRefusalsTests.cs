// Which SMTP-time refusals are about the member's address (and may score), and when a relay
// refusing everyone alike is told from members' own failures. Pure policy, no server.
using Mailman.Bounces;

namespace Mailman.Tests.Bounces;

public sealed class SmtpRefusalsTests
{
    [Theory]
    [InlineData(550, "5.1.1 <anne@example.com>: Recipient address rejected: User unknown", true, true)]
    [InlineData(550, "5.1.10 RESOLVER.ADR.RecipientNotFound", true, true)]
    [InlineData(550, "5.2.1 mailbox disabled", true, true)]
    [InlineData(550, "no such user", true, true)]
    [InlineData(551, "user not local", true, true)]
    [InlineData(553, "mailbox name not allowed", true, true)]
    [InlineData(553, "invalid address: bad", true, true)]
    [InlineData(554, "5.7.1 <anne@example.com>: Relay access denied", true, false)]
    [InlineData(550, "5.7.1 rejected by policy", true, false)]
    [InlineData(550, "5.4.4 unable to route", true, false)]
    [InlineData(550, "5.3.0 mail system full", true, false)]
    [InlineData(501, "5.5.4 syntax error", true, false)]
    [InlineData(554, "transaction failed", true, false)]
    [InlineData(550, "5.1.1 no such user", false, false)]
    [InlineData(554, "5.6.0 content rejected", false, false)]
    [InlineData(550, "Rejected: message failed DMARC check", true, false)] // review 61: the policy in words
    [InlineData(550, "JunkMail rejected - mx.example.net is in an RBL", true, false)]
    [InlineData(553, "sorry, your mail was administratively denied. (#5.7.1)", true, false)]
    [InlineData(553, "sorry, no mailbox here by that name. (#5.1.1)", true, true)]
    public void Only_address_refusals_at_RCPT_are_about_the_address(int status, string response, bool atRcpt, bool expected)
        => Assert.Equal(expected, SmtpRefusals.IsAboutTheAddress(new SmtpRefusal("anne@example.com", status, response, atRcpt), out _));

    // Review 64: a blocklist named in a host name says our server is listed, unless the name is
    // the recipient's own domain (a dead domain of a member at spamcop.net still scores).
    [Theory]
    [InlineData("5.4.4", "X-Postfix; Host or domain name not found. Name service error for name=spamcop.net type=MX", "anne@spamcop.net", false)]
    [InlineData("5.4.4", "X-Postfix; Host or domain name not found. Name service error for name=mx.spamcop.net type=A", "anne@spamcop.net", false)]
    [InlineData("5.0.0", "smtp; 554 Rejected: 192.0.2.5 listed at zen.spamhaus.org", "anne@example.com", true)]
    [InlineData("5.0.0", "smtp; 554 Rejected: 192.0.2.5 listed at zen.spamhaus.org", "anne@spamcop.net", true)]
    public void A_blocklist_named_in_a_host_name_is_ours_but_not_the_recipients_own_domain(string status, string diagnostic, string recipient, bool ours)
        => Assert.Equal(ours, SmtpRefusals.IsAboutTheMessageOrUs(status, diagnostic, recipient));

    // Review 70, real Postfix DSNs: Barracuda's "(ADDRESS:blocked)" lost its word with the
    // address, and an innocent member was disabled; "user ADDRESS does not exist" lost its phrase
    // to the two spaces the address left, and a dead member was never disabled.
    [Theory]
    [InlineData("5.0.0", "smtp; 550 permanent failure for one or more recipients (t9@tricky.example:blocked)", true)]
    [InlineData("5.7.1", "smtp; 550 5.7.1 <t18@tricky.example>: Recipient address rejected: user t18@tricky.example does not exist", false)]
    [InlineData("5.7.1", "smtp; 550 5.7.1 The email account that you tried to reach does not exist.", false)]
    [InlineData("5.0.0", "smtp; 550 User\n    unknown", false)]
    public void Words_are_read_around_the_names_in_a_real_report(string status, string diagnostic, bool ours)
        => Assert.Equal(ours, SmtpRefusals.IsAboutTheMessageOrUs(status, diagnostic, "t9@tricky.example"));

    // Which temporary refusals at RCPT are about the recipient (an answer for the refused-alike
    // rule) and which say the relay could not, or would not, answer for it now.
    [Theory]
    [InlineData(452, "4.2.2 Mailbox full", true)]
    [InlineData(450, "4.2.0 Recipient address rejected: Greylisted", true)]
    [InlineData(450, "Mailbox busy", true)]
    [InlineData(450, " 4.1.1 <a@b.example>: Recipient address rejected: unverified address", true)]
    [InlineData(451, "4.1.10 RESOLVER.ADR.RecipientNotFound", true)]
    [InlineData(450, "4.1.8 <bounces@example.org>: Sender address rejected: Domain not found", false)]
    [InlineData(450, "4.1.7 Sender address rejected", false)]
    [InlineData(450, "4.7.1 Error: too many recipients from [192.0.2.1]", false)]
    [InlineData(451, "4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77714)", false)]
    [InlineData(450, "4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]", false)]
    [InlineData(451, "4.3.0 <a@b.example>: Recipient address rejected: Temporary lookup failure", false)]
    [InlineData(452, "4.5.3 Error: too many recipients", false)]
    [InlineData(452, "Insufficient system storage", false)]
    [InlineData(421, "4.2.0 closing", false)]
    [InlineData(450, "4.4.1 connect to mx.example.net: Connection refused", false)]
    public void Temporary_refusals_about_the_recipient_are_told_from_the_relays(int status, string reply, bool about)
        => Assert.Equal(about, Mailman.Delivery.Smtp.SmtpConnection.IsAboutTheRecipient(status, reply));

    // Review 117: a relay that echoes the local part alone ("Mailbox "anne" does not exist") still
    // refuses alike; a transaction and its part apart for SMTPUTF8 (one member: never alike on its
    // own), both refused whole with the same reply, are alike together.
    [Fact]
    public void The_local_part_echoed_alone_and_a_part_apart_of_one_are_still_alike()
    {
        SmtpRefusal R(string a, int t, int size, string text)
            => new(a, 550, string.Format(System.Globalization.CultureInfo.InvariantCulture, text, a[..a.IndexOf('@', StringComparison.Ordinal)]), true, t, size);

        Assert.Equal([0], SmtpRefusals.RefusedAlike([R("anne@x.example", 0, 2, "5.1.1 Mailbox \"{0}\" does not exist here"), R("bob@x.example", 0, 2, "5.1.1 Mailbox \"{0}\" does not exist here")], 10));
        Assert.Empty(SmtpRefusals.RefusedAlike([R("anne@x.example", 0, 2, "5.1.1 Mailbox '{0}' does not exist here"), R("bob@x.example", 0, 2, "5.1.1 Mailbox '{0}' is full")], 10));
        // A bare word is the reply's own, even where it is a member's local part.
        Assert.Equal([0], SmtpRefusals.RefusedAlike([R("user@x.example", 0, 2, "5.1.1 User unknown"), R("bob@x.example", 0, 2, "5.1.1 User unknown")], 10));

        var apart = SmtpRefusals.PartApart(0);
        const string unknown = "5.1.1 <{0}@x.example>: User unknown";
        Assert.Equal([0, apart], SmtpRefusals.RefusedAlike([R("anne@x.example", 0, 2, unknown), R("bob@x.example", 0, 2, unknown), R("jörg@x.example", apart, 1, unknown)], 10));
        // Not when one part was not refused whole (one of its members accepted), nor when the replies differ.
        Assert.Equal([0], SmtpRefusals.RefusedAlike([R("anne@x.example", 0, 2, unknown), R("bob@x.example", 0, 2, unknown), R("jörg@x.example", apart, 2, unknown)], 10));
        Assert.Equal([0], SmtpRefusals.RefusedAlike([R("anne@x.example", 0, 2, unknown), R("bob@x.example", 0, 2, unknown), R("jörg@x.example", apart, 1, "5.2.2 mailbox full")], 10));
    }

    [Fact]
    public void Every_recipient_of_a_transaction_refused_alike_is_the_relay()
    {
        SmtpRefusal R(string a, int t, int size, string text = "5.1.1 <{0}>: User unknown")
            => new(a, 550, string.Format(System.Globalization.CultureInfo.InvariantCulture, text, a), true, t, size);

        // Transaction 0: both refused alike (the address echoed aside); transaction 1: one of two.
        Assert.Equal([0], SmtpRefusals.RefusedAlike([R("a@x.example", 0, 2), R("b@y.example", 0, 2), R("c@z.example", 1, 2)], 10));

        // Different replies: members' own failures.
        Assert.Empty(SmtpRefusals.RefusedAlike([R("a@x.example", 0, 2), R("b@y.example", 0, 2, "5.1.1 mailbox gone")], 10));

        // One-recipient transactions (personalized): the whole chunk refused alike.
        Assert.Equal([0, 1, 2], SmtpRefusals.RefusedAlike([R("a@x.example", 0, 1), R("b@x.example", 1, 1), R("c@x.example", 2, 1)], 3));
        Assert.Empty(SmtpRefusals.RefusedAlike([R("a@x.example", 0, 1), R("b@x.example", 1, 1)], 3));
        Assert.Empty(SmtpRefusals.RefusedAlike([R("a@x.example", 0, 1)], 1));

        // Our own refusals (never sent) are not the server's: two in one transaction are not alike.
        SmtpRefusal Ours(string a) => new(a, 553, "5.6.7 SMTPUTF8 is required, but was not offered by 127.0.0.1:25", true, 0, 2, Ours: true);
        Assert.Empty(SmtpRefusals.RefusedAlike([Ours("jörg@x.example"), Ours("zoë@x.example")], 5));
        Assert.Empty(SmtpRefusals.RefusedAlike([Ours("jörg@x.example"), Ours("zoë@x.example")], 2));
    }

    [Fact]
    public void The_relay_refusing_for_itself_is_told_apart_at_RCPT_only()
    {
        SmtpRefusal R(string a, int t, string text, bool atRcpt = true, bool ours = false)
            => new(a, 550, text, atRcpt, t, 1, ours);

        // One recipient refused for a quota or policy mid-chunk: the relay's; 5.1.1 and 5.6.x are not.
        Assert.Equal([1, 2, 3], SmtpRefusals.ForTheRelay(
            [R("a@x.example", 0, "5.1.1 user unknown"), R("b@x.example", 1, "5.4.5 Daily user sending quota exceeded"), R("c@x.example", 2, "5.7.1 Relay access denied"),
             R("d@x.example", 3, "5.3.0 mail system full"), R("e@x.example", 4, "5.6.0 content rejected")], 10));

        // The same reply to the whole chunk, whatever it says; after DATA (the message) never; ours never.
        Assert.Equal([0, 1, 2], SmtpRefusals.ForTheRelay([R("a@x.example", 0, "5.1.1 <a@x.example>: user unknown"), R("b@x.example", 1, "5.1.1 <b@x.example>: user unknown"), R("c@x.example", 2, "5.1.1 <c@x.example>: user unknown")], 3));

        // Two dead members of one domain in a batched transaction, the chunk's others accepted: bounces.
        SmtpRefusal B(string a) => new(a, 550, $"5.1.1 <{a}>: User unknown in virtual mailbox table", true, 1, 2);
        Assert.Empty(SmtpRefusals.ForTheRelay([B("x1@small.example"), B("x2@small.example")], 7));
        Assert.Empty(SmtpRefusals.ForTheRelay([B("x1@small.example"), B("x2@small.example")], 2));
        Assert.Empty(SmtpRefusals.ForTheRelay([R("a@x.example", 0, "5.7.1 spam", atRcpt: false), R("b@x.example", 1, "5.7.1 spam", atRcpt: false)], 2));
        Assert.Empty(SmtpRefusals.ForTheRelay([R("a@x.example", 0, "5.6.7 SMTPUTF8 is required", ours: true), R("b@x.example", 1, "5.6.7 SMTPUTF8 is required", ours: true)], 2));
    }

    [Fact]
    public void After_DATA_only_the_relays_own_state_waits_in_retry()
    {
        SmtpRefusal D(string a, int t, int status, string text) => new(a, status, text, false, t, 1);

        // A sending quota or a mail system problem answered at the end of DATA: the relay's.
        Assert.Equal([0, 1, 2], SmtpRefusals.ForTheRelay(
            [D("a@x.example", 0, 550, "5.4.5 Daily user sending quota exceeded"), D("b@x.example", 1, 552, "5.3.1 mail system full"), D("c@x.example", 2, 554, "5.3.5 system incorrectly configured")], 10));

        // The message's: too big, a feature it needs, its content, a policy on it, no code at all,
        // a loop (Postfix's 5.4.0 too many hops, 5.4.6, Exchange's 5.4.14), anything undefined.
        Assert.Empty(SmtpRefusals.ForTheRelay(
            [D("a@x.example", 0, 552, "5.3.4 Message size exceeds fixed limit"), D("b@x.example", 1, 554, "5.3.3 8BITMIME not supported"), D("c@x.example", 2, 554, "5.6.0 content rejected"),
             D("d@x.example", 3, 550, "5.7.1 spam"), D("e@x.example", 4, 554, "transaction failed"), D("f@x.example", 5, 550, "5.1.1 user unknown"),
             D("g@x.example", 6, 554, "5.4.0 too many hops"), D("h@x.example", 7, 554, "5.4.6 routing loop detected"), D("i@x.example", 8, 550, "5.4.14 Hop count exceeded - possible mail loop"),
             D("j@x.example", 9, 554, "5.3.0 message content rejected")], 20));
    }
}
