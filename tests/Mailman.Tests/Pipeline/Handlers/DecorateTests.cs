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
        Assert.Equal("utf-8", part.ContentType.Charset);
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
}
