// What the request runner asks for each mail to a list's -request, -join, -leave, -subscribe,
// -unsubscribe or -confirm+TOKEN address: who sent it (From:), which commands it holds, and the
// one results reply when something needs telling. Mail that is itself automatic, from a list, from
// the null sender or a robot is never acted on and never answered (RFC 3834): an auto-responder
// cannot confirm a subscription, and no request can start a mail loop. One log line per request.
using Mailman.Lists;
using Mailman.Notices;
using Mailman.Queues;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Requests;

public sealed class RequestProcessor(ListStoreFactory lists, NoticeSender notices, IEnumerable<IRequestCommand> commands, TimeProvider time, ILogger<RequestProcessor> logger)
{
    /// <summary>Consecutive lines that are not commands after which the rest is taken for prose.</summary>
    public const int MaxUnknownLines = 3;

    private static readonly HashSet<string> ModeratorWords = new(StringComparer.OrdinalIgnoreCase) { "approve", "accept", "reject", "deny", "discard", "cancel" };

    private readonly Dictionary<string, IRequestCommand> _commands = commands
        .SelectMany(c => c.Names.Select(n => (Name: n, Command: c)))
        .ToDictionary(x => x.Name, x => x.Command, StringComparer.Ordinal);

    /// <summary>Processes one request entry.</summary>
    /// <exception cref="InvalidOperationException">The entry names no existing list (the runner shunts it).</exception>
    /// <exception cref="IOException">A notice could not be queued (the runner shunts it; nothing is lost).</exception>
    public void Process(string entryName, EntryMetadata metadata, byte[] raw)
    {
        using var stream = new MemoryStream(raw, writable: false);
        Process(entryName, metadata, stream);
    }

    /// <summary>Processes one request entry whose message is read from <paramref name="raw"/> as needed (it stays open until this returns).</summary>
    /// <exception cref="InvalidOperationException">The entry names no existing list (the runner shunts it).</exception>
    /// <exception cref="IOException">A notice could not be queued (the runner shunts it; nothing is lost).</exception>
    public void Process(string entryName, EntryMetadata metadata, Stream raw)
    {
        var name = ListName.TryParse(metadata.List, out var parsed, out var error) ? parsed : throw new InvalidOperationException($"the entry names an invalid list: {error}");
        var list = lists.FindList(name) ?? throw new NoSuchListException($"no such list: {metadata.List}");
        ExpireRequests();

        var destination = metadata.Destination ?? list.Name.RequestAddress;
        var address = ListAddress.TryResolve(destination, out var resolved, out _) && resolved.List == list.Name ? resolved : new ListAddress(list.Name, QueueSet.Request) { Suffix = "-request" };
        // Tokens stay out of the logs: a confirmation address is logged without its +TOKEN.
        var to = address.Suffix == ListAddress.Confirm && address.Extension is not null ? $"{list.Name.LocalPart}{ListAddress.Confirm}+(token)@{list.Name.Domain}" : Member.Sanitize(destination);
        // Persistent: the parts' contents stay in the file until a command reads them.
        var message = MimeMessage.Load(raw, persistent: true);

        if (WhyIgnore(list, message, metadata.Sender) is { } why)
        {
            logger.LogInformation("Request {QueueEntry} to {Address} ignored, no reply: {Reason}", entryName, to, why);
            return;
        }

        var from = message.From.Mailboxes.First();
        var request = new RequestContext
        {
            List = list,
            Message = message,
            TriggerEntry = entryName,
            Sender = from.Address.Trim(),
            SenderName = Member.Sanitize(from.Name ?? ""),
            EnvelopeSender = metadata.Sender,
            ModeratorCommand = address.Suffix == ListAddress.Confirm ? ModeratorCommand(message) : null,
        };

        var lines = address.Suffix switch
        {
            _ when address.Command is { } command => [new CommandLine(command, false)],
            ListAddress.Confirm => [new CommandLine("confirm " + (address.Extension ?? ConfirmTokenInSubject(message) ?? ""), false)],
            _ => CommandParser.Read(message),
        };
        var outcomes = Run(request, lines);
        logger.LogInformation("Request {QueueEntry} to {Address} from {Sender}: {Results}", entryName, to, request.Sender,
            string.Join("; ", outcomes.Select(o => $"{Shown(o.Line)}: {o.Outcome.Result}")));

        var help = outcomes.Any(o => o.Outcome.WantsHelp);
        if (outcomes.Any(o => o.Outcome.NeedsReply))
        {
            var text = string.Join("\n\n", outcomes.Where(o => o.Outcome.Result.Length > 0).Select(o => $"> {Member.Sanitize(o.Line.Text)}\n{o.Outcome.Result}"))
                + (help ? "\n\n" + notices.Build(HelpFor(request)).TextBody?.TrimEnd()
                    : "\n\nSend a message with \"help\" in the subject to " + list.Name.RequestAddress + " for the commands.");
            notices.Send(new Notice(list, NoticeTemplates.Results, request.Sender)
            {
                ToName = request.SenderName,
                Kind = NoticeKind.Reply,
                Answering = message,
                AnsweringSender = metadata.Sender,
                Values = new Dictionary<string, string> { ["reason"] = text },
                UsedToken = outcomes.Any(o => o.Outcome.UsedToken),
            }, entryName, "results");
        }
        else if (help)
        {
            notices.Send(HelpFor(request), entryName, "help");
        }
    }

    private static Notice HelpFor(RequestContext request) => new(request.List, NoticeTemplates.Help, request.Sender)
    {
        ToName = request.SenderName,
        Kind = NoticeKind.Reply,
        Answering = request.Message,
        AnsweringSender = request.EnvelopeSender,
    };

    private List<(CommandLine Line, CommandOutcome Outcome)> Run(RequestContext request, IReadOnlyList<CommandLine> lines)
    {
        var outcomes = new List<(CommandLine, CommandOutcome)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var unknown = 0;
        foreach (var line in lines)
        {
            if (line.NotRead)
            {
                outcomes.Add((line, new CommandOutcome($"the body's lines past the first {CommandParser.MaxBodyLines} were not read: send those commands in another message", NeedsReply: true)));
                break;
            }

            // The same command twice (in the subject and the body) runs once.
            if (!seen.Add(string.Join(' ', line.Words).ToLowerInvariant()))
            {
                continue;
            }

            if (!_commands.TryGetValue(line.Name, out var command))
            {
                if (line.FromSubject)
                {
                    continue; // an ordinary subject
                }

                outcomes.Add((line, new CommandOutcome("not a command", NeedsReply: true)));
                if (++unknown >= MaxUnknownLines)
                {
                    outcomes.Add((new CommandLine("...", false), new CommandOutcome("the rest of the message was ignored", NeedsReply: true)));
                    break;
                }

                continue;
            }

            unknown = 0;
            var outcome = command.Execute(request, line.Arguments);
            outcomes.Add((line, outcome));
            if (outcome.Stop)
            {
                break;
            }
        }

        if (outcomes.Count == 0)
        {
            outcomes.Add((new CommandLine("(nothing)", false), new CommandOutcome("no commands found", NeedsReply: true)));
        }

        return outcomes;
    }

    // A command line as logged: "confirm TOKEN" without the token.
    private static string Shown(CommandLine line) => line.Name == "confirm" ? "confirm (token)" : Member.Sanitize(line.Text);

    // Why the request is neither acted on nor answered, or null.
    private string? WhyIgnore(MailingList list, MimeMessage message, string? envelopeSender)
    {
        if (AutomaticMail.WhyNotAnswer(message, envelopeSender) is { } rule)
        {
            return rule;
        }

        var from = message.From.Mailboxes.FirstOrDefault();
        if (from is null || !IsPlainAddress(from.Address))
        {
            return "no usable From: address";
        }

        if (AutomaticMail.IsRobotAddress(from.Address))
        {
            return $"From: {Member.Sanitize(from.Address)} is a robot address";
        }

        // Every answer goes to From: (a confirmation, the results): never to a host only this
        // site can name, as join address= refuses it (review 108: a forged From: t@localhost.
        // was sent a confirmation), unless it is a member, mailed every post already (an
        // operator may add x@[192.0.2.1]: its leave is answered).
        if (!ListName.IsInternetAddress(from.Address) && !IsMember(list, from.Address))
        {
            return $"From: {Member.Sanitize(from.Address)} is not an address on the Internet";
        }

        return ListAddress.TryResolve(from.Address, out var resolved, out _) && lists.FindList(resolved.List) is not null
            ? $"From: {Member.Sanitize(from.Address)} is an address of the list {resolved.List.Fqdn}"
            : null;
    }

    private bool IsMember(MailingList list, string address)
    {
        using var store = lists.Open();
        return store.FindMember(list.Name, address) is not null;
    }

    // Expired confirmations and subscriptions awaiting a moderator go (held posts are moderation's).
    private void ExpireRequests()
    {
        using var store = lists.Open();
        foreach (var expired in store.ExpiredPending(time.GetUtcNow()))
        {
            if (expired.Kind is PendingKind.Subscribe or PendingKind.Unsubscribe or PendingKind.ModerateSubscription && store.DeletePending(expired.Id))
            {
                logger.LogInformation("Pending {Kind} of {Recipient} to {ListId} expired unconfirmed (asked {Created:u})", expired.Kind, expired.Address, expired.List.Fqdn, expired.Created);
            }
        }
    }

    // A moderator's word on the first line of the body of a reply to a confirmation.
    private static string? ModeratorCommand(MimeMessage message)
    {
        var lines = CommandParser.Read(null, CommandParser.BodyText(message));
        return lines.Count > 0 && ModeratorWords.Contains(lines[0].Name) ? lines[0].Text : null;
    }

    // "Re: confirm TOKEN" when the MTA did not keep the +TOKEN of the address.
    private static string? ConfirmTokenInSubject(MimeMessage message)
    {
        var line = new CommandLine(CommandParser.StripReplyPrefixes(message.Subject ?? ""), true);
        return line.Name == "confirm" && line.Arguments.Count == 1 ? line.Arguments[0] : null;
    }

    // A member's kind of address (Member.IsPlainAddress) without a quoted local part: mail's
    // commands take no quoting.
    internal static bool IsPlainAddress(string address)
        => Member.IsPlainAddress(address.Trim()) && !address.Contains('"', StringComparison.Ordinal);
}
