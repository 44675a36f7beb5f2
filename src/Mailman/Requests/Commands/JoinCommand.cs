// join (subscribe): the sender asks to become a member, under the list's subscription policy.
// It acts only for the From: address; "join someone@else" is refused.
namespace Mailman.Requests.Commands;

public sealed class JoinCommand(SubscriptionRequests requests) : IRequestCommand
{
    public IReadOnlyList<string> Names { get; } = ["join", "subscribe"];

    public string Description => "subscribe the address this message comes from";

    public CommandOutcome Execute(RequestContext request, IReadOnlyList<string> arguments)
        => Arguments.Refusal("join", request, arguments) ?? requests.RequestJoin(request);
}
