// The one-click List-Unsubscribe header is a per-recipient slot in the post flattened once: each
// copy carries its member's own link, the announced size stays exact, and a recipient without a
// token gets the mailto alone.
using System.Text;
using Mailman.Delivery;
using Mailman.Delivery.Smtp;
using Mailman.Http;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Pipeline.Handlers;
using Mailman.Queues;
using Mailman.Templates;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Delivery;

public sealed class OneClickSlotTests : IDisposable
{
    private readonly TempInstance _instance = new();
    private readonly OneClickLinks _links;

    public OneClickSlotTests()
    {
        var options = new MailmanOptions();
        options.Http.PublicUrl = "https://lists.example.org/mm/";
        _links = new OneClickLinks(options, new SecretKey(_instance.Paths));
    }

    public void Dispose() => _instance.Dispose();

    private (PreparedPost Post, bool OneClick) Prepare(Action<MailingList>? configure = null)
    {
        var context = Pipeline.PostBuilder.Context(Posts.Plain(), l =>
        {
            l.FooterTemplate = "-- sent to $user_address";
            configure?.Invoke(l);
        });
        new ListHeaders().Process(context);
        new Personalize(_links).Process(context);
        new Decorate().Process(context);
        return (PreparedPost.Create(WireFormat.Flatten(context.Message), context.SlotNonce), context.OneClick);
    }

    private static (string Text, MimeMessage Message) Render(PreparedPost post, Recipient recipient)
    {
        var carrier = new Carrier(post);
        carrier.SetRecipient(RecipientValues.For(recipient, RecipientValues.NewScratch()));
        using var output = new MemoryStream();
        carrier.Message.WriteTo(Carrier.SendOptions, output);
        Assert.Equal(carrier.Body.Size, output.Length);
        return (Encoding.UTF8.GetString(output.ToArray()), MimeMessage.Load(new MemoryStream(output.ToArray())));
    }

    [Fact]
    public void Each_copy_carries_its_members_own_link_and_the_size_stays_exact()
    {
        var (post, oneClick) = Prepare();
        Assert.True(oneClick);
        var dev = ListName.Parse("dev@example.org");
        var annToken = _links.Token(dev, "ann@example.com", "serial-1");
        var bobToken = _links.Token(dev, "bob@example.com", "serial-2");

        var (ann, annMessage) = Render(post, new Recipient("ann@example.com", "Ann") { UnsubscribeToken = annToken });
        var (bob, _) = Render(post, new Recipient("bob@example.com", "") { UnsubscribeToken = bobToken });

        Assert.Equal($"<https://lists.example.org/mm/u/dev@example.org/YW5uQGV4YW1wbGUuY29t/{annToken}>, <mailto:dev-leave@example.org>",
            annMessage.Headers["List-Unsubscribe"]!.Replace("\r\n", "", StringComparison.Ordinal));
        Assert.Equal("List-Unsubscribe=One-Click", annMessage.Headers["List-Unsubscribe-Post"]);
        Assert.Single(annMessage.Headers, h => h.Field == "List-Unsubscribe-Post");
        Assert.Contains("/Ym9iQGV4YW1wbGUuY29t/" + bobToken + ">", bob, StringComparison.Ordinal);
        Assert.DoesNotContain(Slots.Prefix, ann, StringComparison.Ordinal);
        Assert.All(ann.Split("\r\n"), line => Assert.True(line.Length <= 998));
    }

    [Fact]
    public void A_recipient_without_a_token_gets_the_mailto_alone()
    {
        var (post, _) = Prepare();
        var (_, message) = Render(post, new Recipient("ann@example.com", "Ann"));
        Assert.Equal("<mailto:dev-leave@example.org>", message.Headers["List-Unsubscribe"]);
    }

    [Fact]
    public void A_list_with_its_own_unsubscribe_url_or_without_personalization_keeps_the_list_wide_header()
    {
        var (own, ownOneClick) = Prepare(l => l.UnsubscribeUrl = "https://elsewhere.example.org/unsub");
        Assert.False(ownOneClick);
        Assert.Null(own.Unsubscribe);

        var context = Pipeline.PostBuilder.Context(Posts.Plain(), l => l.Personalize = Personalization.None);
        new ListHeaders().Process(context);
        new Personalize(_links).Process(context);
        Assert.False(context.OneClick);
        Assert.Equal("<mailto:dev-leave@example.org>", context.Message.Headers["List-Unsubscribe"]);
        Assert.Null(context.Message.Headers["List-Unsubscribe-Post"]);
    }
}
