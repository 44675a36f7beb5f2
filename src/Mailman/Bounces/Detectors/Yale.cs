// Yale's mailer-daemon: names only the user, so both yale.edu and cs.yale.edu are returned.
using System.Text.RegularExpressions;

namespace Mailman.Bounces.Detectors;

public sealed partial class Yale : IBounceDetector
{
    public string Name => "Yale";

    public string Description => "Yale's mailer-daemon (user name only: @yale.edu and @cs.yale.edu)";

    public BounceAnalysis? Detect(BounceContext message)
    {
        var from = message.From;
        var at = from.IndexOf('@', StringComparison.Ordinal);
        if (message.Message.Body is MimeKit.Multipart || at <= 0 || !from[..at].Equals("mailer-daemon", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var domain = from[(at + 1)..].ToLowerInvariant();
        if (domain != "yale.edu" && !domain.EndsWith(".yale.edu", StringComparison.Ordinal) && domain != "edu")
        {
            return null;
        }

        var names = new List<string>();
        var started = false;
        foreach (var line in message.BodyLines)
        {
            if (!started)
            {
                started = line.Contains("Message not delivered to the following", StringComparison.OrdinalIgnoreCase);
            }
            else if (line.Contains("Error Detail", StringComparison.OrdinalIgnoreCase))
            {
                break;
            }
            else if (UserName().Match(line) is { Success: true } match)
            {
                names.Add(match.Groups["name"].Value);
            }
        }

        var found = new AddressCollector();
        foreach (var name in names)
        {
            found.Add(name + "@yale.edu");
            found.Add(name + "@cs.yale.edu");
        }

        return found.Result(BounceKind.Permanent, Name);
    }

    [GeneratedRegex(@"\s+(?<name>\S+)\s", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex UserName();
}
