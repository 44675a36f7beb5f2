// Recognizes mail that was sent by a program, not a person (RFC 3834 Auto-Submitted, the
// Precedence convention, list headers, the usual robot addresses), and so says when the server
// must never answer a message automatically. The one place these rules live: every runner that
// might reply asks here, so no second copy of them can drift into a mail loop.
using MimeKit;

namespace Mailman.Notices;

public static class AutomaticMail
{
    // RFC 3834 §2: responders should not answer these senders ("owner-*", "*-request",
    // "MAILER-DAEMON", LISTSERV, majordomo); "-bounces" and "-owner" are list robots too.
    private static readonly string[] RobotLocalParts = ["mailer-daemon", "listserv", "majordomo", "postmaster"];
    private static readonly string[] RobotPrefixes = ["owner-"];
    private static readonly string[] RobotSuffixes = ["-request", "-bounces", "-owner", "-admin"];
    private static readonly string[] ResponderHeaders = ["X-Autoreply", "X-Autorespond", "X-Autoresponder"];

    /// <summary>
    /// Why <paramref name="headers"/> mark the message as sent by a program (RFC 3834
    /// Auto-Submitted other than "no", or Precedence bulk/junk/list), or null when they do not.
    /// <paramref name="includeListPrecedence"/> false leaves out Precedence: list (mail a list
    /// distributed: a post, for the moderation chain, not an automatic reply).
    /// </summary>
    public static string? AutoSubmitted(HeaderList headers, bool includeListPrecedence = true)
    {
        var autoSubmitted = headers[HeaderId.AutoSubmitted];
        if (autoSubmitted is not null && !Keyword(autoSubmitted).Equals("no", StringComparison.OrdinalIgnoreCase))
        {
            return "Auto-Submitted: " + Keyword(autoSubmitted);
        }

        var precedence = headers[HeaderId.Precedence];
        if (precedence is not null && (Keyword(precedence).ToLowerInvariant() is "bulk" or "junk"
            || (includeListPrecedence && Keyword(precedence).Equals("list", StringComparison.OrdinalIgnoreCase))))
        {
            return "Precedence: " + Keyword(precedence).ToLowerInvariant();
        }

        if (ResponderMarker(headers) is { } marker)
        {
            return marker;
        }

        // An Outlook inbox rule acted on the message (forwarded or answered it): not a person.
        if (headers["X-MS-Exchange-Inbox-Rules-Loop"] is not null)
        {
            return "X-MS-Exchange-Inbox-Rules-Loop";
        }

        // Microsoft's own marker for its out-of-office replies.
        if (headers["X-Auto-Response-Suppress"] is { } suppress
            && (suppress.Contains("All", StringComparison.OrdinalIgnoreCase) || suppress.Contains("AutoReply", StringComparison.OrdinalIgnoreCase))
            && headers["X-MS-Exchange-Generated-Message-Source"] is not null)
        {
            return "X-MS-Exchange-Generated-Message-Source";
        }

        return null;
    }

    /// <summary>
    /// The vacation programs' own markers, from before and beside RFC 3834 (X-Autoreply,
    /// X-Autorespond, X-Autoresponder, Precedence: auto_reply), or null. Shared with the bounce
    /// detector for auto-replies (review 27: a responder marking itself only so confirmed a join
    /// or a forged leave).
    /// </summary>
    public static string? ResponderMarker(HeaderList headers)
    {
        foreach (var field in ResponderHeaders)
        {
            if (headers.Contains(field))
            {
                return field;
            }
        }

        return headers[HeaderId.Precedence] is { } precedence && Keyword(precedence).Equals("auto_reply", StringComparison.OrdinalIgnoreCase)
            ? "Precedence: auto_reply"
            : null;
    }

    /// <summary>Why the message came from a mailing list (List-Id, X-BeenThere, List-Post), or null.</summary>
    public static string? FromList(HeaderList headers)
    {
        if (headers[HeaderId.ListId] is not null)
        {
            return "List-Id";
        }

        if (headers["X-BeenThere"] is not null)
        {
            return "X-BeenThere";
        }

        return headers["List-Post"] is not null ? "List-Post" : null;
    }

    /// <summary>True for the null sender ("", "&lt;&gt;") and robot addresses no program should answer.</summary>
    public static bool IsRobotAddress(string? address)
    {
        var a = (address ?? "").Trim().Trim('<', '>').Trim();
        var at = a.LastIndexOf('@');
        if (at <= 0)
        {
            return true;
        }

        var local = a[..at].ToLowerInvariant();
        var plus = local.IndexOf('+', StringComparison.Ordinal);
        if (plus > 0)
        {
            local = local[..plus];
        }

        return RobotLocalParts.Contains(local)
            || RobotPrefixes.Any(p => local.StartsWith(p, StringComparison.Ordinal))
            || RobotSuffixes.Any(s => local.EndsWith(s, StringComparison.Ordinal));
    }

    /// <summary>
    /// Why the server must not answer this message automatically, or null when it may:
    /// never to the null sender, never to a robot, never to mail that is itself automatic or
    /// comes from a list (RFC 3834 §2).
    /// </summary>
    /// <param name="headers">The incoming message's headers.</param>
    /// <param name="envelopeSender">The envelope sender the MTA gave (null when unknown; "" is the null sender).</param>
    public static string? WhyNotAnswer(HeaderList headers, string? envelopeSender)
    {
        if (envelopeSender is not null && envelopeSender.Trim().Trim('<', '>').Trim().Length == 0)
        {
            return "null envelope sender";
        }

        if (envelopeSender is not null && IsRobotAddress(envelopeSender))
        {
            return $"sender {envelopeSender} is a robot address";
        }

        return AutoSubmitted(headers) is { } automatic ? "automatic message (" + automatic + ")"
            : FromList(headers) is { } list ? "message from a list (" + list + ")"
            : null;
    }

    // The first word of a header value ("auto-replied; owner-email=..." → "auto-replied").
    private static string Keyword(string value)
    {
        var v = value.Trim();
        var end = v.IndexOfAny([';', ' ', '\t', '(']);
        return end < 0 ? v : v[..end];
    }
}
