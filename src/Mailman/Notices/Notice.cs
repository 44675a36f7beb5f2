// What a runner asks the notice sender for: which text, to whom, in answer to what.
using Mailman.Delivery;
using Mailman.Lists;
using MimeKit;

namespace Mailman.Notices;

public enum NoticeKind
{
    /// <summary>An answer to a message (RFC 3834 auto-replied): the answered message's rules and the daily limit apply.</summary>
    Reply,

    /// <summary>Mail the server starts itself (RFC 3834 auto-generated): bounce warnings, owner and moderator notices.</summary>
    Generated,
}

/// <summary>One automatic message to one address.</summary>
public sealed record Notice(MailingList List, string Template, string To)
{
    public string ToName { get; init; } = "";

    public NoticeKind Kind { get; init; } = NoticeKind.Generated;

    /// <summary>The From: address; default the list's -request address.</summary>
    public string? From { get; init; }

    public string? ReplyTo { get; init; }

    /// <summary>The envelope sender; default the list's VERP address for the recipient (a probe has its own one-time address).</summary>
    public string? EnvelopeSender { get; init; }

    /// <summary>
    /// The recipient is a member the list delivers every post to (a bounce probe): a robot-like
    /// name (postmaster@, sys-admin@) is no reason to refuse, it gets the posts already. The
    /// null sender and the addresses of lists still are.
    /// </summary>
    public bool ToMember { get; init; }

    /// <summary>The message this notice answers (Reply): In-Reply-To, References, and the never-answer rules.</summary>
    public MimeMessage? Answering { get; init; }

    /// <summary>The envelope sender of <see cref="Answering"/> as the MTA gave it (null: unknown).</summary>
    public string? AnsweringSender { get; init; }

    /// <summary>Values for the template's placeholders besides the list's and the recipient's.</summary>
    public IReadOnlyDictionary<string, string> Values { get; init; } = new Dictionary<string, string>();

    /// <summary>Attached after the text (a held post as message/rfc822, say).</summary>
    public MimeEntity? Attachment { get; init; }
}

/// <summary>What became of a notice: queued as an out entry, or not sent and why.</summary>
public sealed record NoticeResult(string? Entry, string? NotSentBecause)
{
    public bool Queued => Entry is not null;
}

/// <summary>What a notice attaches in place of a message too large to attach whole.</summary>
public static class NoticeAttachments
{
    /// <summary>The message's header block as text/rfc822-headers (RFC 6522), inline.</summary>
    public static MimePart HeadersOf(MimeMessage message)
    {
        using var headers = new MemoryStream();
        message.Headers.WriteTo(WireFormat.Options, headers);
        return new MimePart("text", "rfc822-headers")
        {
            Content = new MimeContent(new MemoryStream(headers.ToArray())),
            ContentDisposition = new ContentDisposition(ContentDisposition.Inline),
        };
    }
}
