// Builders for messages returned to a list's -bounces address: RFC 3464 DSNs, RFC 5965
// complaints, RFC 3834 vacation replies. Real-world samples are in shared/corpora/.
using System.Text;

namespace Mailman.TestSupport;

public static class BounceMessages
{
    /// <summary>A multipart/report DSN with the given per-recipient groups (RFC 3464 fields,
    /// one group per string, written as given) and the original attached.</summary>
    public static byte[] Dsn(IEnumerable<string> recipientGroups, string? attachedOriginal = null, string boundary = "DSN-BOUNDARY")
    {
        var sb = new StringBuilder();
        sb.Append("From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\n");
        sb.Append("To: dev-bounces@example.org\n");
        sb.Append("Subject: Undelivered Mail Returned to Sender\n");
        sb.Append("Auto-Submitted: auto-replied\n");
        sb.Append("Message-Id: <dsn-").Append(boundary).Append("@mx.example.com>\n");
        sb.Append("MIME-Version: 1.0\n");
        sb.Append("Content-Type: multipart/report; report-type=delivery-status; boundary=\"").Append(boundary).Append("\"\n\n");
        sb.Append("--").Append(boundary).Append("\nContent-Type: text/plain; charset=us-ascii\n\n");
        sb.Append("This is the mail system at host mx.example.com.\n\nI'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n");
        sb.Append("--").Append(boundary).Append("\nContent-Type: message/delivery-status\n\n");
        sb.Append("Reporting-MTA: dns; mx.example.com\nArrival-Date: Sat, 28 Nov 2026 10:00:00 +0000\n");
        foreach (var group in recipientGroups)
        {
            sb.Append('\n').Append(group.TrimEnd('\n')).Append('\n');
        }

        sb.Append("\n--").Append(boundary).Append("\nContent-Type: message/rfc822\n\n");
        sb.Append(attachedOriginal ?? "From: dev@example.org\nTo: anne@example.com\nSubject: [Dev] Hello\nMessage-Id: <post1@example.org>\n\nHi all\n");
        sb.Append("\n--").Append(boundary).Append("--\n");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>One recipient group: Final-Recipient, Action, Status (and optionally the rest).</summary>
    public static string Recipient(string address, string action = "failed", string status = "5.1.1", string? diagnostic = "smtp; 550 5.1.1 <{0}>: Recipient address rejected: User unknown", string? original = null)
    {
        var sb = new StringBuilder();
        sb.Append("Final-Recipient: rfc822; ").Append(address).Append('\n');
        if (original is not null)
        {
            sb.Append("Original-Recipient: rfc822;").Append(original).Append('\n');
        }

        sb.Append("Action: ").Append(action).Append('\n');
        sb.Append("Status: ").Append(status).Append('\n');
        if (diagnostic is not null)
        {
            sb.Append("Diagnostic-Code: ").Append(diagnostic.Replace("{0}", address, StringComparison.Ordinal)).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>An RFC 5965 abuse report about a list post sent to <paramref name="originalTo"/>.</summary>
    public static byte[] Arf(string feedbackType = "abuse", string? originalRcptTo = null, string originalTo = "anne@example.com")
    {
        var rcpt = originalRcptTo is null ? "" : $"Original-Rcpt-To: {originalRcptTo}\n";
        return Encoding.UTF8.GetBytes($"""
            From: Feedback Loop <fbl@isp.example.net>
            To: dev-bounces@example.org
            Subject: complaint about message from 192.0.2.1
            MIME-Version: 1.0
            Content-Type: multipart/report; report-type=feedback-report; boundary="ARF-BOUNDARY"

            --ARF-BOUNDARY
            Content-Type: text/plain; charset=us-ascii

            This is an email abuse report for an email message received from IP 192.0.2.1.

            --ARF-BOUNDARY
            Content-Type: message/feedback-report

            Feedback-Type: {feedbackType}
            User-Agent: SomeGenerator/1.0
            Version: 1
            Original-Mail-From: <dev-bounces@example.org>
            {rcpt}Arrival-Date: Sat, 28 Nov 2026 10:00:00 +0000
            Source-IP: 192.0.2.1

            --ARF-BOUNDARY
            Content-Type: message/rfc822

            From: dev@example.org
            To: {originalTo}
            Subject: [Dev] Hello
            Message-Id: <post1@example.org>

            Hi all
            --ARF-BOUNDARY--

            """.Replace("\r\n", "\n", StringComparison.Ordinal));
    }

    /// <summary>A vacation auto-reply (RFC 3834: Auto-Submitted: auto-replied).</summary>
    public static byte[] Vacation(string from = "anne@example.com")
        => Encoding.UTF8.GetBytes($"From: Anne <{from}>\nTo: dev@example.org\nSubject: Out of office: [Dev] Hello\nAuto-Submitted: auto-replied\nMessage-Id: <vac1@example.com>\n\nI am away until Monday. Your message could not be delivered to me in person;\nA message that you sent could not be delivered to my attention: anne@example.com\n");
}
