// implicit-dest: with require_explicit_destination on, a post that names the list in neither To:
// nor Cc: (nor their Resent- forms), nor one of the list's acceptable_aliases, is held: it came
// by Bcc or an alias, as spam often does.
using MimeKit;

namespace Mailman.Moderation.Rules;

public sealed class ImplicitDestination : IRule
{
    // Recipients looked at: the list is named near the start of any honest header.
    private const int MaxAddresses = 1000;

    public string Name => "implicit-dest";

    public string Description => "hold posts that do not name the list in To: or Cc: (require_explicit_destination)";

    public bool SkippedWhenApproved => true;

    public RuleResult Check(ModerationContext context)
    {
        var list = context.List;
        if (!list.RequireExplicitDestination)
        {
            return RuleResult.Miss;
        }

        var message = context.Message;
        var aliases = list.AcceptableAliases.Where(a => !a.StartsWith('^')).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var patterns = list.AcceptableAliases.Where(a => a.StartsWith('^')).Select(Lists.MailingList.BoundedRegex).ToList();
        var addresses = message.To.Mailboxes.Concat(message.Cc.Mailboxes).Concat(message.ResentTo.Mailboxes).Concat(message.ResentCc.Mailboxes)
            .Select(m => m.Address).Take(MaxAddresses);
        foreach (var address in addresses)
        {
            if (address.Equals(list.Name.Fqdn, StringComparison.OrdinalIgnoreCase) || aliases.Contains(address) || patterns.Any(p => p.IsMatch(address)))
            {
                return RuleResult.Miss;
            }
        }

        return RuleResult.Hold($"the post does not name {list.Name.Fqdn} in To: or Cc: (require_explicit_destination)");
    }
}
