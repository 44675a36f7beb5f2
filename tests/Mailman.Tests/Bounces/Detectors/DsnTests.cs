// RFC 3464 DSNs: per-recipient outcomes, addresses as written, and the deviations seen in the wild.
using System.Text;
using Mailman.Bounces;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Bounces.Detectors;

public sealed class DsnTests
{
    internal static BounceAnalysis Classify(byte[] raw)
    {
        using var message = MimeMessage.Load(new MemoryStream(raw));
        return BounceClassifier.Classify(message);
    }

    private static BounceAnalysis Classify(params string[] groups) => Classify(BounceMessages.Dsn(groups));

    [Fact]
    public void A_failed_recipient_is_permanent_with_its_final_recipient_status_and_diagnostic()
    {
        var result = Classify(BounceMessages.Recipient("anne@example.com", "failed", "5.1.1"));
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Equal("DSN", result.Detector);
        var address = Assert.Single(result.Addresses);
        Assert.Equal("anne@example.com", address.Address);
        Assert.Equal("5.1.1", address.Status);
        Assert.Equal("smtp; 550 5.1.1 <anne@example.com>: Recipient address rejected: User unknown", address.Diagnostic);
    }

    [Fact]
    public void A_delayed_recipient_is_temporary()
    {
        var result = Classify(BounceMessages.Recipient("anne@example.com", "delayed", "4.4.1", "smtp; 451 4.4.1 try again later"));
        Assert.Equal(BounceKind.Temporary, result.Kind);
        Assert.Equal("anne@example.com", Assert.Single(result.Addresses).Address);
        Assert.Equal("4.4.1", result.Addresses[0].Status);
    }

    [Fact]
    public void Without_an_action_a_4xx_status_is_temporary_and_a_5xx_status_permanent()
    {
        Assert.Equal(BounceKind.Temporary, Classify("Final-Recipient: rfc822; anne@example.com\nStatus: 4.2.2").Kind);
        Assert.Equal(BounceKind.Permanent, Classify("Final-Recipient: rfc822; anne@example.com\nStatus: 5.2.2").Kind);
    }

    [Fact]
    public void Failed_stays_permanent_with_a_4xx_status_because_the_mta_gave_up()
    {
        // RFC 3464 2.3.3: "failed" means no further attempts (an X.400 gateway's 4.4.7 timeout: corpus dsn_02).
        var result = Classify(BounceMessages.Recipient("anne@example.com", "failed", "4.4.7", null));
        Assert.Equal(BounceKind.Permanent, result.Kind);
    }

    [Theory]
    [InlineData("delivered", "2.0.0")]
    [InlineData("relayed", "2.0.0")]
    [InlineData("expanded", "2.0.0")]
    public void A_success_report_is_not_a_bounce(string action, string status)
    {
        var result = Classify(BounceMessages.Recipient("anne@example.com", action, status, null));
        Assert.Equal(BounceKind.NotABounce, result.Kind);
        Assert.Empty(result.Addresses);
        Assert.Equal("DSN", result.Detector);
    }

    [Fact]
    public void Failed_recipients_win_over_delayed_ones_and_only_they_are_named()
    {
        var result = Classify(
            BounceMessages.Recipient("slow@example.com", "delayed", "4.4.1", null),
            BounceMessages.Recipient("gone@example.com", "failed", "5.1.1", null),
            BounceMessages.Recipient("fine@example.com", "delivered", "2.0.0", null));
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Equal(["gone@example.com"], result.Addresses.Select(a => a.Address));
    }

    [Fact]
    public void Original_recipient_is_preferred_as_the_address_we_sent_to()
    {
        var result = Classify(BounceMessages.Recipient("anne.person@mailhost.example.com", original: "anne@example.com"));
        Assert.Equal("anne@example.com", Assert.Single(result.Addresses).Address);
    }

    [Theory]
    [InlineData("Final-Recipient: RFC822;<anne@example.com>\nAction: failed\nStatus: 5.1.1")]
    [InlineData("Final-Recipient: rfc822; \"anne@example.com\"\nAction: FAILED\nStatus: 5.1.1")]
    [InlineData("Final-Recipient: <anne@example.com>\nAction: Failed (bad destination mailbox)\nStatus: 5.1.1")]
    [InlineData("final-recipient:rfc822;anne@example.com\naction:failed\nstatus:5.1.1")]
    [InlineData("Final-Recipient: rfc822;\n  anne@example.com\nAction: failed\nStatus: 5.1.1")]
    [InlineData("Final-Recipient: rfc822; anne@example.com\nAction: error\nStatus: 5.0.0")]
    public void Real_world_deviations_are_read(string group)
    {
        var result = Classify(group);
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Equal("anne@example.com", Assert.Single(result.Addresses).Address);
    }

    [Fact]
    public void A_status_only_in_the_diagnostic_text_is_found()
    {
        var result = Classify("Final-Recipient: rfc822; anne@example.com\nAction: failed\nDiagnostic-Code: smtp; 550 5.7.1 Message rejected");
        Assert.Equal("5.7.1", Assert.Single(result.Addresses).Status);
    }

    [Fact]
    public void Recipient_groups_without_blank_lines_between_them_are_still_separate()
    {
        var result = Classify(
            "Final-Recipient: rfc822; anne@example.com\nAction: failed\nStatus: 5.1.1\n"
            + "Final-Recipient: rfc822; bob@example.com\nAction: delayed\nStatus: 4.4.1\n"
            + "Original-Recipient: rfc822; carol@example.com\nFinal-Recipient: rfc822; carol@mx.example.com\nAction: failed\nStatus: 5.2.1");
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Equal(["anne@example.com", "carol@example.com"], result.Addresses.Select(a => a.Address));
    }

    [Fact]
    public void Addresses_are_deduplicated_ignoring_case_in_report_order()
    {
        var result = Classify(
            BounceMessages.Recipient("Bob@Example.com"),
            BounceMessages.Recipient("anne@example.com"),
            BounceMessages.Recipient("bob@example.com"));
        Assert.Equal(["Bob@Example.com", "anne@example.com"], result.Addresses.Select(a => a.Address));
    }

    [Fact]
    public void A_report_naming_ten_thousand_recipients_returns_them_all_in_order()
    {
        var groups = Enumerable.Range(0, 10_000).Select(i => BounceMessages.Recipient($"m{i:D5}@example.com", diagnostic: null));
        var result = Classify(BounceMessages.Dsn(groups));
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Equal(10_000, result.Addresses.Count);
        Assert.Equal(Enumerable.Range(0, 10_000).Select(i => $"m{i:D5}@example.com"), result.Addresses.Select(a => a.Address));
    }

    [Fact]
    public void A_bounce_of_a_bounce_names_the_outer_failure_only()
    {
        var inner = Encoding.UTF8.GetString(BounceMessages.Dsn([BounceMessages.Recipient("anne@example.com")], boundary: "INNER"));
        var result = Classify(BounceMessages.Dsn([BounceMessages.Recipient("owner@example.net")], attachedOriginal: inner, boundary: "OUTER"));
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Equal(["owner@example.net"], result.Addresses.Select(a => a.Address));
    }

    [Fact]
    public void A_report_without_recipient_fields_is_left_to_other_detectors()
    {
        var result = Classify(BounceMessages.Dsn(["X-Something: else"]));
        Assert.NotEqual("DSN", result.Detector);
    }
}
