// Heuristically delimited delay warnings ("will retry", "not yet been delivered"): recognised
// as temporary, so they are never scored. Mailman 2.1's SimpleWarning table, plus flufl.bounce's.
using System.Text.RegularExpressions;
using static Mailman.Bounces.LinePattern;

namespace Mailman.Bounces.Detectors;

public sealed partial class SimpleWarning : IBounceDetector
{
    private const RegexOptions Options = RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.NonBacktracking;

    // Several formats only say they are warnings after the address: their start phrase is the
    // proof, and any following line that starts with an address is taken (Mailman's kludge).
    private static readonly LinePattern[] Patterns =
    [
        // pop3.pta.lia.net
        new("the address to which the message has not yet been delivered is", l => Has(l, "The address to which the message has not yet been delivered is"), l => Has(l, "No action is required on your part"), l => SimpleMatch.Group(SimpleMatch.AnyAddress(), l)),
        // MessageSwitch
        new("this is just a warning, you do not need to take any action", l => Has(l, "This is just a warning, you do not need to take any action"), l => l.Length > 0, NonEmpty),
        // Symantec AntiVirus for SMTP Gateways
        new("delivery attempts will continue to be made", l => Has(l, "Delivery attempts will continue to be made"), l => l.Length > 0, NonEmpty),
        // googlemail.com
        new("this is a warning message only", l => Has(l, "THIS IS A WARNING MESSAGE ONLY"), l => Has(l, "Message will be retried"), l => SimpleMatch.Group(SimpleMatch.AnyAddress(), l)),
        // googlemail.com, older
        new("delivery to the following recipient has been delayed", l => Has(l, "Delivery to the following recipient has been delayed"), l => l.Length > 0, NonEmpty),
        // RS ver 1.0.95vs
        new("we will continue to try to deliver", l => Has(l, "We will continue to try to deliver"), l => l.Length > 0, NonEmpty),
        // kundenserver.de
        new("not yet been delivered", l => Has(l, "not yet been delivered"), l => Has(l, "No action is required on your part"), l => SimpleMatch.Group(BracketedAddress(), l)),
        // Exchange advisory
        new("this is an advisory-only email", l => Has(l, "This is an advisory-only email"), l => Has(l, "has been postponed"), l => SimpleMatch.Group(Quoted(), l)),
    ];

    public string Name => "SimpleWarning";

    public string Description => "heuristic delay warnings (Mailman 2.1's SimpleWarning table): temporary";

    public BounceAnalysis? Detect(BounceContext message)
    {
        var found = Scan(message, Patterns, plausibleOnly: true);
        if (found.Count == 0)
        {
            return null;
        }

        // The kludge patterns take whole lines: keep the address each starts with.
        var addresses = new AddressCollector();
        foreach (var line in found.Addresses)
        {
            var address = line.Address;
            var end = address.AsSpan().IndexOfAny(" \t:,;");
            addresses.Add((end < 0 ? address : address[..end]).TrimEnd('.'));
        }

        return new BounceAnalysis(BounceKind.Temporary, addresses.Addresses, Name);
    }

    private static string? NonEmpty(string line) => line.Length > 0 ? line : null;

    [GeneratedRegex(@"<?(?<addr>\S+@[^>\s]+)>?", Options)]
    private static partial Regex BracketedAddress();

    [GeneratedRegex("\"(?<addr>[^\"]+)\"", Options)]
    private static partial Regex Quoted();
}
