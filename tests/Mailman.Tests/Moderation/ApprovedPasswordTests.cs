// The moderator password leaves the post everywhere: headers, the first text line, and the
// HTML copy of a multipart/alternative where mail clients wrap it in markup.
using System.Text;
using Mailman.Delivery;
using Mailman.Moderation;
using Mailman.Runners;

namespace Mailman.Tests.Moderation;

public sealed class ApprovedPasswordTests
{
    private const string Password = "Tr0ub4dor&3";

    private static string Flat(MimeKit.MimeMessage m) => Encoding.UTF8.GetString(WireFormat.Flatten(m));

    [Theory]
    [InlineData("Approved")]
    [InlineData("Approve")]
    [InlineData("X-Approved")]
    [InlineData("X-Approve")]
    public void Every_approved_header_is_taken_and_removed(string header)
    {
        var post = PostParser.Parse(Encoding.UTF8.GetBytes($"From: a@example.com\n{header}: {Password}\nApproved: other\nSubject: s\n\nbody\n"));
        Assert.Equal(Password, ApprovedPassword.Take(post, out var modified));
        Assert.True(modified);
        Assert.DoesNotContain(Password, Flat(post), StringComparison.Ordinal);
        Assert.DoesNotContain("Approve", Flat(post), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void The_first_line_of_a_plain_post_is_a_pseudo_header()
    {
        var post = PostParser.Parse(Encoding.UTF8.GetBytes($"From: a@example.com\nSubject: s\n\n\nApproved: {Password}\n\nThe real text.\n"));
        Assert.Equal(Password, ApprovedPassword.Take(post, out var modified));
        Assert.True(modified);
        Assert.DoesNotContain(Password, Flat(post), StringComparison.Ordinal);
        Assert.Contains("The real text.", post.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public void A_password_in_the_text_is_removed_from_the_HTML_alternative_and_every_text_part()
    {
        var html = WebUtility(Password);
        var raw = $"""
            From: a@example.com
            Subject: s
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="MIX"

            --MIX
            Content-Type: multipart/alternative; boundary="ALT"

            --ALT
            Content-Type: text/plain; charset=utf-8

            Approved: {Password}

            Hello list.
            --ALT
            Content-Type: text/html; charset=utf-8
            Content-Transfer-Encoding: quoted-printable

            <html><body><div>Approved:&nbsp;<b>{html}</b></div><div><br></div><div>Hello list.</div></body></html>
            --ALT--
            --MIX
            Content-Type: text/plain; charset=us-ascii
            Content-Disposition: inline

            Approved: {Password}
            --MIX--

            """.Replace("\r\n", "\n", StringComparison.Ordinal);
        var post = PostParser.Parse(Encoding.UTF8.GetBytes(raw));
        Assert.Equal(Password, ApprovedPassword.Take(post, out var modified));
        Assert.True(modified);
        var flat = Flat(post);
        Assert.True(!flat.Contains(Password, StringComparison.Ordinal), flat);
        Assert.DoesNotContain(html, flat, StringComparison.Ordinal);
        Assert.DoesNotContain("Approved:", flat, StringComparison.Ordinal);
        Assert.Contains("Hello list.", post.TextBody, StringComparison.Ordinal);
        Assert.Contains("Hello list.", post.HtmlBody, StringComparison.Ordinal);
    }

    [Fact]
    public void A_post_whose_first_line_is_not_a_password_is_untouched()
    {
        var raw = "From: a@example.com\nSubject: s\n\nJust text.\nApproved: not the first line\n";
        var post = PostParser.Parse(Encoding.UTF8.GetBytes(raw));
        Assert.Null(ApprovedPassword.Take(post, out var modified));
        Assert.False(modified);
    }

    private static string WebUtility(string s) => System.Net.WebUtility.HtmlEncode(s);
}
