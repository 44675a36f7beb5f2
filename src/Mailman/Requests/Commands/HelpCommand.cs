// help: answers with the list's help text (template list:user:notice:help), inside the results
// reply when other commands of the same mail need one, rather than as a reply of its own beside
// it (review 73).
namespace Mailman.Requests.Commands;

public sealed class HelpCommand : IRequestCommand
{
    public IReadOnlyList<string> Names { get; } = ["help"];

    public string Description => "send the list of commands";

    public CommandOutcome Execute(RequestContext request, IReadOnlyList<string> arguments)
        => new("the list's help text is sent", NeedsReply: false, WantsHelp: true);
}
