// Which LMTP command is legal when (RFC 2033 §4, RFC 5321 §4.1.4), as SmtpServer's StateTable
// has it: one row per command, the states it may come in, and the reply when it may not. The
// session consults the table before it runs a command; nothing here touches a socket or a queue.
namespace Mailman.Lmtp;

/// <summary>Where a session is: greeted, after LHLO, after MAIL, after at least one accepted RCPT.</summary>
public enum LmtpState
{
    Connected,
    Ready,
    Mail,
    Recipients,
}

public static class LmtpStateTable
{
    private sealed record Row(LmtpState[] Legal, string Refusal);

    private static readonly LmtpState[] Any = [LmtpState.Connected, LmtpState.Ready, LmtpState.Mail, LmtpState.Recipients];

    private static readonly Dictionary<string, Row> Rows = new(StringComparer.OrdinalIgnoreCase)
    {
        ["LHLO"] = new(Any, ""),
        ["MAIL"] = new([LmtpState.Ready], "503 5.5.1 Error: send LHLO first, and one MAIL per transaction"),
        ["RCPT"] = new([LmtpState.Mail, LmtpState.Recipients], "503 5.5.1 Error: need MAIL command"),
        // RFC 2033 §4.2: DATA after no successful RCPT fails with 503.
        ["DATA"] = new([LmtpState.Recipients], "503 5.5.1 Error: no valid recipients"),
        ["RSET"] = new(Any, ""),
        ["NOOP"] = new(Any, ""),
        ["QUIT"] = new(Any, ""),
        ["VRFY"] = new(Any, ""),
        ["HELP"] = new(Any, ""),
        // LMTP is not SMTP: a client that greets with HELO or EHLO has the wrong port.
        ["HELO"] = new([], "500 5.5.1 Error: this is LMTP, send LHLO (RFC 2033)"),
        ["EHLO"] = new([], "500 5.5.1 Error: this is LMTP, send LHLO (RFC 2033)"),
    };

    /// <summary>Null when <paramref name="verb"/> may run in <paramref name="state"/>; else the reply that refuses it.</summary>
    public static string? Refusal(string verb, LmtpState state)
    {
        if (!Rows.TryGetValue(verb, out var row))
        {
            return "500 5.5.2 Error: command not recognized";
        }

        if (row.Legal.Contains(state))
        {
            return null;
        }

        // MAIL before LHLO and a nested MAIL share the verb but not the reason.
        return verb.Equals("MAIL", StringComparison.OrdinalIgnoreCase) && state == LmtpState.Connected
            ? "503 5.5.1 Error: send LHLO first"
            : verb.Equals("MAIL", StringComparison.OrdinalIgnoreCase) ? "503 5.5.1 Error: nested MAIL command" : row.Refusal;
    }
}
