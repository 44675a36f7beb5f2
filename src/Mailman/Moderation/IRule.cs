// One rule of the moderation chain: a small, named check that says what it found about a post
// (nothing, or accept, hold, reject, discard, with a reason). Rules decide; the chain combines
// their answers; the incoming runner moves the entry.
namespace Mailman.Moderation;

/// <summary>What a rule found (Mailman 3's rule hit and the chain it jumps to).</summary>
public enum Verdict
{
    /// <summary>The rule does not apply: go on.</summary>
    None,

    /// <summary>Accept the post now, without the remaining rules.</summary>
    Accept,

    /// <summary>Keep the post for a moderator; the remaining rules still run and add their reasons.</summary>
    Hold,

    /// <summary>Refuse the post; the poster is told why.</summary>
    Reject,

    /// <summary>Drop the post (logged).</summary>
    Discard,
}

/// <summary>A rule's answer.</summary>
public readonly record struct RuleResult(Verdict Verdict, string Reason = "")
{
    public static readonly RuleResult Miss = new(Verdict.None);

    public bool Hit => Verdict != Verdict.None;

    public static RuleResult Accept(string reason) => new(Verdict.Accept, reason);

    public static RuleResult Hold(string reason) => new(Verdict.Hold, reason);

    public static RuleResult Reject(string reason) => new(Verdict.Reject, reason);

    public static RuleResult Discard(string reason) => new(Verdict.Discard, reason);
}

/// <summary>One step of the moderation chain.</summary>
public interface IRule
{
    /// <summary>The name used in configuration (<c>Mailman:Moderation:Chain</c>) and in the held post's reasons.</summary>
    string Name { get; }

    /// <summary>One line saying what the rule checks.</summary>
    string Description { get; }

    /// <summary>
    /// False for rules that protect the list itself (loops) or clean the post (Approved:
    /// passwords): they run for a post a moderator approved too; every other rule is skipped then.
    /// </summary>
    bool SkippedWhenApproved { get; }

    /// <exception cref="Exception">Any exception shunts the post with the error beside it.</exception>
    RuleResult Check(ModerationContext context);
}
