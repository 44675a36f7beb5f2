// What a moderation rule sees of one post: the post and its list, the list database opened once
// for the whole chain, the post's authors and their member records (looked up once, shared by
// every rule that asks).
using Mailman.Lists;
using Mailman.Pipeline;
using Mailman.Queues;
using MimeKit;

namespace Mailman.Moderation;

public sealed class ModerationContext(PostContext post, ListStore store)
{
    private Senders? _senders;
    private IReadOnlyList<MemberRecord>? _members;
    private bool _membersLooked;

    public PostContext Post { get; } = post;

    public MailingList List => Post.List;

    public MimeMessage Message => Post.Message;

    public EntryMetadata Metadata => Post.Metadata;

    /// <summary>The list database, one connection for the whole chain.</summary>
    public ListStore Store { get; } = store;

    /// <summary>A moderator approved this post: only the rules that run for approved posts apply.</summary>
    public bool Approved => Post.Metadata.Approved;

    /// <summary>Set by a rule that changed the message (a password stripped): the runner writes it anew.</summary>
    public bool Modified { get; set; }

    public Senders Senders => _senders ??= Senders.Of(Message, Metadata.Sender);

    /// <summary>
    /// The member records of every author, or null when the post is not a member's: no author, too
    /// many authors, or one author who is not a member.
    /// </summary>
    public IReadOnlyList<MemberRecord>? SenderMembers
    {
        get
        {
            if (_membersLooked)
            {
                return _members;
            }

            _membersLooked = true;
            if (Senders.Total == 0 || Senders.TooMany)
            {
                return null;
            }

            var records = new List<MemberRecord>(Senders.Addresses.Count);
            foreach (var address in Senders.Addresses)
            {
                if (Store.FindMember(List.Name, address) is not { } record)
                {
                    return null;
                }

                records.Add(record);
            }

            return _members = records;
        }
    }
}
