// max-recipients: a post naming max_num_recipients explicit recipients (To: and Cc:) or more is
// held, as in Mailman 3: a mass mailing that includes the list is seldom a post to it.
using MimeKit;

namespace Mailman.Moderation.Rules;

public sealed class MaxRecipients : IRule
{
    public string Name => "max-recipients";

    public string Description => "hold posts with max_num_recipients or more To:/Cc: recipients";

    public bool SkippedWhenApproved => true;

    public RuleResult Check(ModerationContext context)
    {
        var limit = context.List.MaxNumRecipients;
        if (limit <= 0)
        {
            return RuleResult.Miss;
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var mailbox in context.Message.To.Mailboxes.Concat(context.Message.Cc.Mailboxes))
        {
            if (seen.Add(mailbox.Address) && seen.Count >= limit)
            {
                var total = context.Message.To.Mailboxes.Concat(context.Message.Cc.Mailboxes).Count();
                return RuleResult.Hold($"{total} explicit recipients (To: and Cc:); the list holds posts with {limit} or more");
            }
        }

        return RuleResult.Miss;
    }
}
