using Mailman.Moderation;
using Mailman.Runners;

namespace Mailman.Tests.Moderation;

public sealed class SendersTests
{
    private static Senders Of(string headers, string? envelope = null)
        => Senders.Of(PostParser.Parse(System.Text.Encoding.UTF8.GetBytes(headers + "Subject: s\n\nx\n")), envelope);

    [Fact]
    public void The_authors_are_the_From_addresses_lower_cased_and_nothing_else_counts_beside_them()
    {
        var s = Of("From: Ann <Ann@Example.com>, bob@example.com\nSender: carol@example.com\nReply-To: dave@example.com\n", "eve@example.com");
        Assert.Equal(["ann@example.com", "bob@example.com"], s.Addresses);
        Assert.Equal("From", s.Source);
    }

    [Theory]
    [InlineData("Sender: carol@example.com\n", "eve@example.com", "carol@example.com", "Sender")]
    [InlineData("Reply-To: dave@example.com\n", "eve@example.com", "eve@example.com", "envelope")]
    [InlineData("From: \n", "<eve@example.com>", "eve@example.com", "envelope")]
    [InlineData("X-A: b\n", "<>", "", "")]
    public void Without_a_From_author_Sender_then_the_envelope_sender_count(string headers, string envelope, string first, string source)
    {
        var s = Of(headers, envelope);
        Assert.Equal(first, s.First);
        Assert.Equal(source, s.Source);
    }

    [Fact]
    public void At_most_ten_are_kept_and_the_summary_stays_short()
    {
        var s = Of("From: " + string.Join(", ", Enumerable.Range(0, 100_000).Select(i => $"someone{i}@example.net")) + "\n");
        Assert.Equal(100_000, s.Total);
        Assert.Equal(Senders.Limit, s.Addresses.Count);
        Assert.True(s.TooMany);
        Assert.Equal("someone0@example.net, someone1@example.net, someone2@example.net (+99997 more)", s.Summary);
        Assert.Equal("(no sender)", Of("X-A: b\n").Summary);
    }
}
