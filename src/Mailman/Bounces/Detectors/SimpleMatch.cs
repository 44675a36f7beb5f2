// Heuristically delimited bounces from many MTAs (Mailman 2.1's SimpleMatch table): a start
// phrase, address lines, an end phrase. The site each format was seen at is noted beside it.
using System.Text.RegularExpressions;
using static Mailman.Bounces.LinePattern;

namespace Mailman.Bounces.Detectors;

public sealed partial class SimpleMatch : IBounceDetector
{
    // Address patterns run with the non-backtracking engine: linear whatever the line holds.
    private const RegexOptions Options = RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.NonBacktracking;

    /// <summary>The formats, tried in order; the first that names an address decides.</summary>
    internal static readonly LinePattern[] Patterns =
    [
        // sdm.de
        new("here is your list of failed recipients", l => Has(l, "here is your list of failed recipients"), l => Has(l, "here is your returned mail"), Angle),
        // sz-sb.de, corridor.com, nfg.nl
        new("the following addresses had", l => Has(l, "the following addresses had"), l => Has(l, "transcript of session follows"), l => Group(ExpandedFrom(), l)),
        // robanal.demon.co.uk
        new("this message was created automatically by mail delivery software", l => Has(l, "this message was created automatically by mail delivery software"), l => Has(l, "original message follows"), l => Group(RcptTo(), l)),
        // s1.com (InterScan E-Mail VirusWall NT)
        new("message from interscan e-mail viruswall nt", l => Has(l, "message from interscan e-mail viruswall nt"), l => Has(l, "end of message"), l => Group(RcptTo(), l)),
        // Smail
        new("failed addresses follow:", l => Has(l, "failed addresses follow:"), l => Has(l, "message text follows:"), AddressText.FirstAddressWord),
        // newmail.ru
        new("this is the machine generated message from mail service.", l => Has(l, "This is the machine generated message from mail service."), l => Has(l, "--- Below the next line is a copy of the message."), Angle),
        // turbosport.com (MDaemon 3.5.2)
        new("the following addresses did not receive a copy of your message:", l => Has(l, "The following addresses did NOT receive a copy of your message:"), l => Has(l, "--- Session Transcript ---"), l => Group(AfterGreaterThan(), l)),
        // usa.net
        new("intended recipient:", l => Has(l, "Intended recipient:"), l => Has(l, "--------RETURNED MAIL FOLLOWS--------"), l => Group(IntendedRecipient(), l)),
        // hotpop.com
        new("undeliverable address:", l => Has(l, "Undeliverable Address:"), l => Has(l, "Original message attached"), l => Group(UndeliverableAddress(), l)),
        // another demon.co.uk format
        new("this message was created automatically by mail delivery", l => Has(l, "This message was created automatically by mail delivery"), l => Opens(l, "---- START OF RETURNED MESSAGE ----"), l => Group(AddressedToQuoted(), l)),
        // Prodigy.net full mailbox
        new("user's mailbox is full:", l => Has(l, "User's mailbox is full:"), l => Has(l, "Unable to deliver mail."), l => Group(MailboxFull(), l)),
        // Microsoft SMTPSVC
        new("the email below could not be delivered to the following user:", l => Has(l, "The email below could not be delivered to the following user:"), l => Has(l, "Old message:"), Angle),
        // Yahoo on behalf of other domains like sbcglobal.net
        new("unable to deliver message to the following address(es).", l => Has(l, "Unable to deliver message to the following address(es)."), l => Has(l, "--- Original message follows."), AngleColon.Find),
        // googlemail.com
        new("to the following recipient", l => GoogleFailed().IsMatch(l), l => Has(l, "----- Original message -----"), l => Group(BareLine(), l)),
        // kundenserver.de, mxlogic.net
        new("sent could not be delivered", l => SentNotDelivered().IsMatch(l), l => Opens(l, "---"), Angle),
        // another kundenserver.de
        new("sent could not be delivered", l => SentNotDelivered().IsMatch(l), l => Opens(l, "---"), l => Group(LeadingAddressColon(), l)),
        // thehartford.com and amenworld.com: no unique end; stop at the first line of 2+
        // characters that does not start with 'D' and has no '@'.
        new("very to the following recipient", l => HartfordFailed().IsMatch(l), l => HartfordEnd().IsMatch(l), l => Group(BareLineWithBullet(), l)),
        // another thehartford.com / hartfordlife.com
        new("your message", l => Opens(l, "Your message") && l.AsSpan(12).IsWhiteSpace(), l => Opens(l, "because:"), l => Group(BareLine(), l)),
        // kviv.be (InterScan NT)
        new("unable to deliver message to", l => Opens(l, "Unable to deliver message to"), l => EndOfMessage().IsMatch(l), Angle),
        // earthlink.net supported domains
        new("sorry, unable to deliver your message to", l => Opens(l, "Sorry, unable to deliver your message to"), l => Opens(l, "A copy of the original message"), l => Group(AddressThenSpace(), l)),
        // ademe.fr
        new("a message could not be delivered to:", l => Opens(l, "A message could not be delivered to:"), l => Opens(l, "Subject:"), l => Group(BareLine(), l)),
        // andrew.ac.jp
        new("invalid final delivery userid:", l => Opens(l, "Invalid final delivery userid:"), l => Opens(l, "Original message follows"), l => Group(AddressAtEnd(), l)),
        // E500_SMTP_Mail_Service@lerctr.org and similar
        new("---- failed recipients ----", l => Has(l, "---- Failed Recipients ----"), l => Has(l, " Mail ----"), Angle),
        // cynergycom.net
        new("a message that you sent could not be delivered", l => Has(l, "A message that you sent could not be delivered"), l => Opens(l, "---"), l => Group(AddressNoParen(), l)),
        // LSMTP for Windows
        new("--> error description:", l => Opens(l, "--> Error description:") && l.AsSpan(22).IsWhiteSpace(), l => Opens(l, "Error-End:"), l => Group(ErrorFor(), l)),
        // qmail with a tri-language intro beginning in Spanish
        new("your message could not be delivered", l => Has(l, "Your message could not be delivered"), l => Opens(l, "-"), AngleColon.Find),
        // socgen.com
        new("your message could not be delivered to", l => Has(l, "Your message could not be delivered to"), l => l.AsSpan().IsWhiteSpace(), l => Group(AnyBareAddress(), l)),
        // dadoservice.it
        new("your message has encountered delivery problems", l => Has(l, "Your message has encountered delivery problems"), l => Has(l, "Your message reads"), l => Group(AddressedTo(), l)),
        // gomaps.com
        new("did not reach the following recipient", l => Has(l, "Did not reach the following recipient"), l => l.AsSpan().IsWhiteSpace(), l => Group(SpaceThenAddress(), l)),
        // EYOU MTA SYSTEM
        new("this is the deliver program at", l => Has(l, "This is the deliver program at"), l => Opens(l, "-"), l => Group(LeadingAddress(), l)),
        // a non-standard qmail at ieo.it
        new("this is the email server at", l => Has(l, "this is the email server at"), l => Opens(l, "-"), l => Group(SpacedAddress(), l)),
        // pla.net.py (MDaemon.PRO?)
        new("- no such user here", l => Has(l, "- no such user here"), l => Has(l, "There is no user"), l => Group(LeadingAddressThenSpace(), l)),
        // fastdnsservers.com
        new("could not be reached", l => FollowingCouldNotBeReached().IsMatch(l), l => false, l => Group(LeadingAddressAlone(), l)),
        // lttf.com
        new("could not deliver message to", l => Has(l, "Could not deliver message to"), l => l.AsSpan().TrimStart().StartsWith("--"), l => Group(FailedRecipient(), l)),
        // uci.edu
        new("--------message not delivered", l => Has(l, "--------Message not delivered"), l => Has(l, "--------Error Detail"), l => Group(BareLine(), l)),
        // Dovecot LDA over-quota MDN (bogus: should be a DSN)
        new("your message", l => Opens(l, "Your message"), l => Opens(l, "Reporting"), l => Group(AutomaticallyRejected(), l)),
        // mail.ru
        new("a message that you sent was rejected", l => Has(l, "A message that you sent was rejected"), l => Has(l, "This is a copy of your message"), l => Group(SpaceThenAddress(), l)),
        // MailEnable
        new("message could not be delivered to some recipients.", l => Has(l, "Message could not be delivered to some recipients."), l => Has(l, "Message headers follow"), l => Group(MailEnableRecipient(), l)),
        // Yahoo, in a shape the Yahoo detector does not know
        new("wasn't able to deliver the following message", l => Has(l, "wasn't able to deliver the following message"), l => Has(l, "---Below this line is a copy of the message."), l => Group(ToAddress(), l)),
        // an unknown MTA
        new("this is a delivery failure notification message", l => Has(l, "This is a delivery failure notification message"), l => Has(l, "The problem appears to be"), l => Group(DashDashAddress(), l)),
    ];

    public string Name => "SimpleMatch";

    public string Description => "heuristic bounce texts of many MTAs (Mailman 2.1's SimpleMatch table)";

    // A delay notice is SimpleWarning's, however much of it looks like a failure (Exim's warning
    // starts as its failures do and quotes RCPT TO:<...> in its "Delay reason").
    public BounceAnalysis? Detect(BounceContext message)
        => SimpleWarning.IsDelayNotice(message) ? null : Scan(message, Patterns, plausibleOnly: true).Result(BounceKind.Permanent, Name);

    internal static string? Angle(string line) => AngleColon.Angle(line);

    internal static string? Group(Regex regex, string line)
        => regex.Match(line) is { Success: true } match ? match.Groups["addr"].Value : null;

    [GeneratedRegex(@"^ *(\(expanded from: )?<?(?<addr>[^\s@]+@[^\s@>]+?)>?\)?\s*$", Options)]
    private static partial Regex ExpandedFrom();

    [GeneratedRegex(@"rcpt to:\s*<(?<addr>[^>]*)>", Options)]
    private static partial Regex RcptTo();

    [GeneratedRegex(@">\s*(?<addr>.*)$", Options)]
    private static partial Regex AfterGreaterThan();

    [GeneratedRegex(@"Intended recipient:\s*(?<addr>.*)$", Options)]
    private static partial Regex IntendedRecipient();

    [GeneratedRegex(@"Undeliverable Address:\s*(?<addr>.*)$", Options)]
    private static partial Regex UndeliverableAddress();

    [GeneratedRegex(@"addressed to '(?<addr>[^']*)'", Options)]
    private static partial Regex AddressedToQuoted();

    [GeneratedRegex(@"User's mailbox is full:\s*<(?<addr>[^>]*)>", Options)]
    private static partial Regex MailboxFull();

    [GeneratedRegex(@"Delivery to the following recipients? failed", Options)]
    private static partial Regex GoogleFailed();

    [GeneratedRegex(@"^\s*(?<addr>[^\s@]+@[^\s@]+)\s*$", Options)]
    private static partial Regex BareLine();

    [GeneratedRegex(@"A message that you( have)? sent could not be delivered", Options)]
    private static partial Regex SentNotDelivered();

    [GeneratedRegex(@"^(?<addr>[^\s@]+@[^\s@:]+):", Options)]
    private static partial Regex LeadingAddressColon();

    [GeneratedRegex(@"Del[ie]very to the following recipients? (failed|was aborted)", Options)]
    private static partial Regex HartfordFailed();

    [GeneratedRegex(@"^[^D][^@]+$", Options)]
    private static partial Regex HartfordEnd();

    [GeneratedRegex(@"^\s*(. )?(?<addr>[^\s@]+@[^\s@]+)\s*$", Options)]
    private static partial Regex BareLineWithBullet();

    [GeneratedRegex(@"\*+\s+End of message\s+\*+", Options)]
    private static partial Regex EndOfMessage();

    [GeneratedRegex(@"(?<addr>[^\s@]+@[^\s@]+)(\s|$)", Options)]
    private static partial Regex AddressThenSpace();

    [GeneratedRegex(@"(?<addr>[^\s@]+@[^\s@]+)\s*$", Options)]
    private static partial Regex AddressAtEnd();

    [GeneratedRegex(@"(?<addr>[^\s@]+@[^\s@)]+)", Options)]
    private static partial Regex AddressNoParen();

    [GeneratedRegex(@"^Error-for:\s+(?<addr>[^\s@]+@[^\s@]+)", Options)]
    private static partial Regex ErrorFor();

    [GeneratedRegex(@"(?<addr>[^\s@]+@[^\s@]+)", Options)]
    private static partial Regex AnyBareAddress();

    [GeneratedRegex(@"addressed to\s*(?<addr>[^\s@]+@[^\s@)]+)", Options)]
    private static partial Regex AddressedTo();

    [GeneratedRegex(@"\s(?<addr>[^\s@]+@[^\s@]+)", Options)]
    private static partial Regex SpaceThenAddress();

    [GeneratedRegex(@"^(?<addr>[^\s@]+@[^\s@<>]+)", Options)]
    private static partial Regex LeadingAddress();

    [GeneratedRegex(@"\s(?<addr>[^\s@]+@[^\s@]+)([\s,]|$)", Options)]
    private static partial Regex SpacedAddress();

    [GeneratedRegex(@"^(?<addr>[^\s@]+@[^\s@]+)(\s|$)", Options)]
    private static partial Regex LeadingAddressThenSpace();

    [GeneratedRegex(@"The following recipient.*could not be reached", Options)]
    private static partial Regex FollowingCouldNotBeReached();

    [GeneratedRegex(@"^(?<addr>[^\s@]+@[^\s@]+)\s*$", Options)]
    private static partial Regex LeadingAddressAlone();

    [GeneratedRegex(@"^Failed Recipient:\s*(?<addr>[^\s@]+@[^\s@]+)\s*$", Options)]
    private static partial Regex FailedRecipient();

    [GeneratedRegex(@"Your message to (?<addr>[^\s@]+@[^\s@]+) was automatically rejected", Options)]
    private static partial Regex AutomaticallyRejected();

    [GeneratedRegex(@"Recipient: \[SMTP:(?<addr>[^\s@]+@[^\s@]+)\]", Options)]
    private static partial Regex MailEnableRecipient();

    [GeneratedRegex(@"To: (?<addr>[^\s@]+@[^\s@]+)", Options)]
    private static partial Regex ToAddress();

    [GeneratedRegex(@"-- (?<addr>[^\s@]+@[^\s@]+)", Options)]
    private static partial Regex DashDashAddress();
}
