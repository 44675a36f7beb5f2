// What Intake reads from the start of a message, as Postfix's pipe flags leave it: an mbox From_
// line (F), Return-Path (R), Delivered-To (D), or none of them.
using System.Text;
using Mailman.Queues;

namespace Mailman.Tests.Queues;

public sealed class IntakeTests
{
    private static MessageHead Inspect(string text) => Intake.Inspect(Encoding.UTF8.GetBytes(text));

    private static string Fields(int count) => string.Concat(Enumerable.Range(0, count).Select(i => $"X-F{i}: x\n"));

    [Fact]
    public void A_header_block_over_the_limits_is_refused_and_what_stays_under_them_is_taken()
    {
        // Review 27: a million one-line fields (9 MB, under the 40 MiB post limit) cost the
        // pipeline gigabytes of memory, and each runner parses the header block.
        Assert.Null(Inspect("From: a@example.com\n" + Fields(Intake.MaxHeaderFields - 1) + "\nbody\n").MessageId);
        var tooMany = Assert.Throws<IntakeException>(() => Inspect("From: a@example.com\n" + Fields(Intake.MaxHeaderFields) + "\nbody\n"));
        Assert.Equal(IntakeFailure.HeaderTooLarge, tooMany.Failure);
        Assert.Equal("more than 20,000 header fields: not taken", tooMany.Message);

        // Headers only, with no blank line, count as the header block; continuation lines are
        // part of their field; every line up to the blank one counts, a field or not (review 30:
        // MimeKit reads on past a line that is no field).
        Assert.Throws<IntakeException>(() => Inspect("From: a@example.com\n" + Fields(Intake.MaxHeaderFields)));
        Inspect("From: a@example.com\nX-Long: a\n" + string.Concat(Enumerable.Repeat(" folded\n", 30_000)) + "\nbody\n");
        Assert.Throws<IntakeException>(() => Inspect("From: a@example.com\nSubject: x\nA line with no colon\n" + Fields(Intake.MaxHeaderFields)));
        Assert.Throws<IntakeException>(() => Inspect("From: a@example.com\nBad Field: x\nSubject: a\n" + string.Concat(Enumerable.Repeat(" \n", Intake.MaxHeaderLines)) + "\nbody\n"));
        // MimeKit keeps each of those lines as a header (review 34): they count as fields.
        Inspect("From: a@example.com\nSubject: x\n" + string.Concat(Enumerable.Repeat("a body line without the blank line before it\n", 19_000)));
        Assert.Throws<IntakeException>(() => Inspect("From: a@example.com\nSubject: x\n" + string.Concat(Enumerable.Repeat("a body line without the blank line before it\n", Intake.MaxHeaderFields))));

        // Continuation lines count as lines (review 29: MimeKit's parse of one field is quadratic in them).
        Inspect("From: a@example.com\nX-Fold: a\n" + string.Concat(Enumerable.Repeat(" b\n", Intake.MaxHeaderLines - 2)) + "\nbody\n");
        var folded = Assert.Throws<IntakeException>(() => Inspect("From: a@example.com\nX-Fold: a\n" + string.Concat(Enumerable.Repeat(" b\n", Intake.MaxHeaderLines - 1)) + "\nbody\n"));
        Assert.Equal("more than 50,000 header lines: not taken", folded.Message);

        // A 1 MB header line is taken (Guarantees); a block past 4 MiB is not, even cut short.
        Inspect("From: a@example.com\nX-Big: " + new string('a', 1 << 20) + "\n\nbody\n");
        var big = "From: a@example.com\n" + string.Concat(Enumerable.Repeat("X-Big: " + new string('a', 1 << 20) + "\n", 5));
        var tooBig = Assert.Throws<IntakeException>(() => Intake.Inspect(Encoding.UTF8.GetBytes(big).AsSpan(0, Intake.HeadBytes)));
        Assert.Equal("a header block larger than 4 MiB: not taken", tooBig.Message);
    }

    [Fact]
    public void A_plain_message_has_no_envelope_sender_and_nothing_skipped()
    {
        var head = Inspect("From: a@example.com\nMessage-Id: <m1@example.com>\n\nbody\n");
        Assert.Equal(0, head.Skip);
        Assert.Null(head.EnvelopeSender);
        Assert.Equal("m1@example.com", head.MessageId);
    }

    [Fact]
    public void An_mbox_From_line_is_skipped_and_gives_the_envelope_sender()
    {
        const string fromLine = "From poster@example.com  Tue Dec  1 19:00:00 2026\n";
        var head = Inspect(fromLine + "From: Poster <poster@example.com>\nSubject: x\n\nbody\n");
        Assert.Equal(Encoding.UTF8.GetByteCount(fromLine), head.Skip);
        Assert.Equal("poster@example.com", head.EnvelopeSender);
    }

    [Theory]
    [InlineData("From : Alice <alice@example.com>\nSubject: x\n\nbody\n")]
    [InlineData("From\t: alice@example.com\nSubject: x\n\nbody\n")]
    [InlineData("From  :alice@example.com\n\nbody\n")]
    public void A_From_field_with_white_space_before_its_colon_is_a_field_not_an_mbox_line(string text)
    {
        var head = Inspect(text);
        Assert.Equal(0, head.Skip);
        Assert.Null(head.EnvelopeSender);
    }

    [Fact]
    public void Return_path_wins_over_the_From_line_and_Delivered_To_is_a_header_like_any()
    {
        var head = Inspect("From other@example.com Tue Dec  1 19:00:00 2026\nReturn-Path: <Poster@Example.com>\nDelivered-To: dev@lists.example.org\nFrom: p@example.com\n\nbody\n");
        Assert.Equal("Poster@Example.com", head.EnvelopeSender);
    }

    [Theory]
    [InlineData("From MAILER-DAEMON Tue Dec  1 19:00:00 2026\nFrom: x@example.com\n\nb\n")]
    [InlineData("Return-Path: <>\nFrom: x@example.com\n\nb\n")]
    public void The_null_sender_is_empty(string text) => Assert.Equal("", Inspect(text).EnvelopeSender);

    [Theory]
    [InlineData("Return-Path: <a b@example.com>\nFrom: x@example.com\n\nb\n")]
    [InlineData("Return-Path: <a\u0001b@example.com>\nFrom: x@example.com\n\nb\n")]
    public void An_envelope_sender_that_is_not_one_plausible_address_is_not_used(string text) => Assert.Null(Inspect(text).EnvelopeSender);

    [Theory]
    [InlineData("From poster@example.com Tue Dec  1 19:00:00 2026\n")]
    [InlineData("From poster@example.com Tue Dec  1 19:00:00 2026\n\n\n")]
    [InlineData("From poster@example.com Tue Dec  1 19:00:00 2026\nnot a header\n\nbody\n")]
    [InlineData("From poster@example.com")]
    public void A_From_line_without_a_message_after_it_is_not_a_message(string text)
        => Assert.Equal(IntakeFailure.NotAMessage, Assert.Throws<IntakeException>(() => Inspect(text)).Failure);
}
