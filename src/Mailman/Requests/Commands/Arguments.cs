// What join and leave accept after the command word. A command acts for the address in From:;
// join also takes Mailman 3's address=ADDRESS, whose confirmation goes to that address (never to
// the sender), so it subscribes nobody who did not confirm. leave takes nothing: naming another
// address there is refused.
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
            ? new CommandOutcome($"refused: {command} acts only for the address this message comes from ({request.Sender}); naming another address is not supported", NeedsReply: true)
            : new CommandOutcome($"refused: {command} takes no options here", NeedsReply: true);
    }

    /// <summary>
    /// join's arguments: none (the sender) or one address=ADDRESS (angle brackets allowed).
    /// </summary>
    /// <returns>Why they are refused, or null with <paramref name="address"/> the address named (null: the sender).</returns>
    public static CommandOutcome? JoinAddress(RequestContext request, IReadOnlyList<string> arguments, out string? address)
    {
        address = null;
        if (arguments.Count == 0)
        {
            return null;
        }

        const string Key = "address=";
        if (arguments.Count > 1 && arguments[0].StartsWith(Key, StringComparison.OrdinalIgnoreCase) && arguments[0].Contains('"', StringComparison.Ordinal))
        {
            // Words split at blanks: address="x y"@example.com is two (review 104: it was
            // refused as "join takes one option").
            return new CommandOutcome("refused: join address=: one address, without blanks or quotes", NeedsReply: true);
        }

        if (arguments.Count > 1 || !arguments[0].StartsWith(Key, StringComparison.OrdinalIgnoreCase))
        {
            return arguments.Any(a => a.Contains('@', StringComparison.Ordinal) && !a.StartsWith(Key, StringComparison.OrdinalIgnoreCase))
                ? new CommandOutcome($"refused: join takes another address only as address=ADDRESS (join address={Named(arguments)}); without it, it acts for the address this message comes from ({request.Sender})", NeedsReply: true)
                : new CommandOutcome("refused: join takes one option, address=ADDRESS (digests are not offered here)", NeedsReply: true);
        }

        var value = arguments[0][Key.Length..];
        if (value.Length > 2 && value[0] == '<' && value[^1] == '>')
        {
            value = value[1..^1];
        }

        if (!RequestProcessor.IsPlainAddress(value))
        {
            return new CommandOutcome($"refused: join address=: '{Lists.Member.Sanitize(value.Length > 80 ? value[..80] + "..." : value)}' is not one plain address", NeedsReply: true);
        }

        // As MimeKit reads a From: address: an A-label domain (xn--) in its U-label form, as the
        // notice's check compares it (review 103: one given in A-labels was "not one address").
        var named = MimeKit.MailboxAddress.TryParse(value, out var parsed) ? parsed.Address : value;

        // A stranger's request sends the confirmation there: never to a host that only this
        // network can name (review 104: address=t@localhost and s@[127.0.0.1] were mailed), as
        // the address is read, comments gone (review 107: t@localhost(.x) was mailed).
        if (value.Contains('(', StringComparison.Ordinal) || !Lists.ListName.IsInternetAddress(named))
        {
            return new CommandOutcome($"refused: join address=: {Lists.Member.Sanitize(value)} is not an address on the Internet (its domain has no dot, is an IP address or a name that stays on a site such as .local, or it holds a comment)", NeedsReply: true);
        }

        address = named;
        return null;
    }

    // The address a mistyped "join someone@example.com" named, for the answer's example.
    private static string Named(IReadOnlyList<string> arguments)
    {
        var named = arguments.First(a => a.Contains('@', StringComparison.Ordinal));
        return RequestProcessor.IsPlainAddress(named) ? named : "ADDRESS";
    }
}
