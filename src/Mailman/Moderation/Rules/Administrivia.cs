// administrivia: a post that looks like a command meant for LIST-request (its Subject, or one of
// the first lines of its text, is "subscribe", "unsubscribe", "help", ... with no more words
// than the command takes) is held rather than sent to every member, as Mailman 3 does.
using MimeKit;

namespace Mailman.Moderation.Rules;

public sealed class Administrivia : IRule
{
    // Mailman 3's email_commands_max_lines.
    private const int MaxLines = 10;

    // Command → the most arguments it takes (Mailman 3's email commands).
    private static readonly Dictionary<string, int> Commands = new(StringComparer.OrdinalIgnoreCase)
    {
        ["subscribe"] = 2, ["unsubscribe"] = 1, ["join"] = 2, ["leave"] = 1, ["remove"] = 1, ["help"] = 0,
        ["confirm"] = 1, ["who"] = 2, ["info"] = 0, ["lists"] = 0, ["set"] = 3, ["end"] = 0,
    };

    public string Name => "administrivia";

    public string Description => "hold posts that look like commands for LIST-request (subscribe, unsubscribe, help, ...)";

    public bool SkippedWhenApproved => true;

    public RuleResult Check(ModerationContext context)
    {
        if (!context.List.Administrivia)
        {
            return RuleResult.Miss;
        }

        if (Command(context.Message.Subject) is { } subject)
        {
            return RuleResult.Hold($"the Subject is the command '{subject}' (send commands to {context.List.Name.RequestAddress})");
        }

        var body = context.Message.BodyParts.OfType<TextPart>().FirstOrDefault(p => p.IsPlain && !p.IsAttachment);
        if (body is null)
        {
            return RuleResult.Miss;
        }

        var lines = 0;
        foreach (var line in Lines(TextStart.Of(body)))
        {
            if (line.Length == 0)
            {
                continue;
            }

            if (++lines > MaxLines)
            {
                break;
            }

            if (Command(line) is { } command)
            {
                return RuleResult.Hold($"the body starts with the command '{command}' (send commands to {context.List.Name.RequestAddress})");
            }
        }

        return RuleResult.Miss;
    }

    private static string? Command(string? line)
    {
        if (line is null)
        {
            return null;
        }

        var words = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return words.Length > 0 && Commands.TryGetValue(words[0], out var maxArgs) && words.Length - 1 <= maxArgs
            ? words[0].ToLowerInvariant()
            : null;
    }

    // The first lines only: a long body is never split whole.
    private static IEnumerable<string> Lines(string text)
    {
        var start = 0;
        for (var n = 0; n < MaxLines * 4 && start < text.Length; n++)
        {
            var end = text.IndexOf('\n', start);
            if (end < 0)
            {
                end = text.Length;
            }

            yield return text[start..end].Trim();
            start = end + 1;
        }
    }
}
