// RFC 5965 complaints: never a bounce; the complaint names who complained.
using Mailman.Bounces;
using Mailman.TestSupport;

namespace Mailman.Tests.Bounces.Detectors;

public sealed class ArfTests
{
    [Fact]
    public void A_complaint_is_not_a_bounce_and_names_the_original_recipient()
    {
        var result = DsnTests.Classify(BounceMessages.Arf("abuse", originalRcptTo: "<anne@example.com>", originalTo: "someone-else@example.com"));
        Assert.Equal(BounceKind.NotABounce, result.Kind);
        Assert.Equal("ARF", result.Detector);
        Assert.Empty(result.Addresses);
        Assert.NotNull(result.Complaint);
        Assert.Equal("abuse", result.Complaint.FeedbackType);
        Assert.Equal(["anne@example.com"], result.Complaint.OriginalRecipients);
    }

    [Fact]
    public void Without_original_rcpt_to_the_attached_posts_to_is_the_complainer()
    {
        var result = DsnTests.Classify(BounceMessages.Arf("fraud", originalTo: "Bob <bob@example.com>"));
        Assert.Equal("fraud", result.Complaint!.FeedbackType);
        Assert.Equal(["bob@example.com"], result.Complaint.OriginalRecipients);
    }
}
