using Mailman.Requests;

namespace Mailman.Tests.Requests;

public sealed class CommandParserTests
{
    private static List<string> Lines(string? subject, string body) => CommandParser.Read(subject, body).Select(l => l.Text).ToList();

    [Fact]
    public void The_subject_comes_first_then_the_body_lines_without_blank_ones()
        => Assert.Equal(["join", "help", "confirm 0123"], CommandParser.Read("join", "\nhelp\n\n  confirm   0123  \n").Select(l => string.Join(' ', l.Words)));

    [Theory]
    [InlineData("Re: confirm abc", "confirm abc")]
    [InlineData("RE: Fwd: [dev] Re: join", "join")]
    [InlineData("AW: [Dev Team] help", "help")]
    [InlineData("[unterminated join", "[unterminated join")]
    public void Reply_prefixes_and_list_tags_are_stripped_from_the_subject(string subject, string expected)
        => Assert.Equal(expected, CommandParser.StripReplyPrefixes(subject));

    [Fact]
    public void Quoted_text_is_skipped_and_a_signature_or_the_start_of_a_quote_ends_the_commands()
    {
        Assert.Equal(["join"], Lines(null, "> leave\n>leave\njoin\n-- \nleave\n"));
        Assert.Equal(["join"], Lines(null, "join\nOn Mon, 1 Dec 2026, Anne <a@example.com> wrote:\nleave\n"));
        Assert.Equal(["join"], Lines(null, "join\n-----Original Message-----\nleave\n"));
        Assert.Equal(["join"], Lines(null, "join\n________________________________\nFrom: x\nleave\n"));
    }

    [Fact]
    public void At_most_ten_body_lines_are_read_and_long_lines_are_cut()
    {
        var body = string.Join('\n', Enumerable.Range(0, 50).Select(i => "line " + i));
        var read = CommandParser.Read(null, body);
        Assert.Equal(CommandParser.MaxBodyLines, read.Count(l => !l.NotRead));
        Assert.True(read[^1].NotRead); // the rest stands for itself: the results say it was not read
        Assert.DoesNotContain(CommandParser.Read(null, string.Join('\n', Enumerable.Range(0, 10).Select(i => "line " + i)) + "\n\n> quoted\n"), l => l.NotRead);
        var line = Assert.Single(Lines(null, new string('x', 100_000)));
        Assert.Equal(CommandParser.MaxLineLength, line.Length);
    }

    [Fact]
    public void Words_and_the_command_name_are_case_insensitive_and_control_characters_are_spaces()
    {
        var line = Assert.Single(CommandParser.Read(null, "JOIN\u0000now\ttoo"));
        Assert.Equal("join", line.Name);
        Assert.Equal(["now", "too"], line.Arguments);
    }

    [Fact]
    public void The_body_is_the_first_plain_text_part_decoded_in_its_charset_and_at_most_64_KB()
    {
        var raw = "From: a@example.com\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nr=E9sum=E9\njoin\n--b\nContent-Type: text/html\n\n<p>leave</p>\n--b--\n";
        var message = MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(raw)));
        Assert.Equal("r\u00e9sum\u00e9\njoin", CommandParser.BodyText(message).Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n'));

        var big = MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.ASCII.GetBytes("From: a@example.com\n\n" + new string('x', 1_000_000))));
        Assert.Equal(CommandParser.MaxBodyChars, CommandParser.BodyText(big).Length);
    }

    // Stop 56's note: an HTML-only reply (some webmail and phone clients send no text/plain) was
    // answered "the reply said nothing". Its text is read; the quoted notice after "wrote:" is not.
    [Fact]
    public void An_html_only_body_is_read_as_its_text()
    {
        var raw = "From: mo@example.com\nContent-Type: text/html; charset=utf-8\n\n"
            + "<html><head><style>p { color: red }</style></head><body><div dir=\"ltr\">Approve&nbsp;</div><br>"
            + "<div class=\"gmail_quote\"><div>On Mon, 1 Dec 2026, dev wrote:<br></div><blockquote><p>reject</p><p>leave</p></blockquote></div></body></html>\n";
        var message = MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(raw)));
        Assert.Equal("Approve", CommandParser.FirstLine(message));
        Assert.Equal(["approve"], CommandParser.Read(message).Select(l => l.Name));
        Assert.Equal("Approve\u00a0\nOn Mon, 1 Dec 2026, dev wrote:\n> reject\n> leave\n", CommandParser.BodyText(message));

        // White space before an inline element's end or start is a space between words.
        var inline = MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(
            "From: mo@example.com\nContent-Type: text/html\n\n<div>reject <i>too</i> long, <b>see </b>the<span> </span>rules</div>\n")));
        Assert.Equal("reject too long, see the rules", CommandParser.FirstLine(inline));
        var outlook = MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(
            "From: mo@example.com\nContent-Type: text/html\n\n<p class=MsoNormal>join address=<st1:PersonName w:st=\"on\">dave@example.net</st1:PersonName><o:p></o:p></p>\n")));
        Assert.Equal("join address=dave@example.net", CommandParser.FirstLine(outlook)); // review 135: an unknown tag split it

        // An HTML part beside a plain one is not read; an HTML attachment is not a body.
        var both = "From: a@example.com\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\njoin\n--b\nContent-Type: text/html\n\n<p>leave</p>\n--b--\n";
        Assert.Equal(["join"], CommandParser.Read(MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(both)))).Select(l => l.Name));
        var attached = "From: a@example.com\nContent-Type: text/html\nContent-Disposition: attachment; filename=x.html\n\n<p>leave</p>\n";
        Assert.Equal("", CommandParser.BodyText(MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(attached)))));

        // Markup counts toward what is read, and the text is bounded as a plain body is.
        var big = "From: a@example.com\nContent-Type: text/html\n\n<p>join</p>" + string.Concat(Enumerable.Repeat("<b>x</b>", 200_000));
        var text = CommandParser.BodyText(MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(big))));
        Assert.StartsWith("join", text, StringComparison.Ordinal);
        Assert.True(text.Length <= CommandParser.MaxBodyChars, text.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    // A format=flowed body is read as its writer wrote it: a client that wraps a long line
    // (a confirmation token, an address) sends it as two, joined by the soft break's space.
    [Fact]
    public void A_flowed_body_is_read_with_its_soft_breaks_joined()
    {
        var flowed = "From: a@example.com\nContent-Type: text/plain; format=flowed\n\njoin address= \ndave@example.net digest=yes\n> leave\n";
        Assert.Equal(["join address= dave@example.net digest=yes"], CommandParser.Read(MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(flowed)))).Select(l => l.Text));
        var delsp = "From: a@example.com\nContent-Type: text/plain; format=flowed; delsp=yes\n\nconfirm 0123456789abcdef \n0123456789abcdef\n";
        Assert.Equal(["confirm 0123456789abcdef0123456789abcdef"], CommandParser.Read(MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(delsp)))).Select(l => l.Text));
        var signed = "From: a@example.com\nContent-Type: text/plain; format=flowed\n\njoin \n-- \nAnne \nleave\n";
        Assert.Equal(["join"], CommandParser.Read(MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(signed)))).Select(l => l.Text)); // review 138: "join -- Anne leave"
        var fixedLines = "From: a@example.com\nContent-Type: text/plain\n\njoin \nhelp\n";
        Assert.Equal(["join", "help"], CommandParser.Read(MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(fixedLines)))).Select(l => l.Text));
    }
}
