// What a list recognizes a message by when it looks for duplicates: its Message-ID as MimeKit
// reads one, or, without a usable one, From:, Subject:, Date: and the body (review 111).
using System.Text;
using Mailman.Lists;

namespace Mailman.Tests.Lists;

public sealed class SeenKeyTests
{
    private static SeenKey Key(string? id, string message = "")
        => SeenKey.Of(id, () => new MemoryStream(Encoding.UTF8.GetBytes(message)))!;

    [Fact]
    public void Spellings_of_one_Message_ID_are_one_key()
    {
        Assert.Equal(Key("a1@x").Key, Key(" a1@x ").Key);
        Assert.Equal(Key("m5@x").Key, Key("m5@x> (comment)").Key);
        Assert.NotEqual(Key("a1@x").Key, Key("A1@x").Key); // the left part is case-sensitive
        Assert.Equal(SeenKey.MessageIdLife, Key("a1@x").Life);
    }

    [Theory]
    [InlineData(" ")]
    [InlineData("(comment)")]
    [InlineData("no-at-sign")]
    [InlineData(null)]
    public void An_id_that_is_no_Message_ID_gives_way_to_the_content(string? id)
    {
        const string Post = "From: a@example.com\nSubject: s\nDate: Sat, 28 Nov 2026 10:00:00 +0000\n\nbody\n";
        var key = Key(id, Post);
        Assert.StartsWith("content:", key.Key, StringComparison.Ordinal);
        Assert.Equal(SeenKey.ContentLife, key.Life);

        // What an MTA writes per recipient does not count; what the author wrote does.
        Assert.Equal(key.Key, Key(id, "Delivered-To: dev+1@example.org\nReceived: by x\n" + Post).Key);
        Assert.NotEqual(key.Key, Key(id, Post.Replace("body", "bodz", StringComparison.Ordinal)).Key);
        Assert.NotEqual(key.Key, Key(id, Post.Replace("Subject: s", "Subject: t", StringComparison.Ordinal)).Key);
        Assert.NotEqual(key.Key, Key(id, Post.Replace("10:00:00", "10:00:01", StringComparison.Ordinal)).Key);
    }

    [Fact]
    public void A_large_body_is_hashed_in_its_first_megabyte_and_counted_whole()
    {
        var head = "From: a@example.com\nSubject: s\n\n";
        var body = new string('x', 3 << 20);
        var key = Key(null, head + body);
        Assert.Equal(key.Key, Key(null, head + body[..^1] + "y").Key);
        Assert.NotEqual(key.Key, Key(null, head + body + "x").Key);
        Assert.NotEqual(key.Key, Key(null, head + "y" + body[1..]).Key);
    }
}
