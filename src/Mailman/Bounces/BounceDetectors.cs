// Every detector, in the order they are asked: reports with a machine-readable structure
// first, then formats recognised by their sender or headers, then the text heuristics.
using Mailman.Bounces.Detectors;

namespace Mailman.Bounces;

public static class BounceDetectors
{
    /// <summary>The default order. The first detector that returns a verdict decides.</summary>
    /// <remarks>
    /// ARF and MDN before DSN (all are multipart/report). Exchange before GroupWise, as in Mailman 2.1:
    /// some Exchange bounces carry a GroupWise-like X-Mailer. AutoReply comes before the loose
    /// text heuristics, so a vacation reply quoting a post about bounces is never scored, and
    /// after the structured formats, whose bounces also carry <c>Auto-Submitted</c>. Yale and
    /// LLNL last: their patterns are the loosest.
    /// </remarks>
    public static readonly IReadOnlyList<IBounceDetector> All =
    [
        new Arf(),
        new Mdn(),
        new Dsn(),
        new Exim(),
        new Postfix(),
        new Qmail(),
        new Yahoo(),
        new Sina(),
        new Aol(),
        new Smtp32(),
        new Exchange(),
        new Netscape(),
        new MicrosoftSmtpSvc(),
        new GroupWise(),
        new AutoReply(),
        new SimpleMatch(),
        new SimpleWarning(),
        new Yale(),
        new Llnl(),
    ];
}
