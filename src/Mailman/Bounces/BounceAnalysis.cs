// What a message returned to a list's -bounces address turned out to be: the result of
// BounceClassifier. Plain data: the runner decides what to score and what to log.
namespace Mailman.Bounces;

/// <summary>What kind of message a bounce-address message is.</summary>
public enum BounceKind
{
    /// <summary>A fatal delivery failure: the named addresses may be scored.</summary>
    Permanent,

    /// <summary>A delay or "will retry" notice: recognised, never scored.</summary>
    Temporary,

    /// <summary>Recognised as something else: an RFC 3834 auto-reply, an RFC 5965 (ARF)
    /// complaint, a DSN that only reports delivered/relayed/expanded.</summary>
    NotABounce,

    /// <summary>Looks like nothing we know.</summary>
    Unrecognized,
}

/// <summary>One address a bounce names, as written in the report.</summary>
/// <param name="Address">Without <c>&lt;&gt;</c>, <c>rfc822;</c> or quotes; case as written.</param>
/// <param name="Status">The RFC 3463 status code (<c>5.1.1</c>) where the format gives one.</param>
/// <param name="Diagnostic">The remote server's diagnostic (<c>smtp; 550 5.1.1 ...</c>) where given.</param>
public sealed record BouncedAddress(string Address, string? Status = null, string? Diagnostic = null);

/// <summary>An RFC 5965 feedback report (a recipient complained about a post).</summary>
/// <param name="FeedbackType">The report's <c>Feedback-Type</c> (<c>abuse</c>, <c>fraud</c>, ...), if given.</param>
/// <param name="OriginalRecipients">Who complained: <c>Original-Rcpt-To</c>, else the attached original's <c>To:</c>.</param>
public sealed record Complaint(string? FeedbackType, IReadOnlyList<string> OriginalRecipients);

/// <summary>The classifier's answer for one message.</summary>
/// <param name="Kind">What the message is.</param>
/// <param name="Addresses">For permanent and temporary: the addresses named, deduplicated
/// case-insensitively, in the order the report gives them. Empty otherwise.</param>
/// <param name="Detector">The detector that recognised it (<c>DSN</c>, <c>Qmail</c>, ...); null when unrecognized.</param>
/// <param name="Complaint">For an ARF report: the complaint.</param>
public sealed record BounceAnalysis(BounceKind Kind, IReadOnlyList<BouncedAddress> Addresses, string? Detector, Complaint? Complaint = null)
{
    public static readonly BounceAnalysis Unrecognized = new(BounceKind.Unrecognized, [], null);

    /// <summary>The kind as the CLI and logs spell it: <c>permanent</c>, <c>temporary</c>, <c>not-a-bounce</c>, <c>unrecognized</c>.</summary>
    public string KindName => Name(Kind);

    public static string Name(BounceKind kind) => kind switch
    {
        BounceKind.Permanent => "permanent",
        BounceKind.Temporary => "temporary",
        BounceKind.NotABounce => "not-a-bounce",
        _ => "unrecognized",
    };
}
