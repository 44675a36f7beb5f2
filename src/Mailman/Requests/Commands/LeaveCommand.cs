// leave (unsubscribe): the sender asks to stop being a member, under the list's unsubscription
// policy. It acts only for the From: address; "leave someone@else" is refused.
namespace Mailman.Requests.Commands;

public sealed class LeaveCommand(SubscriptionRequests requests) : IRequestCommand
{
    public IReadOnlyList<string> Names { get; } = ["leave", "unsubscribe"];

    public string Description => "unsubscribe the address this message comes from";

    public CommandOutcome Execute(RequestContext request, IReadOnlyList<string> arguments)
        => Arguments.Refusal("leave", request, arguments) ?? requests.RequestLeave(request);
}
