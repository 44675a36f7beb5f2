// RFC 3834 auto-replies are recognised as not-a-bounce, even when they quote bounce-like text.
using Mailman.Bounces;
using Mailman.TestSupport;

namespace Mailman.Tests.Bounces.Detectors;

public sealed class AutoReplyTests
{
    [Fact]
    public void A_vacation_reply_is_not_a_bounce()
    {
        var result = DsnTests.Classify(BounceMessages.Vacation());
        Assert.Equal(BounceKind.NotABounce, result.Kind);
        Assert.Equal("AutoReply", result.Detector);
        Assert.Empty(result.Addresses);
    }

    [Fact]
    public void A_bounce_from_a_mailer_daemon_with_the_same_header_is_still_a_bounce()
    {
        var raw = System.Text.Encoding.ASCII.GetBytes(
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\nTo: dev-bounces@example.org\nSubject: failure\n"
            + "Auto-Submitted: auto-replied\n\nA message that you sent could not be delivered to one or more of its\nrecipients.\n\n  <anne@example.com>\n---\n");
        var result = DsnTests.Classify(raw);
        Assert.Equal(BounceKind.Permanent, result.Kind);
        Assert.Equal("anne@example.com", Assert.Single(result.Addresses).Address);
    }
}
