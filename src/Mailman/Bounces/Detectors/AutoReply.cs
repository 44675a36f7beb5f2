// RFC 3834 automatic responses (vacation, out of office): recognised so they are never scored.
// Mail from a mailer daemon or postmaster is never taken for one: bounces carry the same header.
using MimeKit;

namespace Mailman.Bounces.Detectors;

public sealed class AutoReply : IBounceDetector
{
    private static readonly string[] DaemonNames = ["mailer-daemon", "mailer_daemon", "mail-daemon", "maildaemon", "postmaster", "mdaemon"];

    private static readonly string[] SubjectCues =
    [
        "out of office", "out of the office", "automatic reply", "auto-reply", "autoreply", "auto reply", "auto:",
        "vacation", "abwesenheit", "automatische antwort", "réponse automatique", "respuesta automática",
    ];

    public string Name => "AutoReply";

    public string Description => "RFC 3834 auto-replies (vacation, out of office): not a bounce";

    public BounceAnalysis? Detect(BounceContext message)
    {
        if (message.Is("multipart", "report") || FromADaemon(message))
        {
            return null;
        }

        return IsAutomaticResponse(message.Message) ? new BounceAnalysis(BounceKind.NotABounce, [], Name) : null;
    }

    /// <summary>Auto-Submitted: auto-replied (RFC 3834 section 5), the vacation programs' own
    /// headers, or a message whose subject says it is an absence notice and whose headers say it
    /// was generated: Auto-Submitted, X-Auto-Response-Suppress, Exchange's inbox-rule loop marker
    /// (X-MS-Exchange-Inbox-Rules-Loop, all an Outlook rule's "Automatic reply:" may carry), or
    /// Precedence bulk or junk (what vacation programs before RFC 3834 set).</summary>
    private static bool IsAutomaticResponse(MimeMessage message)
    {
        var headers = message.Headers;
        var autoSubmitted = Keyword(headers["Auto-Submitted"]);
        if (autoSubmitted.Equals("auto-replied", StringComparison.OrdinalIgnoreCase) || Notices.AutomaticMail.ResponderMarker(headers) is not null)
        {
            return true;
        }

        var precedence = Keyword(headers[HeaderId.Precedence]);
        var generated = autoSubmitted.StartsWith("auto-", StringComparison.OrdinalIgnoreCase) || headers.Contains("X-Auto-Response-Suppress")
            || headers.Contains("X-MS-Exchange-Inbox-Rules-Loop")
            || precedence.Equals("bulk", StringComparison.OrdinalIgnoreCase) || precedence.Equals("junk", StringComparison.OrdinalIgnoreCase);
        var subject = message.Subject ?? "";
        return generated && Array.Exists(SubjectCues, cue => subject.Contains(cue, StringComparison.OrdinalIgnoreCase));
    }

    private static bool FromADaemon(BounceContext message)
    {
        var from = message.From;
        var at = from.IndexOf('@', StringComparison.Ordinal);
        var local = at > 0 ? from[..at] : from;
        if (Array.Exists(DaemonNames, name => local.StartsWith(name, StringComparison.OrdinalIgnoreCase)))
        {
            return true;
        }

        var name = message.Message.From.Mailboxes.FirstOrDefault()?.Name ?? "";
        return name.Contains("mail delivery", StringComparison.OrdinalIgnoreCase) || name.Contains("delivery subsystem", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The header's first word, without parameters or comments.</summary>
    private static string Keyword(string? value)
    {
        var s = (value ?? "").AsSpan().Trim();
        var end = s.IndexOfAny(" \t;(");
        return (end < 0 ? s : s[..end]).ToString();
    }
}
