// Discards a post that already went through this list (our own X-BeenThere or List-Id is
// present, or the X-BeenThere the owner runner adds for LIST-owner@): a mail loop between
// lists, through an autoresponder, or from owner mail forwarded back to the list.
using MimeKit;

namespace Mailman.Pipeline.Handlers;

public sealed class LoopDetection : IHandler
{
    public string Name => "loop-detection";

    public string Description => "discard posts that already carry this list's X-BeenThere or List-Id";

    public HandlerResult Process(PostContext post)
    {
        var list = post.List.Name;
        foreach (var header in post.Message.Headers)
        {
            if (header.Field.Equals("X-BeenThere", StringComparison.OrdinalIgnoreCase)
                && header.Value.Trim() is var been
                && (been.Equals(list.Fqdn, StringComparison.OrdinalIgnoreCase) || been.Equals(list.OwnerAddress, StringComparison.OrdinalIgnoreCase)))
            {
                return HandlerResult.Discard($"loop: X-BeenThere {been} present");
            }

            if (header.Id == HeaderId.ListId && header.Value.Contains("<" + list.ListId + ">", StringComparison.OrdinalIgnoreCase))
            {
                return HandlerResult.Discard($"loop: List-Id <{list.ListId}> present");
            }
        }

        return HandlerResult.Continue;
    }
}
