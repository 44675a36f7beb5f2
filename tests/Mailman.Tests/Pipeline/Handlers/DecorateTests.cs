using System.Text;
using Mailman.Pipeline.Handlers;
using Mailman.Templates;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Pipeline.Handlers;

public sealed class DecorateTests
{
    [Fact]
    public void Plain_text_gets_header_and_footer_in_the_text_itself()
    {
        var post = Pipeline.PostBuilder.Context(Posts.Plain(body: "Body line\n"), l =>
        {
            l.HeaderTemplate = "Header for $list_name";
            l.FooterTemplate = "Footer: $fqdn_listname";
        });
        new Decorate().Process(post);
        var part = Assert.IsType<TextPart>(post.Message.Body);
        Assert.Equal("Header for dev\nBody line\nFooter: dev@example.org\n", part.Text.ReplaceLineEndings("\n"));
    }

    // A 7-bit ASCII post decorated with ASCII stays 7bit as declared (no 8BITMIME needed on the
    // way); non-ASCII text, or a member's name or address (known only per copy), makes it UTF-8.
    [Theory]
    [InlineData("Footer: $fqdn_listname", null, ContentEncoding.Default, null)]
    [InlineData("Footer: $fqdn_listname", "us-ascii", ContentEncoding.SevenBit, "us-ascii")]
    [InlineData("Pied de page : Développeurs", null, ContentEncoding.EightBit, "utf-8")]
    [InlineData("to $user_address", null, ContentEncoding.EightBit, "utf-8")]
    [InlineData("Footer: $fqdn_listname", "utf-8", ContentEncoding.EightBit, "utf-8")]
    public void A_7bit_post_stays_7bit_unless_what_is_added_may_need_utf8(string footer, string? charset, ContentEncoding expected, string? expectedCharset)
    {
        var head = charset is null ? "" : $"MIME-Version: 1.0\nContent-Type: text/plain; charset={charset}\n" + (charset == "us-ascii" ? "Content-Transfer-Encoding: 7bit\n" : "");
        var post = Pipeline.PostBuilder.Context(Encoding.ASCII.GetBytes($"From: a@example.com\nSubject: s\n{head}\nBody line\n"), l => l.FooterTemplate = footer);
        post.SlotNonce = "0123456789abcdef";
        new Decorate().Process(post);
        var part = Assert.IsType<TextPart>(post.Message.Body);
        Assert.Equal(expected, part.ContentTransferEncoding);
        Assert.Equal(expectedCharset, part.ContentType.Charset);
        Assert.StartsWith("Body line\n", part.Text.ReplaceLineEndings("\n"), StringComparison.Ordinal);

        using var flat = new MemoryStream();
        post.Message.WriteTo(flat);
        var text = Encoding.UTF8.GetString(flat.ToArray());
        Assert.Equal(expected == ContentEncoding.EightBit, text.Contains("Content-Transfer-Encoding: 8bit", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(footer.StartsWith("Footer", StringComparison.Ordinal) ? "Footer: dev@example.org" : footer.Split(' ')[0], text, StringComparison.Ordinal);
    }

    [Fact]
    public void An_ascii_footer_part_is_us_ascii_7bit_and_a_utf8_one_8bit()
    {
        var ascii = Pipeline.PostBuilder.Context(Posts.Alternative(), l => l.FooterTemplate = "foot");
        new Decorate().Process(ascii);
        var part = Assert.IsType<TextPart>(Assert.IsType<Multipart>(ascii.Message.Body)[1]);
        Assert.Equal(("us-ascii", ContentEncoding.SevenBit), (part.ContentType.Charset, part.ContentTransferEncoding));

        var utf8 = Pipeline.PostBuilder.Context(Posts.Alternative(), l => l.FooterTemplate = "pied de page ünd");
        new Decorate().Process(utf8);
        part = Assert.IsType<TextPart>(Assert.IsType<Multipart>(utf8.Message.Body)[1]);
        Assert.Equal(("utf-8", ContentEncoding.EightBit), (part.ContentType.Charset, part.ContentTransferEncoding));
    }

    [Fact]
    public void Base64_text_is_kept_intact_and_the_footer_becomes_its_own_part()
    {
        var raw = Encoding.ASCII.GetBytes("From: a@example.com\nSubject: b64\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nSGVsbG8gd29ybGQ=\n");
        var post = Pipeline.PostBuilder.Context(raw, l => l.FooterTemplate = "footer");
        new Decorate().Process(post);
        var mixed = Assert.IsType<Multipart>(post.Message.Body);
        Assert.Equal("Hello world", Assert.IsType<TextPart>(mixed[0]).Text);
        Assert.Equal("footer\n", Assert.IsType<TextPart>(mixed[1]).Text);
    }

    [Fact]
    public void Multipart_mixed_gets_parts_added_and_alternative_gets_wrapped()
    {
        var mixedPost = Pipeline.PostBuilder.Context(Encoding.ASCII.GetBytes("From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\none\n--B\nContent-Type: application/octet-stream\n\ntwo\n--B--\n"),
            l => { l.HeaderTemplate = "head"; l.FooterTemplate = "foot"; });
        new Decorate().Process(mixedPost);
        var mixed = Assert.IsType<Multipart>(mixedPost.Message.Body);
        Assert.Equal(4, mixed.Count);
        Assert.Equal("head\n", ((TextPart)mixed[0]).Text);
        Assert.Equal("foot\n", ((TextPart)mixed[3]).Text);

        var alt = Pipeline.PostBuilder.Context(Posts.Alternative(), l => l.FooterTemplate = "foot");
        new Decorate().Process(alt);
        var wrapper = Assert.IsType<Multipart>(alt.Message.Body);
        Assert.True(wrapper.ContentType.IsMimeType("multipart", "mixed"));
        Assert.True(wrapper[0].ContentType.IsMimeType("multipart", "alternative"));
        Assert.Equal(2, wrapper.Count);
    }

    [Fact]
    public void Recipient_placeholders_become_slots_when_personalized_and_empty_otherwise()
    {
        var post = Pipeline.PostBuilder.Context(Posts.Plain(), l => l.FooterTemplate = "to $user_name <${user_address}> on $list_name");
        post.SlotNonce = "0123456789abcdef";
        Assert.Equal($"to {Slots.Token("0123456789abcdef", SlotKind.Name)} <{Slots.Token("0123456789abcdef", SlotKind.Address)}> on dev\n",
            Decorate.Render(post.List.FooterTemplate, post));

        post.SlotNonce = null;
        Assert.Equal("to  <> on dev\n", Decorate.Render(post.List.FooterTemplate, post));
    }

    // Review 79: the poster's boundary was kept, so a multipart/mixed without one got our parts
    // between empty "--" lines, and a member named "--M" split their own copy of a post whose
    // boundary was "M".
    [Theory]
    [InlineData("multipart/mixed; boundary=M", "--M\nContent-Type: text/plain\n\npart one\n--M--\n")]
    [InlineData("multipart/mixed", "--M\nContent-Type: text/plain\n\npart one\n--M--\n")]
    public void A_footer_added_to_a_multipart_comes_with_a_boundary_of_our_own(string type, string body)
    {
        var post = Pipeline.PostBuilder.Context(Encoding.ASCII.GetBytes($"From: a@example.com\nSubject: s\nMIME-Version: 1.0\nContent-Type: {type}\n\n{body}"), l => l.FooterTemplate = "--M\n--M--\nfooter");
        new Decorate().Process(post);
        using var flat = new MemoryStream();
        post.Message.WriteTo(flat);
        var again = MimeMessage.Load(new MemoryStream(flat.ToArray()));
        var mixed = Assert.IsType<Multipart>(again.Body);
        Assert.NotEqual("M", mixed.Boundary);
        Assert.False(string.IsNullOrEmpty(mixed.Boundary));
        Assert.Equal("--M\n--M--\nfooter\n", Assert.IsType<TextPart>(mixed[^1]).Text.ReplaceLineEndings("\n"));
    }
}
