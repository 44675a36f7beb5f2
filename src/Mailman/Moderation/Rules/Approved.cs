// approved: a post carrying the list's moderator password (Approved: header or first body line)
// is accepted without the remaining rules; a wrong one holds it. Either way the password is
// removed from the post, also for posts a moderator approved by other means.
using Mailman.Lists;

namespace Mailman.Moderation.Rules;

public sealed class Approved : IRule
{
    /// <summary>The hold reason of a post that shows the right password where it cannot be removed: such a post cannot be approved.</summary>
    public const string ShowsPassword = "the post carries the moderator password, and shows it where it cannot be removed";

    public string Name => "approved";

    public string Description => "accept posts carrying the moderator password in Approved:, hold those with a wrong one; strip it everywhere";

    public bool SkippedWhenApproved => false;

    public RuleResult Check(ModerationContext context)
    {
        var password = ApprovedPassword.Take(context.Message, out var modified);
        context.Modified |= modified;
        if (password is null || context.Approved)
        {
            return RuleResult.Miss;
        }

        var hash = context.List.ModeratorPasswordHash;
        if (hash.Length > 0 && PasswordHash.Verify(password, hash))
        {
            return ApprovedPassword.Remains(context.Message, password)
                ? RuleResult.Hold(ShowsPassword + " (it cannot be approved: reject or discard it, and the poster may send it again without)")
                : RuleResult.Accept("the post carries the moderator password");
        }

        return RuleResult.Hold(hash.Length > 0 ? "the Approved: password does not match the moderator password" : "an Approved: password, but the list has no moderator password");
    }
}
