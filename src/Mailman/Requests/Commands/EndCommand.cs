// end (stop): no more commands in this message (Mailman's end).
namespace Mailman.Requests.Commands;

public sealed class EndCommand : IRequestCommand
{
    public IReadOnlyList<string> Names { get; } = ["end", "stop"];

    public string Description => "stop reading commands here";

    public CommandOutcome Execute(RequestContext request, IReadOnlyList<string> arguments) => new("", NeedsReply: false, Stop: true);
}
