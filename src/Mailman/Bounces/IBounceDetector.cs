// The contract of one bounce format's detector: small, named, one format each, like the
// pipeline's handlers. Detectors decide; the bounce runner scores and logs.
namespace Mailman.Bounces;

/// <summary>Recognises one bounce (or not-a-bounce) format.</summary>
public interface IBounceDetector
{
    /// <summary>A stable short name (<c>DSN</c>, <c>Qmail</c>, ...): logged with every bounce.</summary>
    string Name { get; }

    /// <summary>One line saying what the detector recognises.</summary>
    string Description { get; }

    /// <summary>The detector's verdict, or null when the message is not in its format (or it
    /// found nothing in it): the next detector is asked. Never throws on malformed input.</summary>
    BounceAnalysis? Detect(BounceContext message);
}
