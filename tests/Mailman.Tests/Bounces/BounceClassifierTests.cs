// The classifier as a whole: the detector order, and mail it must survive (garbage, 20 MB,
// broken charsets, hostile lines, deep nesting). Results only: no test here measures time.
using System.Text;
using Mailman.Bounces;
using Mailman.Tests.Bounces.Detectors;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Bounces;

public sealed class BounceClassifierTests
{
    private static BounceAnalysis Classify(string raw) => DsnTests.Classify(Encoding.UTF8.GetBytes(raw.Replace("\r\n", "\n", StringComparison.Ordinal)));

    [Fact]
    public void Detector_names_are_unique_and_stable()
    {
        Assert.Equal(
            ["ARF", "MDN", "DSN", "Exim", "Postfix", "Qmail", "Yahoo", "Sina", "AOL", "SMTP32", "Exchange", "Netscape", "Microsoft", "GroupWise", "AutoReply", "SimpleMatch", "SimpleWarning", "Yale", "LLNL"],
            BounceDetectors.All.Select(d => d.Name));
        Assert.All(BounceDetectors.All, d => Assert.False(string.IsNullOrWhiteSpace(d.Description)));
    }

    [Fact]
    public void An_ordinary_message_is_unrecognized()
    {
        var result = DsnTests.Classify(Posts.Plain());
        Assert.Equal(BounceKind.Unrecognized, result.Kind);
        Assert.Null(result.Detector);
        Assert.Empty(result.Addresses);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(100_000)]
    public void Garbage_is_unrecognized(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        Assert.Equal(BounceKind.Unrecognized, BounceClassifier.Classify(new MemoryStream(bytes)).Kind);
    }

    [Fact]
    public void A_twenty_megabyte_bounce_is_read_only_as_far_as_it_needs()
    {
        var original = "From: dev@example.org\nTo: anne@example.com\nSubject: big\n\n" + new string('x', 76) + "\n";
        var big = new StringBuilder(original.Length * 270_000);
        for (var i = 0; i < 270_000; i++)
        {
            big.Append(new string('x', 76)).Append('\n');
        }

        var result = DsnTests.Classify(BounceMessages.Dsn([BounceMessages.Recipient("anne@example.com")], attachedOriginal: original + big));
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Equal("anne@example.com", Assert.Single(result.Addresses).Address);
    }

    [Fact]
    public void A_twenty_megabyte_text_bounce_is_scanned_only_in_its_first_64_KB()
    {
        var text = new StringBuilder("From: MAILER-DAEMON@mx.example.com\nSubject: failure\n\nA message that you sent could not be delivered to one or more of its recipients.\n\n  <anne@example.com>\n");
        while (text.Length < 20 * 1024 * 1024)
        {
            text.Append("  <late@example.com> and more text on a line of ordinary length\n");
        }

        var result = Classify(text.ToString());
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Contains(result.Addresses, a => a.Address == "anne@example.com");
        Assert.True(result.Addresses.Count < 2000, "only the first 64 KB of the part is read");
    }

    [Theory]
    [InlineData("<")]
    [InlineData("a")]
    [InlineData("a@")]
    [InlineData(" a")]
    public void A_huge_hostile_line_after_every_start_phrase_cannot_make_a_regex_backtrack(string unit)
    {
        var hostile = string.Concat(Enumerable.Repeat(unit, 60_000 / unit.Length));
        var phrases = string.Join('\n', Mailman.Bounces.Detectors.SimpleMatch.Patterns.Select(p => p.Hint));
        var result = Classify($"From: someone@example.com\nSubject: x\n\n{phrases}\nthis message was undeliverable due to the following reason:\n{hostile}\n");
        Assert.NotEqual(BounceKind.Temporary, result.Kind);
    }

    [Fact]
    public void Unknown_and_lying_charsets_never_throw_and_ascii_addresses_are_still_found()
    {
        var head = "From: MAILER-DAEMON@mx.example.com\nSubject: failure\nMIME-Version: 1.0\nContent-Type: text/plain; charset=\"x-no-such-charset\"\nContent-Transfer-Encoding: 8bit\n\n";
        var body = "Hi. This is the qmail-send program at mx.example.com.\n\xe9t\xe9 \xff\xfe invalid utf-8\n\n<anne@example.com>:\nSorry, no mailbox here by that name.\n\n--- Below this line is a copy of the message.\n";
        var raw = Encoding.Latin1.GetBytes(head + body);
        var result = DsnTests.Classify(raw);
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Equal("Qmail", result.Detector);
        Assert.Equal("anne@example.com", Assert.Single(result.Addresses).Address);
    }

    [Fact]
    public void A_utf8_address_in_a_global_dsn_is_returned_as_written()
    {
        var raw = BounceMessages.Dsn(["Final-Recipient: utf-8; jos\u00e9@exampl\u00e9.com\nAction: failed\nStatus: 5.1.1"]);
        var text = Encoding.UTF8.GetString(raw).Replace("message/delivery-status", "message/global-delivery-status", StringComparison.Ordinal);
        var result = DsnTests.Classify(Encoding.UTF8.GetBytes(text));
        Assert.Equal("jos\u00e9@exampl\u00e9.com", Assert.Single(result.Addresses).Address);
    }

    [Fact]
    public void A_base64_delivery_status_with_broken_bytes_is_decoded_leniently()
    {
        var fields = Encoding.Latin1.GetBytes("Final-Recipient: rfc822; anne@example.com\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 caf\xe9 \xff\n");
        var text = Encoding.UTF8.GetString(BounceMessages.Dsn(["X-Placeholder: 1"]))
            .Replace("Content-Type: message/delivery-status\n\n", "Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n" + Convert.ToBase64String(fields) + "\n!!garbage!!\n\nX-Ignored: ", StringComparison.Ordinal);
        var result = DsnTests.Classify(Encoding.UTF8.GetBytes(text));
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Equal("anne@example.com", Assert.Single(result.Addresses).Address);
    }

    [Fact]
    public void Deeply_nested_attachments_and_thousands_of_parts_are_walked_within_bounds()
    {
        var nested = "From: a@example.com\nSubject: 0\n\nbody\n";
        for (var i = 1; i < 60; i++)
        {
            nested = $"From: a@example.com\nSubject: {i}\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n{nested}";
        }

        Assert.Equal(BounceKind.Unrecognized, Classify(nested).Kind);

        var many = new StringBuilder("From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n");
        for (var i = 0; i < 5000; i++)
        {
            many.Append("--B\nContent-Type: text/plain\n\npart ").Append(i).Append('\n');
        }

        many.Append("--B--\n");
        using var message = MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(many.ToString())));
        var context = new BounceContext(message);
        Assert.Equal(BounceContext.MaxParts, context.Parts.Count);
        Assert.Equal(BounceContext.MaxTextParts, context.TextParts.Count);
        Assert.Equal(BounceKind.Unrecognized, BounceClassifier.Classify(message).Kind);
    }

    [Fact]
    public void A_qmail_bounce_attaching_a_dsn_names_the_qmail_recipient()
    {
        var inner = Encoding.UTF8.GetString(BounceMessages.Dsn([BounceMessages.Recipient("anne@example.com")]));
        var raw = "From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=Q\n\n"
            + "--Q\nContent-Type: text/plain\n\nHi. This is the qmail-send program at mx.example.net.\nI'm afraid I wasn't able to deliver your message.\n\n<owner@example.net>:\nSorry, no mailbox here by that name.\n\n--- Below this line is a copy of the message.\n"
            + "--Q\nContent-Type: message/rfc822\n\n" + inner + "\n--Q--\n";
        var result = Classify(raw);
        Assert.Equal("Qmail", result.Detector);
        Assert.Equal(["owner@example.net"], result.Addresses.Select(a => a.Address));
    }

    // Review 76 LOW: Yahoo!'s own format kept no diagnostic, so its report of a refusal of our
    // server (a listing, a policy) could not be told from a dead mailbox and scored.
    [Fact]
    public void Yahoos_own_format_keeps_what_the_remote_host_said_per_address()
    {
        var result = Classify("From: MAILER-DAEMON@yahoo.com\nSubject: failure delivery\n\nMessage from yahoo.com.\nUnable to deliver message to the following address(es).\n\n"
            + "<anne@example.com>:\nRemote host said: 554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org\n\n"
            + "<bob@example.com>:\nSorry your message to bob@example.com cannot be delivered. This account has been disabled or discontinued.\n\n"
            + "--- Original message follows.\n\n<carol@example.com>: not a recipient\n");
        Assert.Equal("Yahoo", result.Detector);
        Assert.Equal(
            [("anne@example.com", "Remote host said: 554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org"),
             ("bob@example.com", "Sorry your message to bob@example.com cannot be delivered. This account has been disabled or discontinued.")],
            result.Addresses.Select(a => (a.Address, a.Diagnostic)));
        Assert.True(SmtpRefusals.IsAboutTheMessageOrUs(null, result.Addresses[0].Diagnostic, "anne@example.com"));
        Assert.False(SmtpRefusals.IsAboutTheMessageOrUs(null, result.Addresses[1].Diagnostic, "bob@example.com"));
    }

    // Review 140: qmail's delay warning and a plain "could not be delivered ... yet" were scored
    // as failures (Qmail, SimpleMatch); a delay notice says so near its start, and is temporary.
    // A failure whose returned post says "this is just a warning" is still a failure.
    [Theory]
    [InlineData("Hi. This is the qmail-send program at mx.example.com.\nI am still trying to deliver your message, this is just a warning:\n\n<anne@example.com>:\nConnection timed out. I will keep trying.\n\n--- Below this line is a copy of the message.\n", "temporary")]
    [InlineData("Your message could not be delivered to anne@example.com yet.\nThe mail server will continue trying to deliver it for 5 days.\n", "temporary")]
    [InlineData("Hi. This is the qmail-send program at mx.example.com.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n<anne@example.com>:\nSorry, no mailbox here by that name.\n\n--- Below this line is a copy of the message.\n\n"
        + "Subject: hello\n\nRelax, this is just a warning: I will keep trying to fix the build.\n", "permanent")]
    public void A_delay_notice_in_a_failures_words_is_temporary(string body, string kind)
    {
        var result = Classify("From: MAILER-DAEMON@mx.example.com\nTo: dev-bounces@example.org\nSubject: failure notice\n\n" + body);
        Assert.Equal(kind, result.KindName);
        Assert.Equal(["anne@example.com"], result.Addresses.Select(a => a.Address));
    }

    // Review 140: SimpleMatch's formats carry no status; the text of the block that names the
    // address is what the remote server said, read by the same rules as a DSN's diagnostic, and
    // not the returned message's header fields quoted in it.
    [Theory]
    [InlineData("554 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", true)]
    [InlineData("550 5.7.1 Unauthenticated email from reject.test is not accepted due to domain's DMARC policy", true)]
    [InlineData("421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred", true)]
    [InlineData("550-5.1.1 The email account that you tried to reach does not exist.", false)]
    public void A_format_without_a_status_keeps_the_blocks_words_as_its_diagnostic(string said, bool notAboutTheAddress)
    {
        var result = Classify($"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nSubject: Delivery Status Notification (Failure)\n\nDelivery to the following recipient failed permanently:\n\n     anne@example.com\n\n"
            + $"Technical details of permanent failure:\nThe error that the other server returned was:\n{said}\nSubject: Re: our spam policy\n\n----- Original message -----\n\nSubject: Re: our spam policy\n\nBlocked again by the policy.\n");
        Assert.Equal("SimpleMatch", result.Detector);
        var anne = Assert.Single(result.Addresses);
        Assert.Contains(said, anne.Diagnostic, StringComparison.Ordinal);
        Assert.DoesNotContain("Subject", anne.Diagnostic, StringComparison.Ordinal);
        Assert.DoesNotContain("Blocked again", anne.Diagnostic, StringComparison.Ordinal);
        Assert.Equal(notAboutTheAddress, SmtpRefusals.IsAboutTheMessageOrUs(anne.Status, anne.Diagnostic, anne.Address));
    }

    // Review 140: any other format that gives an address neither a status nor words carries the
    // notice's own opening (before the returned message, without its quoted header fields) as
    // the diagnostic.
    [Theory]
    [InlineData("Your mail was refused: our server is listed at zen.spamhaus.org.", true)]
    [InlineData("The mailbox of this screen name does not exist any more.", false)]
    public void A_format_without_words_per_address_is_read_in_the_notices_opening(string said, bool notAboutTheAddress)
    {
        var result = Classify($"From: Mail Delivery Subsystem <MAILER-DAEMON@aol.com>\nSubject: Returned mail\n\nThe mail you sent could not be delivered:\n{said}\n\n"
            + "Your mail to the following recipients could not be delivered\n\n    screenname\n\n----- Original message -----\nSubject: our spam policy\n\nThe policy blocked it.\n");
        Assert.Equal("AOL", result.Detector);
        var address = Assert.Single(result.Addresses);
        Assert.Contains(said, address.Diagnostic, StringComparison.Ordinal);
        Assert.DoesNotContain("policy", address.Diagnostic, StringComparison.Ordinal);
        Assert.Equal(notAboutTheAddress, SmtpRefusals.IsAboutTheMessageOrUs(address.Status, address.Diagnostic, address.Address));
    }

    // Review 142: the returned post's words were read as the server's: Exchange's indented
    // "  Subject:", a block that ran on past its part into the returned post (Dovecot's end line
    // is in a part not read), a returned-message marker after a space (Yale's).
    [Fact]
    public void The_returned_posts_words_are_not_read_as_the_servers()
    {
        var aol = Classify("From: MAILER-DAEMON@aol.com\nSubject: Returned mail\n\nYour message\n  Subject: our spam policy is blocked\ndid not reach the following recipients:\n"
            + "Your mail to the following recipients could not be delivered\n\n    screenname\n\n ----- Unsent message below: policy, spam, will continue trying\n");
        Assert.Equal(("AOL", "permanent"), (aol.Detector, aol.KindName));
        Assert.DoesNotContain("policy", Assert.Single(aol.Addresses).Diagnostic, StringComparison.Ordinal);

        var dovecot = Classify("From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.com>\nSubject: Automatically rejected mail\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=disposition-notification; boundary=B\n\n"
            + "--B\nContent-Type: text/plain\n\nYour message to <anne@example.com> was automatically rejected:\nQuota exceeded (mailbox for user is full)\n\n"
            + "--B\nContent-Type: message/disposition-notification\n\nReporting-UA: mx.example.com; Dovecot Mail Delivery Agent\nFinal-Recipient: rfc822; anne@example.com\nDisposition: automatic-action/MDN-sent-automatically; deleted\n\n"
            + "--B\nContent-Type: message/rfc822\n\nFrom: poster@example.net\nSubject: hi\n\nThe new spam policy blocked my mail again.\n--B--\n");
        Assert.Equal(("SimpleMatch", "permanent"), (dovecot.Detector, dovecot.KindName));
        var anne = Assert.Single(dovecot.Addresses);
        Assert.Contains("Quota exceeded", anne.Diagnostic, StringComparison.Ordinal);
        Assert.DoesNotContain("policy", anne.Diagnostic, StringComparison.Ordinal);
        Assert.False(SmtpRefusals.IsAboutTheMessageOrUs(anne.Status, anne.Diagnostic, anne.Address));
    }

    [Fact]
    public void Exims_delay_warning_naming_RCPT_TO_in_its_delay_reason_is_temporary()
    {
        var result = Classify("""
            From: Mail Delivery System <Mailer-Daemon@mx.example.net>
            To: dev-bounces@example.org
            Subject: Warning: message 1tABCD-000123-Ef delayed 24 hours
            Auto-Submitted: auto-replied

            This message was created automatically by mail delivery software.
            A message that you sent has not yet been delivered to one or more of its
            recipients after more than 24 hours on the queue on mx.example.net.

            The message identifier is:     1tABCD-000123-Ef
            The subject of the message is: [dev] hello
            The date of the message is:    Mon, 30 Nov 2026 10:00:00 +0000

            The address to which the message has not yet been delivered is:

              anne@example.com
                Delay reason: SMTP error from remote mail server after RCPT TO:<anne@example.com>:
                host mx.example.com [192.0.2.1]: 451 4.7.1 Greylisted, try again later

            No action is required on your part. Delivery attempts will continue for
            some time, and this warning may be repeated at intervals if the message
            remains undelivered. Eventually the mail delivery software will give up,
            and when that happens, the message will be returned to you.
            """);
        Assert.Equal(BounceKind.Temporary, result.Kind);
        Assert.Equal("SimpleWarning", result.Detector);
        Assert.Equal("anne@example.com", Assert.Single(result.Addresses).Address);
    }

    [Fact]
    public void A_Sendmail_warning_names_the_address_without_its_dressing()
    {
        var result = Classify("""
            From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>
            To: dev-bounces@example.org
            Subject: Warning: could not send message for past 4 hours

                **********************************************
                **      THIS IS A WARNING MESSAGE ONLY      **
                **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **
                **********************************************

            The original message was received at Mon, 30 Nov 2026 10:00:00 GMT
            from localhost [127.0.0.1]

               ----- Transcript of session follows -----
            <anne@example.com>... Deferred: Connection timed out with mx.example.com.
            Warning: message still undelivered after 4 hours
            Will keep trying until message is 5 days old
            """);
        Assert.Equal(BounceKind.Temporary, result.Kind);
        Assert.Equal("anne@example.com", Assert.Single(result.Addresses).Address);
    }

    [Theory]
    [InlineData("Out of Office: [dev] hello", "X-MS-Exchange-Inbox-Rules-Loop: anne@example.com")]
    [InlineData("Automatic reply: [dev] hello", "X-MS-Exchange-Inbox-Rules-Loop: anne@example.com")]
    [InlineData("Abwesenheitsnotiz: [dev] hello", "Precedence: junk")]
    [InlineData("Out of the office", "Precedence: bulk")]
    [InlineData("Re: [dev] hello", "X-Autoreply: yes")]
    [InlineData("Re: [dev] hello", "X-Autorespond: yes")]
    public void Absence_notices_marked_only_by_Precedence_or_Exchange_or_autoreply_headers_are_not_bounces(string subject, string header)
    {
        var result = Classify($"From: Anne <anne@example.com>\nTo: dev-bounces+anne=example.com@example.org\nSubject: {subject}\n{header}\n\nI am away until Monday.\n");
        Assert.Equal(BounceKind.NotABounce, result.Kind);
        Assert.Equal("AutoReply", result.Detector);
    }

    [Theory]
    [InlineData("Re: [dev] hello", "Precedence: bulk")]
    [InlineData("Out of Office: [dev] hello", "X-Mailer: Outlook")]
    public void A_reply_without_both_an_absence_subject_and_a_generated_marker_stays_unrecognized(string subject, string header)
    {
        var result = Classify($"From: Anne <anne@example.com>\nSubject: {subject}\n{header}\n\nThanks, that works.\n");
        Assert.Equal(BounceKind.Unrecognized, result.Kind);
    }
}
