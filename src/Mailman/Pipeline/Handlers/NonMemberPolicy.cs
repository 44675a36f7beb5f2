// The posting policy for senders who are not members: accept, hold, reject or discard. The
// sender is the From: address (every address in it, as Mailman checks all of them).
using Mailman.Lists;

namespace Mailman.Pipeline.Handlers;

public sealed class NonMemberPolicy(Func<ListName, string, bool> isMember) : IHandler
{
    public string Name => "nonmember-policy";

    public string Description => "apply the list's nonmember_action to posts from non-members";

    public HandlerResult Process(PostContext post)
    {
        var senders = post.Message.From.Mailboxes.Select(m => m.Address).ToList();
        if (senders.Count == 0 && !string.IsNullOrEmpty(post.Metadata.Sender))
        {
            senders.Add(post.Metadata.Sender);
        }

        if (senders.Any(s => isMember(post.List.Name, s)))
        {
            return HandlerResult.Continue;
        }

        var who = senders.Count == 0 ? "(no sender)" : string.Join(", ", senders);
        return post.List.NonMemberAction switch
        {
            NonMemberAction.Accept => HandlerResult.Continue,
            NonMemberAction.Hold => HandlerResult.Hold($"post from non-member {who}"),
            NonMemberAction.Reject => HandlerResult.Reject($"post from non-member {who}"),
            _ => HandlerResult.Discard($"post from non-member {who}"),
        };
    }
}
