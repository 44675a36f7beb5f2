// The metadata record of a queue entry (format version 1). Stored as one JSON line at the head
// of the entry file; see Queues/README.md for the whole layout.
using System.Text.Json.Serialization;

namespace Mailman.Queues;

/// <summary>What a runner needs to know about an entry besides the message bytes.</summary>
public sealed class EntryMetadata
{
    /// <summary>Format version of the entry file; readers refuse versions they do not know.</summary>
    public int Version { get; set; } = Switchboard.FormatVersion;

    /// <summary>The list, <c>LIST@HOST</c>.</summary>
    public string List { get; set; } = "";

    /// <summary>Envelope sender as the MTA gave it (may be empty: the null sender).</summary>
    public string? Sender { get; set; }

    /// <summary>When <c>inject</c> received the message.</summary>
    public DateTimeOffset Received { get; set; }

    public string? MessageId { get; set; }

    /// <summary>The envelope sender as a log line says it: the null sender as &lt;&gt;, not "null".</summary>
    [JsonIgnore]
    public string SenderForLog => string.IsNullOrEmpty(Sender) ? "<>" : Sender;

    /// <summary>The Message-Id as a log line says it: "(none)" when the post has none.</summary>
    [JsonIgnore]
    public string MessageIdForLog => string.IsNullOrEmpty(MessageId) ? "(none)" : MessageId;

    /// <summary>Length of the message bytes that follow the metadata line.</summary>
    public long MessageLength { get; set; }

    /// <summary>Whether recipient lines follow the message.</summary>
    public bool HasRecipients { get; set; }

    public long RecipientCount { get; set; }

    /// <summary>The per-post random token that marks per-recipient slots in the message (personalized posts).</summary>
    public string? SlotNonce { get; set; }

    public bool Personalized { get; set; }

    /// <summary>Delivery attempts made so far (retry).</summary>
    public int Attempts { get; set; }

    /// <summary>First delivery attempt, for the retry lifetime.</summary>
    public DateTimeOffset? FirstAttempt { get; set; }

    /// <summary>Retry: not to be moved back to <c>out</c> before this time.</summary>
    public DateTimeOffset? NotBefore { get; set; }

    /// <summary>Times this entry was recovered after a crash left it claimed.</summary>
    public int Recoveries { get; set; }

    /// <summary>Sent back to <c>out</c> by `queue flush`: its delivery tries relays in backoff at once.</summary>
    public bool? Flushed { get; set; }

    /// <summary>Which queue a shunted or bad entry came from.</summary>
    public string? FromQueue { get; set; }

    /// <summary>Why the entry was shunted, held or sent to bad.</summary>
    public string? Error { get; set; }

    /// <summary>Which inject address received it (post, bounces, request, ...): for a bounce, the VERP address.</summary>
    public string? Destination { get; set; }

    /// <summary>The MAIL FROM for an out entry that is not a list post (notices, forwarded owner mail); null: the list's own.</summary>
    public string? EnvelopeSender { get; set; }

    /// <summary>The entry whose work wrote this one under a derived name (a retry entry's out entry): done once this one is claimed.</summary>
    public string? Parent { get; set; }

    /// <summary>What an out entry is, when it is not a post ("notice list:user:notice:welcome", "owner forward"): for logs and `queue show`.</summary>
    public string? Purpose { get; set; }
    /// <summary>What the incoming dmarc-moderation check found for the From: domain; null when it did not look.</summary>
    public DmarcNote? Dmarc { get; set; }

    /// <summary>A held post: every moderation rule that hit, as "rule: reason", in chain order.</summary>
    public List<string>? HoldReasons { get; set; }

    /// <summary>When the post was held (max_days_to_hold counts from here).</summary>
    public DateTimeOffset? HeldAt { get; set; }

    /// <summary>A moderator approved the post: the chain skips its moderation rules (loop detection still runs).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Approved { get; set; }

    /// <summary>Who approved it (an address, or "cli:USER"), for the log.</summary>
    public string? ApprovedBy { get; set; }

    /// <summary>
    /// A moderator rejected the held post: the reason the poster is told. Marked before the
    /// poster is told, so a rejection cut short (a kill) is finished by the next action on the
    /// post, never turned into an approval.
    /// </summary>
    public string? Rejected { get; set; }

    /// <summary>Who rejected it.</summary>
    public string? RejectedBy { get; set; }

    public EntryMetadata Clone()
    {
        var copy = (EntryMetadata)MemberwiseClone();
        copy.HoldReasons = HoldReasons is null ? null : [.. HoldReasons];
        return copy;
    }
}

/// <summary>
/// What changes about an entry after it was written, kept in NAME.state beside it (entry files
/// are never rewritten): crash recoveries, and why it was set aside.
/// </summary>
public sealed class EntryState
{
    /// <summary>Recoveries in a row without the delivery checkpoint growing.</summary>
    public int Recoveries { get; set; }

    /// <summary>Length of the delivery checkpoint at the last recovery.</summary>
    public long Progress { get; set; }

    /// <summary>The queue the entry was set aside from.</summary>
    public string? FromQueue { get; set; }

    /// <summary>Why it was set aside.</summary>
    public string? Error { get; set; }
}
/// <summary>The DMARC policy found for a post, so the pipeline acts on it without a second lookup.</summary>
/// <param name="Domain">The From: domain the verdict is for.</param>
/// <param name="Policy">reject, quarantine, none, no-record, dns-error, invalid-domain, or unconditional.</param>
/// <param name="Mitigate">Whether the list's munge_from or wrap_message applies.</param>
public sealed record DmarcNote(string Domain, string Policy, bool Mitigate);

/// <summary>Source-generated serialization of the metadata line: no reflection, no JIT of serializers.</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(EntryMetadata))]
[JsonSerializable(typeof(EntryState))]
internal sealed partial class EntryMetadataJson : JsonSerializerContext;
