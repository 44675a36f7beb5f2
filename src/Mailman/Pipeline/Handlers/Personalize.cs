// For personalized lists: starts a slot nonce for the post and makes To: a per-recipient slot,
// so each member sees their own name and address there.
using System.Text;
using Mailman.Lists;
using Mailman.Templates;
using MimeKit;

namespace Mailman.Pipeline.Handlers;

public sealed class Personalize : IHandler
{
    public string Name => "personalize";

    public string Description => "for personalize=full lists, make To: and footer placeholders per recipient";

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

        return HandlerResult.Continue;
    }
}
