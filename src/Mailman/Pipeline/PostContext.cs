// What a handler sees of one post: the list, the parsed message, and the entry metadata.
using Mailman.Lists;
using Mailman.Queues;
using MimeKit;

namespace Mailman.Pipeline;

/// <summary>The post being processed and the list it was sent to.</summary>
public sealed class PostContext
{
    public PostContext(MailingList list, MimeMessage message, EntryMetadata metadata, long rawSize)
    {
        List = list;
        Message = message;
        Metadata = metadata;
        RawSize = rawSize;
    }

    public MailingList List { get; }

    public MimeMessage Message { get; }

    public EntryMetadata Metadata { get; }

    /// <summary>Size of the message as received, in bytes.</summary>
    public long RawSize { get; }

    /// <summary>Opens the message as received, when the runner has it (wrap_message attaches it unchanged).</summary>
    public Func<Stream>? OpenOriginal { get; init; }

    /// <summary>Set by the personalize handler: the random token that marks per-recipient slots.</summary>
    public string? SlotNonce { get; set; }

    /// <summary>Set by the personalize handler when List-Unsubscribe carries a per-recipient one-click link.</summary>
    public bool OneClick { get; set; }

    /// <summary>Set by the recipients handler: streams the recipients of this post.</summary>
    public Func<IEnumerable<Recipient>>? Recipients { get; set; }
}
