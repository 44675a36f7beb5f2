// X-BeenThere (what loop detection looks for) and Precedence: list.
using MimeKit;

namespace Mailman.Pipeline.Handlers;

public sealed class BeenThere : IHandler
{
    public string Name => "x-beenthere";

    public string Description => "mark the post with X-BeenThere and Precedence: list";

    public HandlerResult Process(PostContext post)
    {
        var headers = post.Message.Headers;
        headers.Add("X-BeenThere", post.List.Name.Fqdn);
        headers.RemoveAll(HeaderId.Precedence);
        headers.Add(HeaderId.Precedence, "list");
        return HandlerResult.Continue;
    }
}
