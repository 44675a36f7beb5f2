// Which 5xx refusals at SMTP time say something about the member's address, and so may score:
// the relay we hand posts to refuses for many reasons that are its own (relay access, policy,
// a content filter, a broken configuration) and would otherwise disable a whole list in days.
// Pure policy: no database, no sockets.
using System.Text;

namespace Mailman.Bounces;

/// <summary>A recipient the SMTP server refused with a 5xx while a post was delivered (or whose address the client could not write).</summary>
/// <param name="Address">The recipient.</param>
/// <param name="Status">The SMTP reply code.</param>
/// <param name="Response">The reply text (with its RFC 3463 enhanced status code, when the server gives one).</param>
/// <param name="AtRecipient">Refused in answer to its RCPT TO (or not writable at all); false: at MAIL FROM or after DATA (the message, not the address).</param>
/// <param name="Transaction">Which transaction of the delivery chunk it was in (below zero: the part of one sent apart for SMTPUTF8, <see cref="SmtpRefusals.PartApart"/>).</param>
/// <param name="TransactionSize">How many recipients of that transaction the server answered for good (accepted or refused; not those deferred without being accepted).</param>
/// <param name="Ours">Refused on our side, never sent (an address the relay cannot be given): not the relay's answer.</param>
public sealed record SmtpRefusal(string Address, int Status, string Response, bool AtRecipient, int Transaction = 0, int TransactionSize = 1, bool Ours = false);

public static partial class SmtpRefusals
{
    /// <summary>
    /// Whether a refusal is about the address and may score: at RCPT, an enhanced status 5.1.x
    /// (address) or 5.2.x (mailbox), or without an enhanced code a plain 550, 551 or 553
    /// (RFC 5321 §4.2.2: mailbox unavailable, not local, name not allowed). Never a refusal
    /// after DATA (the content), never 5.3.x, 5.4.x, 5.5.x, 5.6.x or 5.7.x (RFC 3463: the
    /// system, network, protocol, content and policy), never 554 without an enhanced code.
    /// </summary>
    public static bool IsAboutTheAddress(SmtpRefusal refusal, out string why)
    {
        if (!refusal.AtRecipient)
        {
            why = "refused after DATA or at MAIL FROM: the message, not the address";
            return false;
        }

        if (EnhancedCode(refusal.Response) is { } code)
        {
            if (IsAddressCode(code))
            {
                why = "";
                return true;
            }

            why = $"{code.Class}.{code.Subject}.x is about the {Subject(code.Subject)}, not the address";
            return false;
        }

        if (refusal.Status is 550 or 551 or 553)
        {
            // A plain 550 that names a policy, a listing, DMARC or spam in words is the server's
            // verdict on us or the post, as in a mailed report (review 61).
            var ours = IsAboutTheMessageOrUs(null, refusal.Response, refusal.Address);
            why = ours ? $"{refusal.Status} without an enhanced status code names a policy, a listing or the content, not the address" : "";
            return !ours;
        }

        why = $"{refusal.Status} without an enhanced status code does not say the address is at fault";
        return false;
    }

    private static bool IsAddressCode((char Class, char Subject, char Detail) code) => code.Class == '5' && code.Subject is '1' or '2';

    // What a remote server says about our side, whatever else it says: our sender address (our
    // VERP domain refused, Exim's "Sender verify failed", qmail's "your envelope sender has been
    // denied") or our DNS (GMX: "mailbox unavailable ... invalid DNS MX or A/AAAA resource record").
    // Review 65 added the session's stages before RCPT, as qmail, Exim and Postfix write them
    // (a refusal there is never about a mailbox), and what names our HELO, PTR or client.
    private static readonly string[] OurPhrases =
    [
        "sender address", "sender verify", "envelope sender", "sender domain", "invalid dns", "reverse dns", "ptr record", "ptr resource record",
        "helo", "ehlo", "client host rejected", "not accepting messages from", "synchronization error",
        "sender was rejected", "my name was rejected", "after mail from", "after initial connection", "in reply to mail from command",
        "in reply to helo command", "in reply to ehlo command", "in reply to initial greeting",
    ];

    // The data stage (Exim's "after end of data", Postfix's "in reply to end of DATA command"):
    // the message's, unless a 5.1.x or 5.2.x code says the mailbox (an LMTP store's "552 5.2.2
    // Mailbox is full" comes there).
    private static readonly string[] DataStagePhrases = ["after end of data", "after data", "in reply to end of data command", "in reply to data command"];

    // What a remote server says when the mailbox itself is unknown or closed, whatever status it
    // gave (Yandex's "5.7.1 No such user!", Yahoo's "dd This user doesn't have a yahoo.com
    // account", "This mailbox is disabled"). Not "Recipient address rejected" (Postfix words every
    // check_policy_service refusal so: SPF, greylisting, reputation; review 51), nor "Relay access
    // denied" (most often our own smarthost refusing us: every member would score).
    private static readonly string[] AddressPhrases =
    [
        "user unknown", "unknown user", "no such user", "no such mailbox", "mailbox not found", "mailbox disabled",
        "unknown recipient", "recipient unknown", "invalid recipient", "not a valid recipient", "user doesn't have a",
        "mailbox is disabled", "account is disabled", "account has been disabled",
        "unrouteable address", "unroutable address", "user not found", "recipient not found", "recipientnotfound", "no such recipient",
        "mailbox does not exist", "address does not exist", "account does not exist", "user does not exist", "recipient does not exist",
        "no mailbox here", "invalid mailbox", "unknown or illegal user", "account that you tried to reach does not exist",
    ];

    // RFC 5321's stock text for a 550, which many servers put before every refusal, their policy
    // refusals too: the address's only when no policy is named with it (review 64).
    private static readonly string[] StockPhrases = ["mailbox unavailable"];

    // What names our server's listing or authentication beyond doubt: it outweighs a phrase about
    // the mailbox unless a 5.1.x or 5.2.x code says the address ("Recipient unknown. See our
    // anti-spam policy" is a dead mailbox; review 65).
    private static readonly string[] StrongPolicyPhrases = ["blacklist", "black list", "blocklist", "block list", "dmarc", "dkim", "reputation", "spamhaus"];

    // What a refusal of our server or of the message says when it comes without an enhanced code
    // (Postfix reports it as 5.0.0, or 4.0.0 when it gave up on a deferral; review 52): Cisco
    // IronPort's "poor reputation", Proofpoint's "Blocked", GMX's "policy restrictions", Exim's
    // "Administrative prohibition" and blocklists, Microsoft's OutboundSpamException, Gmail's 5.2.3
    // size limit, a smarthost's sending limit.
    // Review 61 added what qmail, Exim and Postfix relay from servers that refuse a DMARC
    // p=reject poster, a listed IP, bulk mail or a virus, and a rate: "failed DMARC check",
    // "listing in RBL", "JunkMail rejected", "unsolicited bulk mail", "administratively denied",
    // "SPF check failed", "Unauthenticated mail", "contains a virus", "rate limited", "Mail
    // content denied". Besides these, every one of StrongPolicyPhrases (read with them).
    private static readonly string[] PolicyPhrases =
    [
        "blocked", "administrative prohibition",
        "policy", "spam", "size limit", "message size", "too large", "sending limit",
        "junk", "unsolicited", "bulk mail", "administratively", "unauthenticated", "virus", "malware",
        "rate limit", "ratelimit", "too many messages", "content denied", "content rejected",
        "will not accept delivery of this message", "limits for how many messages", "frequency limit", "service refuse",
        "content restriction", "(bl)",
    ];

    // Short names matched as words: a listing (RBL, DNSBL), SPF, UCE.
    private static readonly string[] PolicyWords = ["rbl", "dnsbl", "spf", "uce"];

    /// <summary>
    /// Whether a mailed report (a DSN's Status: and Diagnostic-Code:) puts the failure on the
    /// message or on our server rather than on where the address leads. Its diagnostic first,
    /// its words without the names in it (<see cref="Without"/>): what names our side or a
    /// stage before RCPT (<see cref="OurPhrases"/>) is ours, the data stage the message's unless
    /// the code says the mailbox; what says the mailbox is unknown or closed
    /// (<see cref="AddressPhrases"/>) is the address's unless a listing, DMARC or a reputation is
    /// named beside it without a 5.1.x/5.2.x code; RFC 5321's stock "mailbox unavailable" is the
    /// address's unless a policy is named beside it without such a code; what names a policy, a
    /// blocklist (in words or by its host name), spam or the size (<see cref="PolicyPhrases"/>) is
    /// ours. The code is the status, or one written in the text when the status says nothing
    /// (none, X.0.0). Otherwise the
    /// status: X.6.x (media, content), X.7.x (security and policy: a provider or relay refusing
    /// our server, SPF, DMARC), X.3.2 (not accepting messages), X.3.3 and X.3.4 (a feature, the size), X.1.7 and X.1.8 (our
    /// sender address), of class 5 or of a 4 the reporting MTA gave up on. Everything else
    /// scores: 5.0.0 (Postfix's status for a reply without an enhanced code, as Yahoo's dead
    /// mailboxes have), 5.1.x, 5.2.x, 5.5.x (Outlook.com's unknown user is "550 5.5.0 ... mailbox
    /// unavailable"), the remote system's state (5.3.x) and routing (5.4.x: 5.4.4 is a domain that
    /// does not exist, Microsoft answers 5.4.1 for an unknown recipient). Behind Postfix every
    /// remote refusal comes back as such a report (review 49: one poster's DMARC rejection or one
    /// oversized post scored every member it reached). It errs toward not scoring.
    /// </summary>
    public static bool IsAboutTheMessageOrUs(string? status, string? diagnostic, string? recipient = null)
    {
        // A status that says nothing (none, or X.0.0: Postfix's for a reply without an enhanced
        // code, qmail's and Exim's texts) gives way to an RFC 3463 code in the text: qmail's
        // "administratively denied. (#5.7.1)", "Remote host said: 550 5.7.1 ..." (review 61).
        var said = status is not null ? EnhancedCode(status) : null;
        if (said is null or { Subject: '0', Detail: '0' } && diagnostic is not null && CodeIn(diagnostic) is { } inText)
        {
            said = inText;
        }

        if (diagnostic is not null)
        {
            // The words are read in what the server said, not in the names it repeats: a host
            // (Exim's "host mx1.antispamcloud.com [...]"), an address or its domain
            // ("anne@spamcop.net", "name=virus.org") named a policy for a dead mailbox, which then
            // never scored (review 62). A blocklist's own name is read in the names, the
            // recipient's domain aside ("listed at zen.spamhaus.org", review 64).
            var text = SentenceBreaks().Replace(diagnostic, ". $1");
            var names = Names().Matches(text);
            var words = Without(text, names);
            bool Says(string[] phrases) => Array.Exists(phrases, p => words.Contains(p, StringComparison.OrdinalIgnoreCase));
            var aboutTheAddress = said is { Subject: '1' or '2' };
            if (Says(OurPhrases) || (Says(DataStagePhrases) && !aboutTheAddress))
            {
                return true;
            }

            var strong = Says(StrongPolicyPhrases) || Array.Exists(PolicyWords, w => ContainsWord(words, w) || ContainsWord(words, w + "s"))
                || NamesABlocklist(names, recipient);
            var policy = strong || Says(PolicyPhrases);
            if (Says(AddressPhrases))
            {
                // A mailbox named unknown or closed: the address's, unless our listing is named
                // beyond doubt and no code says the address.
                return strong && !aboutTheAddress;
            }

            if (Says(StockPhrases))
            {
                // "Requested action not taken: mailbox unavailable. Your IP is on our blocklist"
                // (review 64): with a policy named too, a code about the address decides.
                return policy && !aboutTheAddress;
            }

            if (policy)
            {
                return true;
            }
        }

        // X.3.2: the system is not accepting network messages (Postfix's postscreen answers so
        // to a listed client, review 65).
        return said is { Class: '4' or '5' } code
            && (code.Subject is '6' or '7' || (code.Subject == '3' && code.Detail is '2' or '3' or '4') || (code.Subject == '1' && code.Detail is '7' or '8'));
    }

    // Blocklists and reputation services whose names in a refusal say our server is listed.
    private static readonly string[] Blocklists =
    [
        "spamhaus", "spamcop", "barracudacentral", "sorbs.net", "uceprotect", "mailspike", "spamrats", "abuseat", "senderscore",
        "surbl", "ipcheck.proofpoint", "cloudmark", "senderbase", "dnsbl", "blocklist.de", "psbl.", "hostkarma", "invaluement",
    ];

    // Whether a dotted name in the text (not an address, not the recipient's domain or a host in
    // it) names a blocklist: "see https://www.spamhaus.org/query/ip/192.0.2.5".
    private static bool NamesABlocklist(System.Text.RegularExpressions.MatchCollection names, string? recipient)
    {
        var domain = recipient is not null && recipient.LastIndexOf('@') is var at and >= 0 ? recipient[(at + 1)..].TrimEnd('.') : null;
        foreach (System.Text.RegularExpressions.Match m in names)
        {
            var name = m.Value;
            if (name.Contains('@', StringComparison.Ordinal)
                || (domain is { Length: > 0 } && (name.Equals(domain, StringComparison.OrdinalIgnoreCase) || name.EndsWith("." + domain, StringComparison.OrdinalIgnoreCase))))
            {
                continue;
            }

            if (Array.Exists(Blocklists, b => name.Contains(b, StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The text with each of its names (<see cref="Names"/>, found once, for the words and the
    /// blocklists) a space: every word with an '@' (an address, "RCPT TO:&lt;anne@spamcop.net&gt;:")
    /// and every dotted name (a host, a domain, an IP address, a status code); and every run of
    /// white space one space: "user &lt;anne@x&gt; does not exist" reads "user does not exist"
    /// (review 70: the name left two spaces, and the phrase was not found). What is left is what
    /// the server said in words.
    /// </summary>
    private static string Without(string text, System.Text.RegularExpressions.MatchCollection names)
    {
        var sb = new StringBuilder(text.Length);
        var at = 0;
        foreach (System.Text.RegularExpressions.Match m in names)
        {
            AppendWords(sb, text.AsSpan(at, m.Index - at));
            AppendWords(sb, " ");
            at = m.Index + m.Length;
        }

        AppendWords(sb, text.AsSpan(at));
        return sb.ToString();
    }

    private static void AppendWords(StringBuilder sb, ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            if (!char.IsWhiteSpace(c))
            {
                sb.Append(c);
            }
            else if (sb.Length > 0 && sb[^1] != ' ')
            {
                sb.Append(' ');
            }
        }
    }

    // A URL (its path's words are no refusal: ".../anti-spam-policy.html"), an address (a run
    // without spaces or brackets around an '@', its domain ending at a ':': Barracuda writes
    // "(anne@example.com:blocked)", review 70), or a dotted name of letters, digits, '_' and
    // '-' ("mx10.mailspamprotection.com", "192.0.2.5"). Linear: no backtracking.
    [System.Text.RegularExpressions.GeneratedRegex(@"(?:https?|ftp)://[^\s<>""']*|[^\s<>()\[\]""',;]*@[^\s<>()\[\]""',;:]*|[\p{L}\p{N}_-]+(?:\.[\p{L}\p{N}_-]+)+", System.Text.RegularExpressions.RegexOptions.NonBacktracking | System.Text.RegularExpressions.RegexOptions.IgnoreCase)]
    private static partial System.Text.RegularExpressions.Regex Names();

    // A full stop before a capitalised word, the space after it missing ("spam.Message
    // rejected", "DMARC.Please"): a sentence's end, not a host name (review 64).
    [System.Text.RegularExpressions.GeneratedRegex(@"\.(\p{Lu}\p{Ll})", System.Text.RegularExpressions.RegexOptions.NonBacktracking)]
    private static partial System.Text.RegularExpressions.Regex SentenceBreaks();

    // The word alone, ignoring case: no letter or digit on either side, and no part of a host
    // name ("in an RBL." is the word; "rbl.example.net" and "mx.rbl-free.example" are not).
    private static bool ContainsWord(string text, string word)
    {
        for (var at = text.IndexOf(word, StringComparison.OrdinalIgnoreCase); at >= 0; at = text.IndexOf(word, at + 1, StringComparison.OrdinalIgnoreCase))
        {
            var end = at + word.Length;
            var before = at == 0 || !(char.IsLetterOrDigit(text[at - 1]) || text[at - 1] is '.' or '-');
            var after = end == text.Length || !(char.IsLetterOrDigit(text[end]) || (text[end] is '.' or '-' && end + 1 < text.Length && char.IsLetterOrDigit(text[end + 1])));
            if (before && after)
            {
                return true;
            }
        }

        return false;
    }

    // The first RFC 3463 code in a text (4.x.x or 5.x.x standing alone: not part of an IP address,
    // a version or a longer number), other than X.0.0; null when none.
    private static (char Class, char Subject, char Detail)? CodeIn(string text)
    {
        for (var i = 0; i + 4 < text.Length; i++)
        {
            if (text[i] is not ('4' or '5') || text[i + 1] != '.' || (i > 0 && (char.IsAsciiDigit(text[i - 1]) || text[i - 1] == '.')))
            {
                continue;
            }

            var j = i + 2;
            while (j < text.Length && char.IsAsciiDigit(text[j]))
            {
                j++;
            }

            if (j - (i + 2) is < 1 or > 3 || j + 1 >= text.Length || text[j] != '.' || !char.IsAsciiDigit(text[j + 1]))
            {
                continue;
            }

            var k = j + 1;
            while (k < text.Length && char.IsAsciiDigit(text[k]))
            {
                k++;
            }

            if (k - (j + 1) > 3 || (k < text.Length && (char.IsAsciiDigit(text[k]) || (text[k] == '.' && k + 1 < text.Length && char.IsAsciiDigit(text[k + 1])))))
            {
                continue;
            }

            if (EnhancedCode(text[i..k]) is { } code && code is not { Subject: '0', Detail: '0' })
            {
                return code;
            }
        }

        return null;
    }

    /// <summary>
    /// The transactions in which the server refused every recipient with the same reply (the
    /// addresses in it aside): the relay refusing us, not the members. A chunk of one-recipient
    /// transactions (a personalized post) counts as one when all of its
    /// <paramref name="attempted"/> recipients (at least 2) were refused alike. Our own refusals
    /// (<see cref="SmtpRefusal.Ours"/>) are not the server's replies and never count.
    /// </summary>
    /// <param name="attempted">The chunk's recipients the server answered for good, ours included (not those deferred without being accepted: a greylisted one, or those after a 421).</param>
    /// <returns>The transactions; empty when none, or every one of the chunk's when it is the whole chunk.</returns>
    public static HashSet<int> RefusedAlike(IReadOnlyList<SmtpRefusal> refusals, long attempted)
    {
        var (all, answered) = ServerAnswers(refusals, attempted);
        return RefusedAlike(all, answered);
    }

    // The server's answers alone, and how many recipients it was asked about.
    private static HashSet<int> RefusedAlike(List<SmtpRefusal> all, long answered)
    {
        var alike = new HashSet<int>();
        if (all.Count >= 2 && all.Count == answered && AllAlike(all))
        {
            foreach (var r in all)
            {
                alike.Add(r.Transaction);
            }

            return alike;
        }

        var whole = new Dictionary<int, List<SmtpRefusal>>(); // transactions whose every answered recipient was refused
        foreach (var group in all.GroupBy(r => r.Transaction))
        {
            var list = group.ToList();
            if (list.Count == list[0].TransactionSize)
            {
                whole[group.Key] = list;
                if (list.Count >= 2 && AllAlike(list))
                {
                    alike.Add(group.Key);
                }
            }
        }

        // A transaction and its part sent apart for SMTPUTF8, both refused whole and alike, are
        // alike together (review 117: one member apart could never be alike on its own).
        foreach (var (t, list) in whole)
        {
            if (t >= 0 && whole.TryGetValue(PartApart(t), out var apart) && AllAlike([.. list, .. apart]))
            {
                alike.Add(t);
                alike.Add(PartApart(t));
            }
        }

        return alike;
    }

    /// <summary>The transaction number of the part of transaction <paramref name="transaction"/> sent apart for SMTPUTF8 (below zero: never a transaction's index).</summary>
    public static int PartApart(int transaction) => -1 - transaction;

    /// <summary>
    /// The refusals that wait in retry instead of bouncing: the relay refusing us, not the
    /// members. Only the server's (never <see cref="SmtpRefusal.Ours"/>). After DATA only those
    /// whose status names the relay's state (5.3.1, 5.3.2, 5.3.5, 5.4.1-5.4.5, 5.4.7: a sending
    /// quota answered at the end of DATA); any other is the message's (a loop, its size, content).
    /// At RCPT: every refusal of a transaction, or of the whole chunk, <see cref="RefusedAlike"/>
    /// whatever it says (a relay that takes the members' domain for
    /// its own answers 5.1.1 to all of them), and any one whose RFC 3463 status is about the
    /// mail system, the network or routing, or policy (5.3.x, 5.4.x, 5.7.x: Postfix's
    /// <c>554 5.7.1 Relay access denied</c>, a smarthost's <c>550 5.4.5</c> sending quota), which
    /// say the relay's state or configuration, never the address. Alike replies that are about
    /// the address count only when they are the whole chunk of at least 3.
    /// </summary>
    /// <returns>Indexes into <paramref name="refusals"/>, ascending.</returns>
    public static List<int> ForTheRelay(IReadOnlyList<SmtpRefusal> refusals, long attempted)
    {
        var (answers, answered) = ServerAnswers(refusals, attempted);
        var alike = RefusedAlike(answers, answered);

        // Alike replies about the address are the relay's only for a whole chunk of at least 3:
        // two dead members of one domain share a batched transaction and Postfix's wording.
        var wholeChunk = answers.Count >= 3 && answers.Count == answered;
        var found = new List<int>();
        for (var i = 0; i < refusals.Count; i++)
        {
            var r = refusals[i];
            if (r.Ours)
            {
                continue;
            }

            if (r.AtRecipient
                ? (alike.Contains(r.Transaction) && (wholeChunk || !IsAboutTheAddress(r, out _))) || EnhancedCode(r.Response) is { Subject: '3' or '4' or '7' }
                : IsRelayStateAfterData(r.Response))
            {
                found.Add(i);
            }
        }

        return found;
    }

    // After DATA the reply is about the message, except when its RFC 3463 status names the
    // relay's own state: 5.3.1 system full, 5.3.2 not accepting messages, 5.3.5 misconfigured;
    // 5.4.1-5.4.5 and 5.4.7 (no answer, bad connection, directory failure, unable to route,
    // congestion: a smarthost's "550 5.4.5 Daily sending quota exceeded" at the end of DATA,
    // expired). Never 5.3.0 or 5.4.0 (undefined: Postfix's "554 5.4.0 too many hops"), 5.4.6 or
    // a longer detail (loops: Exchange's 5.4.14 hop count), 5.3.3 or 5.3.4 (features, size): the
    // message's, and retrying it would send it again to every member until the lifetime ends.
    private static bool IsRelayStateAfterData(string response)
        => EnhancedCode(response) is { Subject: '3', Detail: '1' or '2' or '5' } or { Subject: '4', Detail: '1' or '2' or '3' or '4' or '5' or '7' };

    // The server's own refusals, and how many recipients it was asked about: ours were never sent.
    private static (List<SmtpRefusal> Answers, long Attempted) ServerAnswers(IReadOnlyList<SmtpRefusal> refusals, long attempted)
    {
        var answers = refusals.Where(r => !r.Ours).ToList();
        return (answers, attempted - (refusals.Count - answers.Count));
    }

    private static bool AllAlike(List<SmtpRefusal> refusals)
    {
        var first = Normalized(refusals[0]);
        return refusals.TrueForAll(r => Normalized(r) == first);
    }

    /// <summary>
    /// The status and text, lower case, with what differs per recipient taken out: addresses
    /// (<c>&lt;...&gt;</c>, words with an @: servers echo the recipient), the recipient's local
    /// part alone in quotes or brackets (<c>Mailbox "anne" does not exist</c>, review 117; bare,
    /// it could be a word of the reply: user@ and "User unknown") and, after the first word (the
    /// enhanced code), words with digits (counters, queue ids).
    /// </summary>
    internal static string Normalized(SmtpRefusal r)
    {
        var sb = new StringBuilder().Append(r.Status).Append(' ');
        var first = true;
        var at = r.Address.LastIndexOf('@');
        var local = at > 0 ? r.Address.AsSpan(0, at) : [];
        foreach (var word in r.Response.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            var keep = !word.Contains('@', StringComparison.Ordinal) && !(word.StartsWith('<') && word.TrimEnd(':', ',', ';', '.').EndsWith('>'))
                && (first || !word.AsSpan().ContainsAnyInRange('0', '9'))
                && !IsQuoted(word, local);
            first = false;
            if (keep)
            {
                sb.Append(word.ToLowerInvariant()).Append(' ');
            }
        }

        return sb.ToString();
    }

    // "local", 'local', (local) or [local], a trailing : , ; or . aside.
    private static bool IsQuoted(string word, ReadOnlySpan<char> local)
    {
        var w = word.AsSpan().TrimEnd(":,;.");
        return local.Length > 0 && w.Length == local.Length + 2
            && (w[0], w[^1]) is ('"', '"') or ('\'', '\'') or ('(', ')') or ('[', ']')
            && w[1..^1].Equals(local, StringComparison.OrdinalIgnoreCase);
    }

    // RFC 3463: class.subject.detail at the start of the text (MailKit gives the text after the
    // reply code). Subjects and details of more than one digit are 'x' (none in the registry's sense used here).
    internal static (char Class, char Subject, char Detail)? EnhancedCode(string response)
    {
        var s = response.AsSpan().TrimStart();
        if (s.Length >= 5 && s[0] is '2' or '4' or '5' && s[1] == '.' && char.IsAsciiDigit(s[2]))
        {
            var i = 2;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }

            if (i < s.Length - 1 && s[i] == '.' && char.IsAsciiDigit(s[i + 1]))
            {
                // Subjects are one digit in RFC 3463's registry; a longer one is none of 1 or 2.
                var detail = i + 2 == s.Length || !char.IsAsciiDigit(s[i + 2]) ? s[i + 1] : 'x';
                return (s[0], i == 3 ? s[2] : 'x', detail);
            }
        }

        return null;
    }

    private static string Subject(char subject) => subject switch
    {
        '0' => "other or undefined",
        '3' => "mail system",
        '4' => "network or routing",
        '5' => "protocol",
        '6' => "content",
        '7' => "security or policy",
        _ => "status",
    };
}
