// join and leave take no arguments: a command acts for the address in From:, never for one
// written in the mail (Mailman's address= form may come later; the help text says so).
namespace Mailman.Requests.Commands;

internal static class Arguments
{
    /// <summary>Why <paramref name="arguments"/> are refused, or null when there are none.</summary>
    public static CommandOutcome? Refusal(string command, RequestContext request, IReadOnlyList<string> arguments)
    {
        if (arguments.Count == 0)
        {
            return null;
        }

        return arguments.Any(a => a.Contains('@', StringComparison.Ordinal) || a.StartsWith("address=", StringComparison.OrdinalIgnoreCase))
            ? new CommandOutcome($"refused: {command} acts only for the address this message comes from ({request.Sender}); naming another address (address=) is not supported", NeedsReply: true)
            : new CommandOutcome($"refused: {command} takes no options here", NeedsReply: true);
    }
}
