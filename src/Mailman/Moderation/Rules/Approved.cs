// approved: a post carrying the list's moderator password (Approved: header or first body line)
// is accepted without the remaining rules; a wrong one holds it. Either way the password is
// removed from the post, also for posts a moderator approved by other means.
using Mailman.Lists;

namespace Mailman.Moderation.Rules;

public sealed class Approved : IRule
{
    /// <summary>The hold reason of a post that shows the right password where it cannot be removed: such a post cannot be approved.</summary>
    public const string ShowsPassword = "the post carries the moderator password, and shows it where it cannot be removed";

    // The reason held with it, one text wherever the password is found.
    private const string ShowsPasswordHold = ShowsPassword + " (it cannot be approved: reject or discard it, and the poster may send it again without)";

    /// <summary>The hold reason of a post whose Approved: line with the right password was not read as its first line: removed, the post may be approved.</summary>
    public const string NotFirstLine = "the post carries the moderator password in an Approved: line not read as its first (text a mail client hides, or markup, came before it); it is removed from the post: approve it if it was meant";

    public string Name => "approved";

    public string Description => "accept posts carrying the moderator password in Approved:, hold those with a wrong one; strip it everywhere";

    public bool SkippedWhenApproved => false;

    public RuleResult Check(ModerationContext context)
    {
        var password = ApprovedPassword.Take(context.Message, out var modified);
        context.Modified |= modified;
        var hash = context.List.ModeratorPasswordHash;
        var right = password is not null && hash.Length > 0 && PasswordHash.Verify(password, hash);

        // The password where Take did not find it (review 134: behind text a mail client hides,
        // it went to every member; run into the next line, it was held as a wrong one and
        // approved with the right one): removed, and the post held, approved or not, unless
        // it is already approved and nothing of it remains.
        if (!right && hash.Length > 0 && ApprovedPassword.Shown(context.Message, c => PasswordHash.Verify(c, hash), out var stripped, taken: password) is { } shown)
        {
            context.Modified |= stripped;
            return ApprovedPassword.Remains(context.Message, shown)
                ? RuleResult.Hold(ShowsPasswordHold)
                : context.Approved ? RuleResult.Miss
                : RuleResult.Hold(NotFirstLine);
        }

        if (password is null || context.Approved)
        {
            return RuleResult.Miss;
        }

        if (right)
        {
            return ApprovedPassword.Remains(context.Message, password)
                ? RuleResult.Hold(ShowsPasswordHold)
                : RuleResult.Accept("the post carries the moderator password");
        }

        return RuleResult.Hold(hash.Length > 0 ? "the Approved: password does not match the moderator password" : "an Approved: password, but the list has no moderator password");
    }
}
