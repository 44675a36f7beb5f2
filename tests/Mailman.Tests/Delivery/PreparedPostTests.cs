// The render-once path: the bytes MailKit sends for a recipient are the flattened post with that
// recipient's values spliced in, and the size announced up front is exact.
using System.Text;
using Mailman.Delivery;
using Mailman.Delivery.Smtp;
using Mailman.Lists;
using Mailman.Pipeline.Handlers;
using Mailman.Queues;
using Mailman.Runners;
using Mailman.Templates;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Delivery;

public sealed class PreparedPostTests
{
    private static PreparedPost Prepare(byte[] raw, Action<MailingList>? configure = null)
    {
        var post = Pipeline.PostBuilder.Context(raw, l =>
        {
            l.FooterTemplate = "-- sent to $user_name <$user_address>";
            configure?.Invoke(l);
        });
        new Personalize().Process(post);
        new Decorate().Process(post);
        var flat = WireFormat.Flatten(post.Message);
        return PreparedPost.Create(flat, post.SlotNonce);
    }

    private static byte[] Render(PreparedPost post, Recipient recipient)
    {
        var carrier = new Carrier(post);
        carrier.SetRecipient(RecipientValues.For(recipient, RecipientValues.NewScratch()));
        using var output = new MemoryStream();
        carrier.Message.WriteTo(Carrier.SendOptions, output);
        Assert.Equal(carrier.Body.Size, output.Length);
        return output.ToArray();
    }

    [Fact]
    public void Each_copy_names_its_recipient_in_To_and_footer_and_nothing_else_changes()
    {
        var post = Prepare(Posts.Plain());
        var ann = Encoding.UTF8.GetString(Render(post, new Recipient("ann@example.com", "Ann")));
        var bob = Encoding.UTF8.GetString(Render(post, new Recipient("bob@example.com", "")));

        Assert.Contains("\r\nTo: Ann <ann@example.com>\r\n", ann, StringComparison.Ordinal);
        Assert.Contains("-- sent to Ann <ann@example.com>\r\n", ann, StringComparison.Ordinal);
        Assert.Contains("\r\nTo: bob@example.com\r\n", bob, StringComparison.Ordinal);
        Assert.Contains("-- sent to bob@example.com <bob@example.com>\r\n", bob, StringComparison.Ordinal);
        Assert.DoesNotContain(Slots.Prefix, ann, StringComparison.Ordinal);
        Assert.Equal(
            ann.Replace("Ann <ann@example.com>", "X", StringComparison.Ordinal),
            bob.Replace("bob@example.com <bob@example.com>", "X", StringComparison.Ordinal).Replace("To: bob@example.com", "To: X", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Evil\r\nBcc: victim@example.net")]
    [InlineData("Evil\nBcc: victim@example.net")]
    [InlineData("\r\n--boundary--\r\n")]
    public void Line_breaks_in_names_cannot_inject_headers_or_boundaries(string name)
    {
        var copy = Encoding.UTF8.GetString(Render(Prepare(Posts.Alternative()), new Recipient("x@example.com", name)));
        var message = MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(copy)));
        Assert.Empty(message.Bcc);
        Assert.DoesNotContain("\nBcc:", copy, StringComparison.Ordinal);
        Assert.Equal("x@example.com", Assert.Single(message.To.Mailboxes).Address);
        Assert.Equal(2, ((Multipart)message.Body!).Count);
    }

    [Fact]
    public void Non_ascii_and_very_long_names_are_encoded_and_folded()
    {
        var name = "Zoë Ångström " + new string('x', 480);
        var copy = Encoding.UTF8.GetString(Render(Prepare(Posts.Plain()), new Recipient("zoe@example.com", name)));
        var headerBlock = copy[..copy.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        Assert.Contains("=?utf-8?", headerBlock, StringComparison.Ordinal);
        Assert.All(headerBlock.Split("\r\n"), line => Assert.True(line.Length <= 998));
        var message = MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(copy)));
        Assert.Equal(Member.Sanitize(name), Assert.Single(message.To.Mailboxes).Name);
    }

    [Fact]
    public void Without_personalization_the_post_goes_out_as_flattened()
    {
        var raw = Posts.Plain();
        var message = PostParser.Parse(raw);
        var flat = WireFormat.Flatten(message);
        var post = PreparedPost.Create(flat, null);

        var carrier = new Carrier(post);
        carrier.SetRecipient(null);
        using var output = new MemoryStream();
        carrier.Message.WriteTo(Carrier.SendOptions, output);
        Assert.Equal(flat, output.ToArray());
        Assert.Equal(flat.Length, carrier.Body.Size);
    }
}
