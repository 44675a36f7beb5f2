// Heuristically recognised delay warnings ("will retry", "not yet been delivered"): temporary,
// so they are never scored. Mailman 2.1's SimpleWarning formats, plus flufl.bounce's.
using System.Text.RegularExpressions;
using static Mailman.Bounces.LinePattern;

namespace Mailman.Bounces.Detectors;

public sealed partial class SimpleWarning : IBounceDetector
{
    private const RegexOptions Options = RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.NonBacktracking;

    /// <summary>Formats that name the addresses after their start phrase.</summary>
    private static readonly LinePattern[] Patterns =
    [
        // pop3.pta.lia.net
        new("the address to which the message has not yet been delivered is", l => Has(l, "The address to which the message has not yet been delivered is"), l => Has(l, "No action is required on your part"), Word),
        // googlemail.com
        new("this is a warning message only", l => Has(l, "THIS IS A WARNING MESSAGE ONLY"), l => Has(l, "Message will be retried"), Word),
        // kundenserver.de
        new("not yet been delivered", l => Has(l, "not yet been delivered"), l => Has(l, "No action is required on your part"), Word),
        // Exchange advisory
        new("this is an advisory-only email", l => Has(l, "This is an advisory-only email"), l => Has(l, "has been postponed"), l => SimpleMatch.Group(Quoted(), l)),
    ];

    /// <summary>Phrases that only say "this is a warning" after the addresses (MessageSwitch,
    /// Symantec AntiVirus for SMTP Gateways, RS 1.0.95vs, googlemail.com): the phrase is the
    /// proof, and the addresses are those written in the same part before it.</summary>
    private static readonly string[] Afterwords =
    [
        "this is just a warning, you do not need to take any action",
        "delivery attempts will continue to be made",
        "we will continue to try to deliver",
        "delivery to the following recipient has been delayed",
    ];

    /// <summary>Lines before an afterword that are searched for addresses.</summary>
    private const int LinesBefore = 40;

    public string Name => "SimpleWarning";

    public string Description => "heuristic delay warnings (Mailman 2.1's SimpleWarning formats): temporary";

    public BounceAnalysis? Detect(BounceContext message)
    {
        var found = Scan(message, Patterns, plausibleOnly: true);
        if (found.Count > 0)
        {
            return new BounceAnalysis(BounceKind.Temporary, found.Addresses, Name);
        }

        foreach (var phrase in Afterwords)
        {
            if (!message.Mentions(phrase))
            {
                continue;
            }

            foreach (var text in message.TextParts)
            {
                var at = IndexOf(text.Lines, phrase);
                if (at < 0)
                {
                    continue;
                }

                var addresses = new AddressCollector();
                for (var i = Math.Max(0, at - LinesBefore); i <= at; i++)
                {
                    foreach (var address in AddressText.AddressesIn(text.Lines[i]))
                    {
                        addresses.Add(address);
                    }
                }

                return new BounceAnalysis(BounceKind.Temporary, addresses.Addresses, Name);
            }
        }

        // A delay notice in another shape: the addresses its own words name.
        if (SaysDelay(message))
        {
            var addresses = new AddressCollector();
            foreach (var line in message.Opening)
            {
                foreach (var address in AddressText.AddressesIn(line))
                {
                    addresses.Add(address);
                }
            }

            return new BounceAnalysis(BounceKind.Temporary, addresses.Addresses, Name);
        }

        return null;
    }

    private static int IndexOf(IReadOnlyList<string> lines, string phrase)
    {
        for (var i = 0; i < lines.Count; i++)
        {
            if (Has(lines[i], phrase))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// Whether the text reads as a delay notice: "not yet been delivered" with "no action is
    /// required" or "delivery attempts will continue" (Exim's standard warning, whose "Delay
    /// reason" line quotes <c>RCPT TO:&lt;...&gt;</c> like a failure would). SimpleMatch, asked
    /// before this detector, leaves such a message to it.
    /// Or one of <see cref="DelayPhrases"/> in its opening (BounceContext.Opening: qmail's "I am
    /// still trying to deliver your message, this is just a warning", "Your message could not be
    /// delivered to X yet. The mail server will continue trying": review 140, both scored as
    /// failures): there, not in a returned post that happens to say so.
    /// </summary>
    public static bool IsDelayNotice(BounceContext message)
        => (message.Mentions("not yet been delivered")
            && (message.Mentions("no action is required") || message.Mentions("delivery attempts will continue")))
        || SaysDelay(message);

    /// <summary>What only a notice of a delay says of itself.</summary>
    private static readonly string[] DelayPhrases =
    [
        "this is just a warning", "still trying to deliver", "will continue trying", "will keep trying", "will continue to try",
        "delivery attempts will continue", "has been delayed", "message will be retried",
    ];

    // Whether the notice's own words (its opening, before a returned message) say it is a delay.
    private static bool SaysDelay(BounceContext message)
        => Array.Exists(DelayPhrases, message.Mentions) && message.Opening.Any(l => Array.Exists(DelayPhrases, p => Has(l, p)));

    // The first word with an @, without Sendmail's "<anne@example.com>..." dressing.
    private static string? Word(string line) => AddressText.Trimmed(AddressText.FirstAddressWord(line));

    [GeneratedRegex("\"(?<addr>[^\"]+)\"", Options)]
    private static partial Regex Quoted();
}
