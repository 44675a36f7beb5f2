// What Intake reads from the start of a message, as Postfix's pipe flags leave it: an mbox From_
// line (F), Return-Path (R), Delivered-To (D), or none of them.
using System.Text;
using Mailman.Queues;

namespace Mailman.Tests.Queues;

public sealed class IntakeTests
{
    private static MessageHead Inspect(string text) => Intake.Inspect(Encoding.UTF8.GetBytes(text));

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
