// join (subscribe): the sender asks to become a member, under the list's subscription policy;
// "join address=ADDRESS" (Mailman 3's) asks for another address, which must confirm.
namespace Mailman.Requests.Commands;

public sealed class JoinCommand(SubscriptionRequests requests) : IRequestCommand
{
    public IReadOnlyList<string> Names { get; } = ["join", "subscribe"];

    public string Description => "subscribe the address this message comes from (join address=ADDRESS: that address, once it confirms)";

    public CommandOutcome Execute(RequestContext request, IReadOnlyList<string> arguments)
        => Arguments.JoinAddress(request, arguments, out var address) ?? requests.RequestJoin(request, address);
}
