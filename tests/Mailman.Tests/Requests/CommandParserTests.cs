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
}
