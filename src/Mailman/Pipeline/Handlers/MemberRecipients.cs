// The recipients of a post: the list's members with delivery enabled, each once; with each
// member's one-click unsubscribe token when the post carries one-click links.
using Mailman.Http;
using Mailman.Lists;
using Mailman.Queues;

namespace Mailman.Pipeline.Handlers;

public sealed class MemberRecipients(Func<ListName, IEnumerable<Member>> members, OneClickLinks? oneClick = null) : IHandler
{
    public string Name => "member-recipients";

    public string Description => "deliver to every member with delivery enabled, each address once";

    public HandlerResult Process(PostContext post)
    {
        var list = post.List.Name;

        // Streamed at the moment the out entry is written; the store's unique key on the
        // lower-cased address already rules out duplicates. A one-click token is an HMAC per
        // member (under 2 µs), computed as the member streams by.
        var links = post.OneClick ? oneClick : null;
        post.Recipients = () => members(list)
            .Where(m => m.DeliveryEnabled)
            .Select(m => new Recipient(m.Address, m.DisplayName) { UnsubscribeToken = links?.Token(list, m.Address, m.Serial) });
        return HandlerResult.Continue;
    }
}
