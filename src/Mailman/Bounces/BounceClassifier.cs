// The façade the bounce runner and `mailman bounces scan` call: one parsed message in, one
// BounceAnalysis out. Pure: no queues, no database, no sockets, never throws on bad mail.
using MimeKit;

namespace Mailman.Bounces;

public static class BounceClassifier
{
    /// <summary>Asks each detector in <see cref="BounceDetectors.All"/> order; the first verdict wins.</summary>
    public static BounceAnalysis Classify(MimeMessage message) => Classify(message, BounceDetectors.All);

    /// <summary>Asks the given detectors in order; <see cref="BounceAnalysis.Unrecognized"/> when none answers.</summary>
    public static BounceAnalysis Classify(MimeMessage message, IReadOnlyList<IBounceDetector> detectors)
    {
        var context = new BounceContext(message);
        foreach (var detector in detectors)
        {
            if (detector.Detect(context) is { } verdict)
            {
                return verdict;
            }
        }

        return BounceAnalysis.Unrecognized;
    }

    /// <summary>Parses and classifies raw message bytes; what MimeKit cannot parse as a message is unrecognized.</summary>
    /// <exception cref="IOException">The stream cannot be read.</exception>
    public static BounceAnalysis Classify(Stream stream)
    {
        MimeMessage message;
        try
        {
            message = MimeMessage.Load(stream);
        }
        catch (FormatException)
        {
            return BounceAnalysis.Unrecognized;
        }

        using (message)
        {
            return Classify(message);
        }
    }
}
