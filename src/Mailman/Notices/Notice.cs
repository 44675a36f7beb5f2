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

    /// <summary>
    /// The address that asked for this reply to go to <see cref="To"/>, another address (join
    /// address=): the reply counts toward its daily limit too, and toward the list's daily limit
    /// of replies asked for others (<see cref="NoticeSender.AskedForOthersFactor"/> times the
    /// per-address one), so no requester, nor a forger changing From: at each request, makes the
    /// list mail strangers without bound (review 110).
    /// </summary>
    public string? AskedBy { get; init; }

    /// <summary>
    /// The reply answers a message that used a live confirmation token of the list (a
    /// moderator's decision on a held post or a subscription, a confirmed request) and goes to
    /// whom the token was mailed (Confirmations.TokenWentTo): it is not counted toward the daily
    /// limit, nor refused by it. A token is used once, and its results go nowhere else free, so
    /// neither a forger nor a loop gets more than one such reply a token (a moderator deciding
    /// thirty held posts by mail heard nothing past the tenth). The never-answer rules still
    /// apply.
    /// </summary>
    public bool UsedToken { get; init; }

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

/// <summary>What a notice attaches of a post: the post, or its header block in place of one too large to attach whole.</summary>
public static class NoticeAttachments
{
    /// <summary>Posts larger than this are attached as their headers only (text/rfc822-headers).</summary>
    public const int AttachmentLimit = 2 * 1024 * 1024;

    // RFC 5322 2.1.1: no line of a message over 998 characters.
    private const int MaxLine = 998;

    /// <summary>
    /// <paramref name="post"/> as message/rfc822, or its header block when it is over
    /// <see cref="AttachmentLimit"/> (<paramref name="size"/>: its bytes as received), has no
    /// body, or has a line no relay need take (review 69: a 1.3 MB Subject went to the
    /// moderators as one line; review 75: a body line too, and a line of 999 with LF ends).
    /// </summary>
    public static MimeEntity Post(MimeMessage post, long size)
    {
        if (size > AttachmentLimit || post.Body is null)
        {
            return HeadersOf(post);
        }

        // A binary part or a long body line is re-encoded as delivery does (review 79: they went
        // to the moderators as they came); a header line too long stays a reason for the headers.
        WireFormat.MakeTransportable(post);
        return HasOverlongLine(post) ? HeadersOf(post) : WireFormat.Attached(post);
    }

    /// <summary>The message's header block as text/rfc822-headers (RFC 6522), inline; a line over 998 bytes is cut, and says so.</summary>
    public static MimePart HeadersOf(MimeMessage message)
    {
        using var headers = new MemoryStream();
        message.Headers.WriteTo(WireFormat.Options, headers);
        return new MimePart("text", "rfc822-headers")
        {
            Content = new MimeContent(new MemoryStream(CutLongLines(headers.GetBuffer().AsSpan(0, (int)headers.Length)))),
            ContentDisposition = new ContentDisposition(ContentDisposition.Inline),
        };
    }

    // The post as it would be attached: a line longer than 998 bytes, its CR aside?
    private static bool HasOverlongLine(MimeMessage post)
    {
        using var written = new MemoryStream();
        post.WriteTo(WireFormat.Options, written);
        foreach (var range in written.GetBuffer().AsSpan(0, (int)written.Length).Split((byte)'\n'))
        {
            var line = written.GetBuffer().AsSpan(0, (int)written.Length)[range];
            if (line.Length > MaxLine && (line.Length > MaxLine + 1 || line[^1] != (byte)'\r'))
            {
                return true;
            }
        }

        return false;
    }

    private static byte[] CutLongLines(ReadOnlySpan<byte> block)
    {
        var marker = " [cut: the line was longer than 998 characters]"u8;
        var output = new List<byte>(block.Length);
        while (block.Length > 0)
        {
            var end = block.IndexOf((byte)'\n');
            var line = end < 0 ? block : block[..end];
            var content = line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line;
            if (content.Length > MaxLine)
            {
                // Cut where no UTF-8 sequence is split.
                var keep = MaxLine - marker.Length;
                while (keep > 0 && (content[keep] & 0xC0) == 0x80)
                {
                    keep--;
                }

                output.AddRange(content[..keep]);
                output.AddRange(marker);
                output.AddRange(line[content.Length..]);
            }
            else
            {
                output.AddRange(line);
            }

            if (end < 0)
            {
                break;
            }

            output.Add((byte)'\n');
            block = block[(end + 1)..];
        }

        return [.. output];
    }
}
