// Discards a post that already went through this list (our own X-BeenThere or List-Id is
// present): a mail loop between lists or through an autoresponder.
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
                && header.Value.Trim().Equals(list.Fqdn, StringComparison.OrdinalIgnoreCase))
            {
                return HandlerResult.Discard($"loop: X-BeenThere {list.Fqdn} present");
            }

            if (header.Id == HeaderId.ListId && header.Value.Contains("<" + list.ListId + ">", StringComparison.OrdinalIgnoreCase))
            {
                return HandlerResult.Discard($"loop: List-Id <{list.ListId}> present");
            }
        }

        return HandlerResult.Continue;
    }
}
