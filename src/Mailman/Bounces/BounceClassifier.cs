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
                return WithOpening(verdict, context);
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

    // A failure whose format gives an address neither a status nor the remote server's words
    // (AOL's, GroupWise's, ...) carries the notice's own opening as its diagnostic, read as a
    // DSN's: a listing of our server or a DMARC refusal said there is not scored, whatever the
    // reporting MTA (review 140).
    private static BounceAnalysis WithOpening(BounceAnalysis verdict, BounceContext context)
    {
        if (verdict.Kind != BounceKind.Permanent || !verdict.Addresses.Any(a => a.Status is null && a.Diagnostic is null)
            || AddressCollector.Diagnostic(context.Opening) is not { } opening)
        {
            return verdict;
        }

        return verdict with { Addresses = verdict.Addresses.Select(a => a.Status is null && a.Diagnostic is null ? a with { Diagnostic = opening } : a).ToList() };
    }
}
