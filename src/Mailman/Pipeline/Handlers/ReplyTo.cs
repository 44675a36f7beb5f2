// The list's Reply-To policy: leave it, point it at the list, or at an explicit address.
using Mailman.Lists;
using MimeKit;

namespace Mailman.Pipeline.Handlers;

public sealed class ReplyTo : IHandler
{
    public string Name => "reply-to";

    public string Description => "apply the list's reply_to policy (none, list, explicit)";

    public HandlerResult Process(PostContext post)
    {
        var list = post.List;
        string? address = list.ReplyTo switch
        {
            ReplyToPolicy.List => list.Name.Fqdn,
            ReplyToPolicy.Explicit when !string.IsNullOrEmpty(list.ReplyToAddress) => list.ReplyToAddress,
            _ => null,
        };
        if (address is not null)
        {
            post.Message.ReplyTo.Clear();
            post.Message.ReplyTo.Add(MailboxAddress.Parse(address));
        }

        return HandlerResult.Continue;
    }
}
