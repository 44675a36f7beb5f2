// For personalized lists: starts a slot nonce for the post and makes To: a per-recipient slot,
// so each member sees their own name and address there. When the instance has a public URL,
// List-Unsubscribe (written by list-headers, which runs first) becomes each member's own RFC 8058
// one-click link, another header slot.
using System.Text;
using Mailman.Http;
using Mailman.Lists;
using Mailman.Templates;
using MimeKit;

namespace Mailman.Pipeline.Handlers;

public sealed class Personalize(OneClickLinks? oneClick = null) : IHandler
{
    // A header line stays below RFC 5322's 998 characters whatever the list and address.
    private const int MaxLinkPrefix = 600;

    public string Name => "personalize";

    public string Description => "for personalize=full lists, make To:, List-Unsubscribe and footer placeholders per recipient";

    public HandlerResult Process(PostContext post)
    {
        if (post.List.Personalize != Personalization.Full)
        {
            post.Metadata.Personalized = false;
            return HandlerResult.Continue;
        }

        var nonce = Slots.NewNonce();
        post.SlotNonce = nonce;
        post.Metadata.Personalized = true;
        post.Metadata.SlotNonce = nonce;
        var headers = post.Message.Headers;
        var index = headers.IndexOf(HeaderId.To);
        headers.RemoveAll(HeaderId.To);
        var to = new Header(HeaderId.To, "x");
        to.SetRawValue(Encoding.ASCII.GetBytes(" " + Slots.Token(nonce, SlotKind.ToHeader) + "\n"));
        if (index >= 0 && index <= headers.Count)
        {
            headers.Insert(index, to);
        }
        else
        {
            headers.Add(to);
        }

        OneClickSlot(post, nonce);
        return HandlerResult.Continue;
    }

    // List-Unsubscribe: <PUBLIC/u/LIST/SLOT>, <mailto:LIST-leave@HOST> with List-Unsubscribe-Post
    // (RFC 8058 §3.1). A list with its own unsubscribe_url keeps it: the operator chose it.
    private void OneClickSlot(PostContext post, string nonce)
    {
        var headers = post.Message.Headers;
        var index = headers.IndexOf("List-Unsubscribe");
        var name = post.List.Name;
        if (oneClick is not { Enabled: true } || index < 0 || post.List.UnsubscribeUrl.Length > 0 || oneClick.UrlPrefix(name).Length > MaxLinkPrefix)
        {
            return;
        }

        var link = oneClick.UrlPrefix(name) + Slots.Token(nonce, SlotKind.ListUnsubscribe);
        var value = new Header("List-Unsubscribe", "x");
        value.SetRawValue(Encoding.ASCII.GetBytes($" <{link}>,\n <mailto:{name.LocalPart}-leave@{name.Domain}>\n"));
        headers[index] = value;
        headers.RemoveAll("List-Unsubscribe-Post");
        headers.Insert(index + 1, new Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"));
        post.OneClick = true;
    }
}
