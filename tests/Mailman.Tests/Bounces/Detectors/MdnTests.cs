// RFC 8098 read receipts: never a bounce. A "deleted" notification is Dovecot's Sieve reject
// (corpus simple_38) and stays a failure for the other detectors.
using System.Text;
using Mailman.Bounces;

namespace Mailman.Tests.Bounces.Detectors;

public sealed class MdnTests
{
    private static byte[] Mdn(string disposition, string reportType = "disposition-notification", string part = "message/disposition-notification")
        => Encoding.UTF8.GetBytes($"""
            From: Anne <m00001@example.com>
            To: dev-bounces+m00001=example.com@example.org
            Subject: Read: [dev] hello
            MIME-Version: 1.0
            Content-Type: multipart/report; report-type={reportType}; boundary="b"

            --b
            Content-Type: text/plain

            This is a receipt for the mail you sent. Your message was read at 10:00.
            Note: this receipt only acknowledges that the message was displayed; the
            recipient address m00001@example.com may still fail to receive mail.

            --b
            Content-Type: {part}

            Reporting-UA: anne-pc; Thunderbird
            Final-Recipient: rfc822; m00001@example.com
            Original-Message-ID: <post@example.org>
            Disposition: {disposition}

            --b--

            """.Replace("\r\n", "\n", StringComparison.Ordinal));

    [Theory]
    [InlineData("manual-action/MDN-sent-manually; displayed")]
    [InlineData("automatic-action/MDN-sent-automatically; Displayed")]
    [InlineData("manual-action/MDN-sent-manually; dispatched")]
    [InlineData("manual-action/MDN-sent-manually; deleted")] // review 50: Outlook's "Not read"
    public void A_read_receipt_is_not_a_bounce(string disposition)
    {
        var result = DsnTests.Classify(Mdn(disposition));
        Assert.Equal(BounceKind.NotABounce, result.Kind);
        Assert.Equal("MDN", result.Detector);
        Assert.Empty(result.Addresses);
    }

    [Fact]
    public void A_global_read_receipt_is_not_a_bounce_either()
        => Assert.Equal("MDN", DsnTests.Classify(Mdn("manual-action/MDN-sent-manually; displayed", part: "message/global-disposition-notification")).Detector);

    [Theory]
    [InlineData("automatic-action/MDN-sent-automatically; deleted")]
    [InlineData("automatic-action/MDN-sent-automatically; processed/error")] // review 51: not processed
    [InlineData("manual-action/MDN-sent-manually; displayed/error")]
    public void A_deleted_or_failed_notification_is_left_to_the_other_detectors(string disposition)
        => Assert.NotEqual("MDN", DsnTests.Classify(Mdn(disposition)).Detector);

    // Review 50: a displayed disposition beside a failed delivery-status part hid the failure.
    [Fact]
    public void A_disposition_part_beside_a_delivery_status_part_is_left_to_DSN()
    {
        var text = Encoding.UTF8.GetString(Mdn("manual-action/MDN-sent-manually; displayed", reportType: "delivery-status"))
            .Replace("--b--\n", "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; m00001@example.com\nAction: failed\nStatus: 5.1.1\n\n--b--\n", StringComparison.Ordinal);
        var result = DsnTests.Classify(Encoding.UTF8.GetBytes(text));
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Equal("DSN", result.Detector);
    }
}
