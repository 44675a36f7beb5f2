// qmail's QSBMF (cr.yp.to/proto/qsbmf.txt) and its relatives: an intro paragraph, then one
// paragraph per recipient opening with "<addr>:", then a break paragraph starting with '-'.
namespace Mailman.Bounces.Detectors;

public sealed class Qmail : IBounceDetector
{
    /// <summary>Intro lines seen in the wild (the standard's "Hi. This is the" first).</summary>
    private static readonly string[] Intros =
    [
        "Hi. This is the",
        "Hi. The MTA program at",
        "We're sorry. There's a problem",
        "Check your send e-mail address.",
        "This is the mail delivery agent at",
        "Unfortunately, your mail was not delivered",
        "Your mail message to the following",
    ];

    public string Name => "Qmail";

    public string Description => "qmail bounces (QSBMF): <addr>: paragraphs after the intro";

    public BounceAnalysis? Detect(BounceContext message)
    {
        // qmail's delay warning ("I am still trying to deliver your message, this is just a
        // warning") is written as its failures are: SimpleWarning's.
        if (!message.Mentions("<") || SimpleWarning.IsDelayNotice(message))
        {
            return null;
        }

        var found = new AddressCollector();
        var inIntro = false;
        using var lines = message.BodyLines.GetEnumerator();
        while (lines.MoveNext())
        {
            var line = lines.Current.Trim();
            if (!inIntro)
            {
                inIntro = Array.Exists(Intros, intro => line.StartsWith(intro, StringComparison.Ordinal));
            }
            else if (line.Length == 0)
            {
                RecipientParagraphs(lines, found);
                break;
            }
        }

        return found.Result(BounceKind.Permanent, Name);
    }

    /// <summary>
    /// The recipient paragraphs that follow the intro, up to the break paragraph (a line
    /// starting with '-'): each "&lt;addr&gt;:" with the rest of its paragraph as its diagnostic.
    /// Yahoo!'s own format has the same paragraphs.
    /// </summary>
    public static void RecipientParagraphs(IEnumerator<string> lines, AddressCollector found)
    {
        string? address = null;
        var diagnostic = new List<string>();
        while (lines.MoveNext())
        {
            var line = lines.Current.Trim();
            if (line.StartsWith('-'))
            {
                break;
            }

            if (AngleColon.AtStart(line) is { } next)
            {
                Add(found, address, diagnostic);
                address = next;
                diagnostic.Add(line[(line.IndexOf(">:", StringComparison.Ordinal) + 2)..]);
            }
            else if (line.Length == 0)
            {
                Add(found, address, diagnostic);
                address = null;
            }
            else if (address is not null && diagnostic.Count < 40)
            {
                diagnostic.Add(line);
            }
        }

        Add(found, address, diagnostic);
    }

    // The recipient with the rest of its paragraph as the diagnostic ("Remote host said: 554
    // 5.7.1 ... blocked using zen.spamhaus.org", "Sorry, no mailbox here by that name. (#5.1.1)"):
    // the refusal of our server or of the message is not scored against the member (review 61).
    private static void Add(AddressCollector found, string? address, List<string> diagnostic)
    {
        if (address is not null)
        {
            found.Add(address, diagnostic: AddressCollector.Diagnostic(diagnostic));
        }

        diagnostic.Clear();
    }
}
