// posting-rate: a member's posts past the list's max_posts_per_hour within an hour are held. A
// member's auto-responder that marks nothing (no Auto-Submitted, no Precedence) and answers
// every copy to the list (Reply-To: the list) posts each answer as the member, and each goes to
// it again: a loop no header shows, and two such members double it each round (review 100:
// 674 posts in two minutes). The rate sees it; a held post goes to nobody, so the loop stops
// there and a moderator decides. A non-member's posts count too where the list accepts them
// (nonmember_action accept): an away-message program answering from an address that is not a
// member looped past every rule (review 105: 66 rounds a minute); where it does not, the
// nonmember_action decides (a hold here would hold the spam the list discards). Counted in
// memory by the post's arrival: a restart starts the count again.
using Mailman.Lists;

namespace Mailman.Moderation.Rules;

/// <param name="tracked">Past this many posters the ones with no post in the window are forgotten (once a minute); past ten times it, those with one post.</param>
public sealed class PostingRate(int tracked = 10_000) : IRule
{
    private static readonly TimeSpan Window = TimeSpan.FromHours(1);

    private readonly Lock _gate = new();
    private readonly Dictionary<(string List, string Address), List<DateTimeOffset>> _posts = [];
    private DateTimeOffset _pruned;

    /// <summary>Posters counted now (for tests).</summary>
    internal int Posters
    {
        get
        {
            lock (_gate)
            {
                return _posts.Count;
            }
        }
    }

    public string Name => "posting-rate";

    public string Description => "hold a member's posts past max_posts_per_hour within an hour (an auto-responder answering every copy); a non-member's where the list accepts them";

    public bool SkippedWhenApproved => true;

    public RuleResult Check(ModerationContext context)
    {
        var limit = context.List.MaxPostsPerHour;
        if (limit <= 0)
        {
            return RuleResult.Miss;
        }

        var members = context.SenderMembers;
        IEnumerable<string> authors;
        if (members is not null)
        {
            authors = members.Select(m => m.Address);
        }
        else if (context.List.NonMemberAction == NonMemberAction.Accept && context.Senders is { Total: > 0 } senders)
        {
            // Of more than Senders.Limit authors, the first ones (review 106: From: with 11
            // addresses was counted nowhere).
            authors = senders.Addresses;
        }
        else
        {
            return RuleResult.Miss;
        }

        var at = context.Metadata.Received;
        (string Who, int Count)? over = null;
        lock (_gate)
        {
            // At most once a minute: past `tracked` posters a scan per post would cost O(n) each
            // (review 101).
            if (_posts.Count > tracked && (at - _pruned).Duration() >= TimeSpan.FromMinutes(1))
            {
                _pruned = at;
                foreach (var stale in _posts.Where(p => p.Value.TrueForAll(t => t <= at - Window)).Select(p => p.Key).ToList())
                {
                    _posts.Remove(stale);
                }

                // Non-members counted, a flood from as many addresses within the hour would grow
                // this without end: past ten times `tracked`, the posters with one post go (a loop
                // posts again within minutes, and is counted from there).
                if (_posts.Count > 10 * tracked)
                {
                    foreach (var once in _posts.Where(p => p.Value.Count <= 1).Select(p => p.Key).ToList())
                    {
                        _posts.Remove(once);
                    }
                }
            }

            foreach (var author in authors)
            {
                // One mailbox however it is spelled, as the daily reply limit counts it: a
                // responder answering from user+TICKET@ is one poster (review 106).
                var key = (context.List.Name.Fqdn, ListStore.MailboxKey(author));
                if (!_posts.TryGetValue(key, out var times))
                {
                    _posts[key] = times = [];
                }

                times.RemoveAll(t => t <= at - Window);
                times.Add(at);
                if (times.Count > limit && (over is null || times.Count > over.Value.Count))
                {
                    over = (author, times.Count);
                }
            }
        }

        return over is { } o
            ? RuleResult.Hold($"post {o.Count} from {(members is null ? "non-member" : "member")} {o.Who} within an hour, past max_posts_per_hour {limit} (an auto-responder answering every copy?)")
            : RuleResult.Miss;
    }
}
