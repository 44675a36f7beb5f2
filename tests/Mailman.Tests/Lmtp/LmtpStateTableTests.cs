// Which command is legal when: the table alone, no socket.
using Mailman.Lmtp;

namespace Mailman.Tests.Lmtp;

public sealed class LmtpStateTableTests
{
    [Theory]
    [InlineData("LHLO", LmtpState.Connected)]
    [InlineData("MAIL", LmtpState.Ready)]
    [InlineData("RCPT", LmtpState.Mail)]
    [InlineData("RCPT", LmtpState.Recipients)]
    [InlineData("DATA", LmtpState.Recipients)]
    [InlineData("rset", LmtpState.Recipients)]
    [InlineData("QUIT", LmtpState.Connected)]
    public void Legal_commands_pass(string verb, LmtpState state) => Assert.Null(LmtpStateTable.Refusal(verb, state));

    [Theory]
    [InlineData("MAIL", LmtpState.Connected, "503 5.5.1 Error: send LHLO first")]
    [InlineData("MAIL", LmtpState.Mail, "503 5.5.1 Error: nested MAIL command")]
    [InlineData("RCPT", LmtpState.Ready, "503 5.5.1 Error: need MAIL command")]
    [InlineData("DATA", LmtpState.Mail, "503 5.5.1 Error: no valid recipients")]
    [InlineData("EHLO", LmtpState.Connected, "500 5.5.1 Error: this is LMTP, send LHLO (RFC 2033)")]
    [InlineData("STARTTLS", LmtpState.Ready, "500 5.5.2 Error: command not recognized")]
    public void Illegal_commands_get_their_reason(string verb, LmtpState state, string reply) => Assert.Equal(reply, LmtpStateTable.Refusal(verb, state));
}
