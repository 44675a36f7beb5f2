// Review 79: odd posts through incoming and the pipeline come out as every receiver takes them.
using System.Text;
using Mailman.Lists;
using Mailman.Notices;
using Mailman.Queues;
using Mailman.TestSupport;
using MimeKit;
using MimeKit.Cryptography;

namespace Mailman.Tests.Runners;

public sealed class OddPostTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    // Through incoming and the pipeline: the out entry's bytes as outgoing sends them.
    private byte[] Piped(string raw, Action<MailingList>? configure = null, string sender = "poster@example.net")
    {
        _instance.CreateList("dev@example.org", l =>
        {
            l.NonMemberAction = NonMemberAction.Accept;
            configure?.Invoke(l);
        });
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(2));
        using var h = new RunnerHarness(_instance);
        h.Inject("dev@example.org", Encoding.UTF8.GetBytes(raw), sender);
        Assert.Equal(1, RunnerHarness.Drain(h.Incoming));
        Assert.Equal(1, RunnerHarness.Drain(h.Pipeline));
        var outQueue = h.Queues[QueueSet.Out];
        return outQueue.Load(Assert.IsType<ClaimedEntry>(outQueue.TryClaim())).Message;
    }

    private static MimeMessage Parse(byte[] bytes) => MimeMessage.Load(new MemoryStream(bytes));

    private static string[] Lines(byte[] bytes) => Encoding.Latin1.GetString(bytes).Split("\r\n");

    [Theory]
    [InlineData("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8K\n", "pied de page")]
    [InlineData("\nplain body \u00e9\n", "pied de page \u00fc")]
    [InlineData("Content-Type: text/html\n\n<p>hi</p>\n", "footer")]
    public void A_post_the_footer_changes_declares_MIME_Version(string rest, string footer)
    {
        var bytes = Piped("From: a@example.com\nTo: dev@example.org\nSubject: s\n" + rest, l => l.FooterTemplate = footer);
        var message = Parse(bytes);
        Assert.Equal("1.0", Assert.Single(message.Headers, x => x.Id == HeaderId.MimeVersion).Value.Trim());
        Assert.Contains(footer, Encoding.UTF8.GetString(bytes), StringComparison.Ordinal);
    }

    [Fact]
    public void An_ascii_post_with_an_ascii_footer_appended_stays_as_it_was_declared()
    {
        var message = Parse(Piped("From: a@example.com\nTo: dev@example.org\nSubject: s\n\nbody\n", l => l.FooterTemplate = "footer"));
        Assert.False(message.Headers.Contains(HeaderId.MimeVersion));
    }

    [Theory]
    [InlineData("", null)]
    [InlineData("From: undisclosed:;\n", "undisclosed:;")]
    [InlineData("From: \n", null)]
    [InlineData("From: foo\n", "foo")]
    public void A_post_without_a_mailbox_in_From_goes_out_from_its_envelope_sender(string from, string? original)
    {
        var message = Parse(Piped(from + "To: dev@example.org\nSubject: s\n\nbody\n"));
        Assert.Equal("poster@example.net", Assert.Single(message.From.Mailboxes).Address);
        Assert.Single(message.Headers, x => x.Id == HeaderId.From);
        Assert.Equal(original, message.Headers["X-Original-From"]);
    }

    // Review 82: Postfix's pipe gives the null sender as MAILER-DAEMON, no address to be From.
    [Fact]
    public void A_post_without_From_from_the_null_sender_is_left_without_one()
    {
        var message = Parse(Piped("To: dev@example.org\nSubject: s\n\nbody\n", sender: "MAILER-DAEMON"));
        Assert.DoesNotContain(message.Headers, x => x.Id == HeaderId.From);
    }

    // Review 82: a message/rfc822 declared binary holding a signed part (kept as it came) was
    // relabelled 8bit; a message MimeKit did not parse (past its depth) went out base64.
    [Fact]
    public void An_attached_message_keeps_binary_around_a_signed_part_and_an_unparsed_message_is_not_encoded()
    {
        var longLine = new string('s', 2000);
        var raw = "From: a@example.com\nTo: dev@example.org\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n"
            + "--B\nContent-Type: message/rfc822\nContent-Transfer-Encoding: binary\n\nFrom: x@example.com\nSubject: inner\nMIME-Version: 1.0\n"
            + "Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; micalg=pgp-sha256; boundary=S\n\n"
            + $"--S\nContent-Type: text/plain\nContent-Transfer-Encoding: binary\n\n{longLine}\n--S\nContent-Type: application/pgp-signature\n\nsig\n--S--\n"
            + "--B--\n";
        var message = Parse(Piped(raw));
        var attached = Assert.IsType<MessagePart>(Assert.IsType<Multipart>(message.Body)[0]);
        Assert.Equal("binary", attached.Headers[HeaderId.ContentTransferEncoding]?.Trim());
        Assert.Contains(longLine, Encoding.UTF8.GetString(Piped2Bytes(message)), StringComparison.Ordinal);

        var opaque = MimeMessage.Load(new MemoryStream(Encoding.Latin1.GetBytes("From: a@example.com\nSubject: s\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\nnot\0parsed\n")));
        var part = new MimePart("message", "rfc822") { Content = new MimeContent(new MemoryStream(Encoding.Latin1.GetBytes("not\0parsed\n"))) };
        opaque.Body = part;
        Assert.False(Mailman.Delivery.WireFormat.MakeTransportable(opaque));
        Assert.Equal(ContentEncoding.Default, part.ContentTransferEncoding);
    }

    private static byte[] Piped2Bytes(MimeMessage message)
    {
        using var output = new MemoryStream();
        message.WriteTo(output);
        return output.ToArray();
    }

    [Fact]
    public void A_post_with_two_From_fields_goes_out_with_the_first()
    {
        var message = Parse(Piped("From: a@example.com\nFrom: b@example.com\nTo: dev@example.org\nSubject: s\n\nbody\n"));
        Assert.Equal("a@example.com", Assert.Single(message.Headers, x => x.Id == HeaderId.From).Value.Trim());
    }

    // Review 140: a second Reply-To went out beside the first (a client reading the last
    // replied to its address alone; strict providers refuse a message with two). Reply-To, To
    // and Cc each go out as one field naming every address of them, in order (To here is the
    // member's own, personalized at sending).
    [Fact]
    public void A_post_with_two_Reply_To_To_or_Cc_fields_goes_out_with_one_of_each_naming_all_their_addresses()
    {
        var message = Parse(Piped("From: a@example.com\nReply-To: ANNE@Reject.Test\nTo: dev@example.org\nCc: c1@example.com\nReply-To: Other <other@x.test>\nTo: t2@example.com\nCc: c2@example.com, c3@example.com\nSubject: s\n\nbody\n"));
        Assert.Single(message.Headers, x => x.Id == HeaderId.ReplyTo);
        Assert.Single(message.Headers, x => x.Id == HeaderId.To);
        Assert.Single(message.Headers, x => x.Id == HeaderId.Cc);
        Assert.Equal(["ANNE@Reject.Test", "other@x.test"], message.ReplyTo.Mailboxes.Select(m => m.Address));
        Assert.Equal(["c1@example.com", "c2@example.com", "c3@example.com"], message.Cc.Mailboxes.Select(m => m.Address));
        Assert.Equal("Other", message.ReplyTo.Mailboxes.Last().Name);
    }

    // Review 142: merged through MimeKit's parse, what it could not read was lost (Outlook's
    // "a; b", a broken address). The values are joined as written.
    [Fact]
    public void Two_Cc_fields_are_joined_as_written_what_a_parser_cannot_read_included()
    {
        var bytes = Piped("From: a@example.com\nTo: dev@example.org\nCc: a1@example.com; b1@example.com\nReply-To: =?UTF-8?B?QW5uZQ==?= <anne@example.com>\nSubject: s\nCc: broken@@example..net,\n  Dave <dave@example.com>\nReply-To:\nReply-To: other@x.test\n\nbody\n");
        var head = Encoding.Latin1.GetString(bytes)[..Encoding.Latin1.GetString(bytes).IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        Assert.Contains("\r\nCc: a1@example.com; b1@example.com, broken@@example..net,\r\n  Dave <dave@example.com>\r\n", head, StringComparison.Ordinal);
        Assert.Contains("\r\nReply-To: =?UTF-8?B?QW5uZQ==?= <anne@example.com>, other@x.test\r\n", head, StringComparison.Ordinal);
        Assert.Single(Parse(bytes).Headers, x => x.Id == HeaderId.Cc);
        Assert.Single(Parse(bytes).Headers, x => x.Id == HeaderId.ReplyTo);
    }

    // As Postfix's drop_headers: the poster's Return-Path (the pipe's flag R writes it) went to
    // every member, beside the one their own MTA adds.
    [Fact]
    public void Return_Path_Bcc_and_Content_Length_are_dropped_as_Postfix_drops_them()
    {
        var message = Parse(Piped("Return-Path: <poster@example.net>\nFrom: a@example.com\nTo: dev@example.org\nBcc: secret@example.com\nResent-Bcc: hidden@example.com\nContent-Length: 5\nErrors-To: a@example.com\nSender: agent@example.com\nSubject: s\n\nbody\n"));
        Assert.DoesNotContain(message.Headers, x => x.Id is HeaderId.ReturnPath or HeaderId.Bcc or HeaderId.ResentBcc or HeaderId.ContentLength);
        Assert.False(message.Headers.Contains("Errors-To"));
        Assert.Equal("agent@example.com", message.Sender?.Address);
        Assert.Equal("a@example.com", message.From.Mailboxes.Single().Address);
    }

    // A line without a colon among the post's fields went out as it came, and a relay took it
    // for the end of the header block: the list's own fields after it became body text.
    [Fact]
    public void A_field_with_white_space_before_its_colon_is_kept()
    {
        var message = Parse(Piped("From: a@example.com\nTo: dev@example.org\nX-Obsolete : kept\nSubject : old style\n\nbody\n"));
        Assert.Equal("kept", message.Headers["X-Obsolete"]?.Trim());
        Assert.EndsWith("old style", message.Subject, StringComparison.Ordinal);
    }

    // inject took a first line "From : Alice" for an mbox From_ line and dropped the post's From.
    [Fact]
    public void A_first_From_field_with_white_space_before_its_colon_is_the_posts_From()
    {
        var message = Parse(Piped("From : Alice <alice@example.com>\nTo: dev@example.org\nSubject: s\n\nbody\n", sender: "bounce-alice@example.net"));
        Assert.Equal("alice@example.com", message.From.Mailboxes.Single().Address);
        Assert.False(message.Headers.Contains("X-Original-From"));
    }

    [Theory]
    [InlineData("NoColonLine here\n")]
    [InlineData("NoColon\n")]
    public void A_header_line_that_is_no_field_is_dropped(string line)
    {
        var bytes = Piped("From: a@example.com\nTo: dev@example.org\n" + line + "Subject: s\n\nbody\n");
        var text = Encoding.UTF8.GetString(bytes);
        var head = text[..text.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        Assert.All(head.Split("\r\n"), l => Assert.True(l.Contains(':', StringComparison.Ordinal) || l.StartsWith(' ') || l.StartsWith('\t'), l));
        Assert.Contains("List-Id:", head, StringComparison.Ordinal);
        Assert.Contains("\r\nSubject:", head, StringComparison.Ordinal);
        Assert.StartsWith("body\n", Parse(bytes).TextBody!.ReplaceLineEndings("\n"), StringComparison.Ordinal);
    }

    [Fact]
    public void A_second_Content_Type_of_the_post_is_dropped_and_the_first_one_kept()
    {
        var bytes = Piped("From: a@example.com\nTo: dev@example.org\nSubject: s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\nContent-Type: multipart/mixed; boundary=X\nContent-Transfer-Encoding: base64\n\n--X\n\nhidden\n--X--\n",
            l => l.FooterTemplate = "footer");
        var message = Parse(bytes);
        Assert.Single(message.Body!.Headers, x => x.Id == HeaderId.ContentType);
        Assert.Single(message.Body!.Headers, x => x.Id == HeaderId.ContentTransferEncoding);
        var text = Assert.IsType<TextPart>(message.Body);
        Assert.Equal("text/plain", text.ContentType.MimeType);
        Assert.Equal("--X\n\nhidden\n--X--\nfooter\n", text.Text.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Binary_parts_and_lines_over_998_are_re_encoded_and_a_signed_part_is_kept_byte_for_byte()
    {
        var longLine = string.Concat(Enumerable.Repeat("0123456789", 500));
        var signed = "Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; micalg=pgp-sha256; boundary=S\n\n"
            + "--S\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\nsigned\u0001bytes\n--S\nContent-Type: application/pgp-signature\n\nsig\n--S--\n";
        var raw = "From: a@example.com\nTo: dev@example.org\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n"
            + $"--B\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{longLine}\nshort \u00e9\n"
            + "--B\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\nbin\0ary\rbare CR\n"
            + $"--B\nContent-Type: message/rfc822\nContent-Transfer-Encoding: binary\n\nFrom: x@example.com\nSubject: inner\nMIME-Version: 1.0\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\n{longLine}\n"
            + "--B\n" + signed + "--B--\n";
        var bytes = Piped(raw);
        var outside = Encoding.Latin1.GetString(bytes);
        var signedAt = outside.IndexOf("--S\r\n", StringComparison.Ordinal);
        Assert.DoesNotContain(Lines(bytes[..signedAt]), line => line.Length > 998 || line.Contains('\0') || line.Contains('\r'));
        Assert.Contains("signed\u0001bytes", outside[signedAt..], StringComparison.Ordinal);

        var message = Parse(bytes);
        var parts = Assert.IsType<Multipart>(message.Body);
        var text = Assert.IsType<TextPart>(parts[0]);
        Assert.Equal(ContentEncoding.QuotedPrintable, text.ContentTransferEncoding);
        Assert.Equal(longLine + "\nshort \u00e9", text.Text.ReplaceLineEndings("\n").TrimEnd());
        var binary = Assert.IsType<MimePart>(parts[1]);
        Assert.Equal(ContentEncoding.Base64, binary.ContentTransferEncoding);
        using var decoded = new MemoryStream();
        binary.Content!.DecodeTo(decoded);
        Assert.Equal("bin\0ary\rbare CR", Encoding.Latin1.GetString(decoded.ToArray()).TrimEnd('\n').TrimEnd('\r'));
        var attached = Assert.IsType<MessagePart>(parts[2]);
        Assert.Equal("8bit", attached.Headers[HeaderId.ContentTransferEncoding]);
        Assert.Equal(ContentEncoding.QuotedPrintable, Assert.IsType<TextPart>(attached.Message!.Body).ContentTransferEncoding);
        Assert.Equal(longLine, attached.Message.TextBody!.TrimEnd());
        Assert.IsType<MultipartSigned>(parts[3]);
    }

    [Fact]
    public void A_plain_post_with_a_long_line_goes_quoted_printable_with_MIME_Version()
    {
        var longLine = new string('x', 5000);
        var bytes = Piped($"From: a@example.com\nTo: dev@example.org\nSubject: s\n\n{longLine}\n");
        Assert.DoesNotContain(Lines(bytes), line => line.Length > 998);
        var message = Parse(bytes);
        Assert.Equal("1.0", message.Headers[HeaderId.MimeVersion]?.Trim());
        Assert.Equal(longLine, message.TextBody!.TrimEnd());
    }

    [Fact]
    public void A_held_posts_binary_part_reaches_the_moderators_re_encoded()
    {
        var post = MimeMessage.Load(new MemoryStream(Encoding.Latin1.GetBytes(
            "From: a@example.com\nSubject: s\nMIME-Version: 1.0\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\nbin\0ary\n")));
        var attached = Assert.IsType<MessagePart>(NoticeAttachments.Post(post, 100));
        Assert.Equal(ContentEncoding.Base64, Assert.IsType<MimePart>(attached.Message!.Body).ContentTransferEncoding);
    }
}
