// What a command sees of the request being processed: the list, the message, who sent it, and
// the queue entry (crash-safe notice names derive from it); and what a command reports back.
using Mailman.Lists;
using MimeKit;

namespace Mailman.Requests;

/// <summary>One request mail being processed.</summary>
public sealed class RequestContext
{
    public required MailingList List { get; init; }

    public required MimeMessage Message { get; init; }

    /// <summary>The request's queue entry: notices and derived tokens are named after it.</summary>
    public required string TriggerEntry { get; init; }

    /// <summary>The From: address: every command acts for it.</summary>
    public required string Sender { get; init; }

    /// <summary>The From: display name (sanitized), for a new member.</summary>
    public string SenderName { get; init; } = "";

    /// <summary>The envelope sender as the MTA gave it (null: unknown).</summary>
    public string? EnvelopeSender { get; init; }

    /// <summary>A moderator's word in the body ("approve", "reject REASON", "discard"), for confirmations.</summary>
    public string? ModeratorCommand { get; init; }
}

/// <summary>
/// What a command did, in one line for the log and the results reply. <paramref name="NeedsReply"/>:
/// the sender learns of it only from the results reply (no confirmation, welcome or help was sent).
/// <paramref name="Stop"/>: read no further commands.
/// </summary>
/// <param name="WantsHelp">The help text goes to the sender: inside the results reply when there is one, alone otherwise.</param>
/// <param name="UsedToken">The command used a live confirmation token, did what it asked, and its sender is whom the token was mailed to (the results reply is not counted toward the daily limit: <see cref="Notices.Notice.UsedToken"/>).</param>
public sealed record CommandOutcome(string Result, bool NeedsReply, bool Stop = false, bool WantsHelp = false, bool UsedToken = false);

/// <summary>One mail command (Mailman's IEmailCommand): join, leave, help, confirm, end.</summary>
public interface IRequestCommand
{
    /// <summary>The command word and its aliases, lower case; the first is the one help shows.</summary>
    IReadOnlyList<string> Names { get; }

    string Description { get; }

    /// <exception cref="IOException">A notice could not be queued (the request stays claimed and is retried).</exception>
    CommandOutcome Execute(RequestContext request, IReadOnlyList<string> arguments);
}
