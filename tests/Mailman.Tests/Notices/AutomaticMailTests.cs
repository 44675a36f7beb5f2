using Mailman.Notices;
using MimeKit;

namespace Mailman.Tests.Notices;

public sealed class AutomaticMailTests
{
    private static HeaderList Headers(params string[] lines)
    {
        var list = new HeaderList();
        foreach (var line in lines)
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            list.Add(line[..colon], line[(colon + 1)..].Trim());
        }

        return list;
    }

    [Theory]
    [InlineData("Auto-Submitted: auto-replied")]
    [InlineData("Auto-Submitted: auto-generated; owner-email=x@example.com")]
    [InlineData("Precedence: bulk")]
    [InlineData("Precedence: JUNK")]
    [InlineData("Precedence: list")]
    [InlineData("List-Id: <other.example.net>")]
    [InlineData("X-BeenThere: other@example.net")]
    [InlineData("X-Autoreply: yes")]
    [InlineData("X-Autorespond: Out of office")]
    [InlineData("X-Autoresponder: 1")]
    [InlineData("Precedence: auto_reply")]
    [InlineData("X-MS-Exchange-Inbox-Rules-Loop: anne@example.com")]
    public void Automatic_and_list_mail_is_never_answered(string header)
        => Assert.NotNull(AutomaticMail.WhyNotAnswer(Headers(header), "person@example.com"));

    [Theory]
    [InlineData("")]
    [InlineData("<>")]
    [InlineData("MAILER-DAEMON@example.com")]
    [InlineData("owner-list@example.com")]
    [InlineData("dev-request@example.com")]
    [InlineData("dev-bounces+anne=example.com@example.org")]
    [InlineData("not-an-address")]
    public void The_null_sender_and_robots_are_never_answered(string sender)
        => Assert.NotNull(AutomaticMail.WhyNotAnswer(Headers("Subject: join"), sender));

    [Theory]
    [InlineData(null)]
    [InlineData("person@example.com")]
    public void A_person_writing_by_hand_may_be_answered(string? sender)
        => Assert.Null(AutomaticMail.WhyNotAnswer(Headers("Subject: join", "Auto-Submitted: no"), sender));
}
