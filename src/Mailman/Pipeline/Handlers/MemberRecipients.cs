// The recipients of a post: the list's members with delivery enabled, each once.
using Mailman.Lists;
using Mailman.Queues;

namespace Mailman.Pipeline.Handlers;

public sealed class MemberRecipients(Func<ListName, IEnumerable<Member>> members) : IHandler
{
    public string Name => "member-recipients";

    public string Description => "deliver to every member with delivery enabled, each address once";

    public HandlerResult Process(PostContext post)
    {
        var list = post.List.Name;

        // Streamed at the moment the out entry is written; the store's unique key on the
        // lower-cased address already rules out duplicates.
        post.Recipients = () => members(list)
            .Where(m => m.DeliveryEnabled)
            .Select(m => new Recipient(m.Address, m.DisplayName));
        return HandlerResult.Continue;
    }
}
