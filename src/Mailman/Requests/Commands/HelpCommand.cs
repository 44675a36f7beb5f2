// help: answers with the list's help text (template list:user:notice:help).
using Mailman.Notices;

namespace Mailman.Requests.Commands;

public sealed class HelpCommand(NoticeSender notices) : IRequestCommand
{
    public IReadOnlyList<string> Names { get; } = ["help"];

    public string Description => "send the list of commands";

    public CommandOutcome Execute(RequestContext request, IReadOnlyList<string> arguments)
    {
        var result = notices.Send(new Notice(request.List, NoticeTemplates.Help, request.Sender)
        {
            ToName = request.SenderName,
            Kind = NoticeKind.Reply,
            Answering = request.Message,
            AnsweringSender = request.EnvelopeSender,
        }, request.TriggerEntry, "help");
        return new CommandOutcome(result.Queued ? "help sent" : "no help sent: " + result.NotSentBecause, NeedsReply: false);
    }
}
