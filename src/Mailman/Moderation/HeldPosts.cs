// Held posts and what moderators do with them. A post is held under its own entry name in
// queues/hold, its metadata recording every rule that hit; a pending request gives it a token
// for the moderators' replies; the owners and moderators and the poster are told at once (all
// through Notices/). Approve moves it back to `in` under the same name, marked approved (the
// chain then skips its moderation rules); reject tells the poster why; discard drops it; defer
// leaves it. The `held` verbs, a moderator's reply (HeldPostConfirmation) and the expiry sweep
// all act here. Every action claims the entry first: of two moderators acting at once, or one
// acting twice, exactly one finds the post.
using System.Globalization;
using Mailman.Delivery;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Notices;
using Mailman.Queues;
using Mailman.Requests;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Mailman.Moderation;

/// <summary>A held post as `held list` shows it.</summary>
public sealed record HeldPost(string Id, string List, string From, string Subject, string? MessageId, DateTimeOffset HeldAt, IReadOnlyList<string> Reasons, long Size, bool Claimed)
{
    /// <summary>Who rejected it when that was cut short (the next action on it finishes the rejection); null otherwise.</summary>
    public string? RejectedBy { get; init; }

    /// <summary>The poster's address: the first From: mailbox, else the envelope sender; "" when neither is one.</summary>
    public string Sender { get; init; } = "";
}

/// <summary>What a moderation action did, in one line for the operator or the moderator.</summary>
public sealed record ModerationOutcome(bool Done, string Summary);

public sealed class HeldPosts(QueueSet queues, InstancePaths paths, ListStoreFactory lists, NoticeSender notices, ModeratorNotices moderatorNotices, ConfirmationTokens tokens, TimeProvider time, ILogger<HeldPosts> logger)
{
    private Switchboard Hold => queues[QueueSet.Hold];

    /// <summary>The address a moderator's reply goes to: LIST-confirm+TOKEN@HOST.</summary>
    public static string ConfirmAddress(ListName list, string token) => $"{list.LocalPart}-confirm+{token}@{list.Domain}";

    /// <summary>
    /// Holds a post: the entry in hold under <paramref name="name"/>, written by
    /// <paramref name="enqueue"/> with the metadata given and the action it runs once the entry
    /// is written, before it is put in place (Switchboard's beforePlacing): the pending request
    /// (the token) is recorded and the moderators' notices and the poster's are written, all
    /// placed with the entry or none (reviews 137 and 138: a hold a full disk stopped told the
    /// poster, or the owner, again at each retry). Repeated after a crash, every step names the
    /// same thing (the token is derived from the entry, notices have derived names, the entry
    /// keeps its name), so nothing is sent twice while it is still queued.
    /// </summary>
    /// <param name="post">The post (or only its header block, for one too large to read: Body null).</param>
    /// <param name="size">The post's size in bytes.</param>
    /// <returns>The hold entry's name.</returns>
    public string Put(MailingList list, MimeMessage post, EntryMetadata metadata, long size, string name, IReadOnlyList<RuleHit> hits, Func<EntryMetadata, Action, string> enqueue, ListStore? store = null)
    {
        var now = time.GetUtcNow();
        var held = metadata.Clone();
        held.HoldReasons = hits.Select(h => Bound(Member.OneLine(h.ToString()), 1000)).ToList(); // one line each: the notices join them line by line
        held.HeldAt = now;
        held.Error = Bound(string.Join("; ", held.HoldReasons), 2000);
        held.Approved = false;
        held.ApprovedBy = null;
        var senders = Senders.Of(post, metadata.Sender);
        var poster = Poster(metadata, post);
        var reasons = string.Join("\n    ", held.HoldReasons);

        var owned = store is null ? lists.Open() : null;
        try
        {
            var db = store ?? owned!;
            var token = tokens.For(name, PendingKind.HeldPost);
            // Listed by its author (Requester); the poster is who is told.
            var (address, displayName) = Requester(post.From.Mailboxes.FirstOrDefault(), poster);
            // Recorded and told once the held entry is written; not recorded when it is not put
            // in place (review 138: on a full disk `pending list` showed a request for a post
            // `held list` did not have).
            enqueue(held, () =>
            {
                var (_, renewed) = db.UpsertPending(list.Name, PendingKind.HeldPost, name, address, displayName, Bound(post.Subject ?? "", 200), now, DateTimeOffset.MaxValue, token);
                db.KeepSeen(SeenKind.Post, name);
                try
                {
                    Tell(db, token);
                }
                catch (Exception) when (!renewed && !Hold.Holds(name) && db.FindPending(list.Name, PendingKind.HeldPost, name) is { } recorded)
                {
                    db.DeletePending(recorded.Id);
                    throw;
                }
            });
        }
        finally
        {
            owned?.Dispose();
        }

        logger.LogWarning("HOLD: post {MessageId} to {ListId} from {Sender} held as {QueueEntry} by {Rules}: {Reason}",
            metadata.MessageIdForLog, list.Name.Fqdn, senders.Summary, name, string.Join(", ", hits.Select(h => h.Rule)), Bound(string.Join("; ", hits.Select(h => h.Reason)), 2000));
        return name;

        // The moderators' notices and the poster's, placed all or none with the held entry.
        void Tell(ListStore db, string token)
        {
            if (!list.AdminImmedNotify)
            {
                TellPoster();
                return;
            }

            var attachment = NoticeAttachments.Post(post, size);
            moderatorNotices.Tell(db, list, "the held post " + name, name, moderator =>
                (new Notice(list, NoticeTemplates.ModeratorPost, moderator.Address)
                {
                    ToName = moderator.DisplayName,
                    From = list.Name.OwnerAddress,
                    ReplyTo = ConfirmAddress(list.Name, token),
                    Values = new Dictionary<string, string>
                    {
                        ["sender_email"] = senders.Summary,
                        ["subject"] = Bound(post.Subject ?? "(no subject)", 200),
                        ["reason"] = reasons,
                        ["token"] = token,
                        ["entry"] = name,
                        ["confirm_email"] = ConfirmAddress(list.Name, token),
                    },
                    Attachment = attachment,
                }, "moderator notice " + moderator.Address.ToLowerInvariant()), then: TellPoster);
        }

        void TellPoster()
        {
            if (list.RespondToPostRequests && poster.Length > 0)
            {
                notices.Send(new Notice(list, NoticeTemplates.Hold, poster)
                {
                    Kind = NoticeKind.Reply,
                    Answering = post,
                    AnsweringSender = metadata.Sender,
                    Values = new Dictionary<string, string> { ["subject"] = Bound(post.Subject ?? "(no subject)", 200), ["reason"] = reasons },
                }, name, "hold notice");
            }
        }
    }

    /// <summary>The held posts of every list, or of <paramref name="list"/>, oldest first.</summary>
    public IReadOnlyList<HeldPost> List(ListName? list = null)
    {
        var result = new List<HeldPost>();
        foreach (var name in Hold.Pending().Concat(Hold.Claimed()).Distinct().Order(StringComparer.Ordinal))
        {
            EntryPeek? head;
            try
            {
                head = EntryPeeks.Read(Hold, name);
            }
            catch (Exception e) when (e is CorruptEntryException or IOException)
            {
                continue; // being removed, or unreadable: `queue show` says which
            }

            if (head is null || (list is not null && !head.Metadata.List.Equals(list.Fqdn, StringComparison.OrdinalIgnoreCase)))
            {
                continue;
            }

            result.Add(Describe(head));
        }

        return result;
    }

    /// <summary>One held post with its headers and the start of its body; null when <paramref name="id"/> is not held.</summary>
    /// <exception cref="ArgumentException"><paramref name="id"/> is not a queue entry name.</exception>
    public (HeldPost Post, EntryPeek Head)? Show(string id)
    {
        CheckId(id);
        var head = EntryPeeks.Read(Hold, id);
        return head is null ? null : (Describe(head), head);
    }

    /// <summary>Sends the post through the chain (moderation rules skipped) and the pipeline again, under its own name.</summary>
    /// <param name="reply">The request entry of the moderator's reply that acts: what it decides is recorded for that entry run again.</param>
    public ModerationOutcome Approve(string id, string actor, string? reply = null)
    {
        if (ShowsPassword(id))
        {
            // Approved, it would take the password to every member (review 56).
            return new ModerationOutcome(false, $"{id}: it shows the moderator password where it cannot be removed, and cannot be approved; reject or discard it (the poster may send it again without)");
        }

        return Act(id, actor, "approved", (claim, entry, list) => Approving(claim, entry, list, actor, reply), reply: reply);
    }

    private bool ShowsPassword(string id)
    {
        try
        {
            return Switchboard.IsValidEntryName(id) && Show(id) is { } held && held.Post.Reasons.Any(r => r.Contains(Rules.Approved.ShowsPassword, StringComparison.Ordinal));
        }
        catch (Exception e) when (e is CorruptEntryException or IOException)
        {
            return false; // the action says what it finds
        }
    }

    private string Approving(ClaimedEntry claim, EntryHead entry, MailingList? list, string actor, string? reply)
    {
        var id = claim.Name;
        if (list is null)
        {
            throw new NoSuchListException($"{id}: the list {entry.Metadata.List} no longer exists; the post stays held (`mailman held discard {id}`, or `mailman lists create {entry.Metadata.List}` and approve it again)");
        }

        // The post must never be both in `in` and (claimed) in hold: a kill between the two,
        // under a running daemon, would deliver it and then hold it again at the next start.
        // So the entry is marked approved in place, claimed again and moved by one rename:
        // at every instant it is in exactly one queue.
        var metadata = entry.Metadata.Clone();
        metadata.Approved = true;
        metadata.ApprovedBy = Bound(actor, 200);
        metadata.Error = null;
        Hold.Rewrite(claim, metadata);
        Deciding(reply, id, ApprovedSummary);
        if (!Hold.Restore(id, queues[QueueSet.In]))
        {
            throw new InvalidOperationException($"{id}: taken by another moderator while being approved; it is marked approved and still held");
        }

        queues[QueueSet.In].Signal?.Set();
        return ApprovedSummary;
    }

    /// <summary>What an approval says it did.</summary>
    public const string ApprovedSummary = "approved: it goes to the list";

    /// <summary>What an action on a post no longer held says.</summary>
    public const string NotHeldSummary = "it is not held (already approved, rejected, discarded or expired?)";

    /// <summary>Drops the post and tells the poster <paramref name="reason"/>.</summary>
    public ModerationOutcome Reject(string id, string? reason, string actor, string? reply = null)
        => Act(id, actor, "rejected", (claim, entry, list) => Rejecting(id, claim, entry, list, reason, actor, reply), reason, reply: reply);

    // Review 36: a `held reject` killed after the poster was told and before the post left hold
    // left it held again at the next start, approvable: the post is marked rejected in place
    // first, and whatever acts on a post so marked finishes the rejection (the notice has the
    // name it had, so one still queued is not sent twice).
    private string Rejecting(string id, ClaimedEntry claim, EntryHead entry, MailingList? list, string? reason, string actor, string? reply = null)
    {
        var oneLine = Member.OneLine(reason ?? ""); // no line or direction breaks (review 130)
        var text = oneLine.Length == 0 ? "[No reason given]" : Bound(oneLine, 2000);

        // Before the mark: a post marked rejected is rejected by whoever acts next (review 131: a
        // reply killed past its mark, whose rejection the command line finished, was answered
        // "not held").
        Deciding(reply, id, "rejected");
        if (entry.Metadata.Rejected is null)
        {
            var metadata = entry.Metadata.Clone();
            metadata.Rejected = text;
            metadata.RejectedBy = Bound(actor, 200);
            Hold.Rewrite(claim, metadata);

            // Rewrite puts the entry back; claimed again, by whoever comes first (another
            // moderator's action then finishes this rejection).
            claim = Hold.Claim(id) ?? throw new InvalidOperationException($"{id}: taken by another moderator while being rejected; it is marked rejected, and the next action on it finishes that");
            entry = Hold.LoadHead(claim);
        }

        var told = "";
        if (list is not null)
        {
            var small = entry.Metadata.MessageLength <= NoticeAttachments.AttachmentLimit;
            var post = Parse(entry, headersOnly: !small);
            var poster = Poster(entry.Metadata, post);
            var result = poster.Length == 0 ? new NoticeResult(null, "no sender")
                : notices.Send(new Notice(list, NoticeTemplates.Rejected, poster)
                {
                    Kind = NoticeKind.Reply,
                    Answering = post,
                    AnsweringSender = entry.Metadata.Sender,
                    Values = new Dictionary<string, string> { ["reason"] = text },
                    Attachment = NoticeAttachments.Post(post, entry.Metadata.MessageLength),
                }, id, "rejected");
            told = result.Queued ? $"; {poster} is told why" : $"; the poster is not told ({result.NotSentBecause})";
        }

        Hold.Finish(claim);
        return "rejected" + told;
    }

    /// <summary>Drops the post; nobody is told.</summary>
    public ModerationOutcome Discard(string id, string actor, string? reply = null) => Act(id, actor, "discarded", (claim, _, _) =>
    {
        Deciding(reply, id, "discarded");
        Hold.Finish(claim);
        return "discarded";
    }, reply: reply);

    /// <summary>Leaves the post held (Mailman's defer: decide later).</summary>
    public ModerationOutcome Defer(string id, string actor) => Act(id, actor, "deferred", (claim, _, _) =>
    {
        Hold.Unclaim(claim);
        return "deferred: it stays held";
    }, keepsPending: true);

    /// <summary>
    /// Discards the post <paramref name="id"/> that nobody acted on in <paramref name="days"/>
    /// days (max_days_to_hold) and tells the moderators.
    /// </summary>
    public ModerationOutcome Expire(string id, int days) => Act(id, "max_days_to_hold", "expired", (claim, entry, list) =>
    {
        if (list is not null)
        {
            var post = Parse(entry, headersOnly: true);
            var from = Senders.Of(post, entry.Metadata.Sender).Summary;
            using var store = lists.Open();

            // Within the daily limit: a flood held a week ago expires as a flood.
            moderatorNotices.Tell(store, list, "the expiry of the held post " + id, id, moderator =>
                (new Notice(list, NoticeTemplates.OwnerHeldExpired, moderator.Address)
                {
                    ToName = moderator.DisplayName,
                    From = list.Name.OwnerAddress,
                    Values = new Dictionary<string, string>
                    {
                        ["count"] = days.ToString(CultureInfo.InvariantCulture),
                        ["sender_email"] = from,
                        ["subject"] = Bound(post.Subject ?? "(no subject)", 200),
                    },
                }, "held-expired " + moderator.Address.ToLowerInvariant()));
        }

        Hold.Finish(claim);
        return $"discarded after {days} days";
    });

    /// <summary>True when <paramref name="address"/> is any address of a list on this server: mail there would loop.</summary>
    public static bool IsListAddress(ListStore store, string address)
        => ListAddress.TryResolve(address, out var resolved, out _) && store.FindList(resolved.List) is not null;

    /// <summary>Who the poster is for a notice: the envelope sender (RFC 3834 §4), else the first From: address.</summary>
    public static string Poster(EntryMetadata metadata, MimeMessage post)
    {
        var envelope = (metadata.Sender ?? "").Trim().Trim('<', '>').Trim();
        return envelope.Length > 0 ? envelope : post.From.Mailboxes.FirstOrDefault()?.Address ?? "";
    }

    /// <exception cref="ArgumentException"><paramref name="id"/> is not a queue entry name (it never becomes a path).</exception>
    public static void CheckId(string id)
    {
        if (!Switchboard.IsValidEntryName(id))
        {
            throw new ArgumentException($"'{Printable(id)}' is not a queue entry id (17 digits, '-', 8 hex digits)");
        }
    }

    /// <summary>How long an action waits for the one before it (var/hold.lock) before it says so.</summary>
    internal static readonly TimeSpan ActionWait = TimeSpan.FromSeconds(30);

    // Claims the post, runs the action, removes the pending request (unless the post stays) and
    // logs one vette line. The claim is what makes a second action find nothing. One action at a
    // time (QueueLock.Moderation): under it, a post found claimed was left so by an action that
    // died, and is put back first.
    private ModerationOutcome Act(string id, string actor, string verb, Func<ClaimedEntry, EntryHead, MailingList?, string> action, string? reason = null, bool keepsPending = false,
        string? reply = null)
    {
        if (!Switchboard.IsValidEntryName(id))
        {
            return new ModerationOutcome(false, $"'{Printable(id)}' is not a queue entry id (17 digits, '-', 8 hex digits)");
        }

        IDisposable one;
        try
        {
            one = QueueLock.Moderation(paths, ActionWait);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new ModerationOutcome(false, $"{id}: {e.Message}");
        }

        using (one)
        {
            try
            {
                if (Hold.PutBackAbandoned(id))
                {
                    logger.LogWarning("Held post {QueueEntry} was left claimed by a moderation action that stopped (killed?): it is held again, and {Actor} acts on it now", id, actor);
                }
            }
            catch (EntryBlockedException e)
            {
                return new ModerationOutcome(false, $"{id}: {e.Message}; move that away and act on it again");
            }

            return ActAlone(id, actor, verb, action, reason, keepsPending, reply);
        }
    }

    private ModerationOutcome ActAlone(string id, string actor, string verb, Func<ClaimedEntry, EntryHead, MailingList?, string> action, string? reason, bool keepsPending, string? reply)
    {
        ClaimedEntry? claim;
        try
        {
            claim = Hold.Claim(id);
        }
        catch (EntryBlockedException e)
        {
            // Left held, the other ids acted on (review 47: the verb stopped at this one, 73).
            return new ModerationOutcome(false, $"{id}: {e.Message}; move that away and act on it again");
        }

        if (claim is null)
        {
            var why = Hold.Holds(id) ? "another moderator or the daemon is acting on it right now" : NotHeldSummary;
            ForgetPending(id, keepIfHeld: true);
            return new ModerationOutcome(false, $"{id}: {why}");
        }

        // Only the head: a held post may be larger than memory (the size rule holds posts without
        // reading them); what an action needs of the message it parses from the file.
        EntryHead entry;
        try
        {
            entry = Hold.LoadHead(claim);
        }
        catch (EntryLockedException e)
        {
            // Another process holds the file: the post is intact, and stays held (review 123: moved to bad).
            Hold.Unclaim(claim);
            return new ModerationOutcome(false, $"{id}: {e.Message}; it stays held: act on it again later");
        }
        catch (Exception e) when (e is CorruptEntryException or IOException)
        {
            Hold.SetAside(claim, queues[QueueSet.Bad], e.Message);
            logger.LogError("Held post {QueueEntry} is unreadable, moved to bad: {Error}", id, e.Message);
            return new ModerationOutcome(false, $"{id}: unreadable ({e.Message}); moved to bad");
        }

        MailingList? list = null;
        if (ListName.TryParse(entry.Metadata.List, out var listName, out _))
        {
            using var store = lists.Open();
            list = store.FindList(listName);
        }

        // A rejection cut short: whatever was asked, it is finished as the rejection it was.
        if (entry.Metadata.Rejected is { } rejected && verb != "rejected")
        {
            var by = entry.Metadata.RejectedBy ?? "a moderator";
            logger.LogWarning("Held post {QueueEntry} to {ListId} was being rejected by {Actor} when that stopped; {Verb} by {Other} finishes the rejection instead",
                id, entry.Metadata.List, by, verb, actor);
            return Perform(id, claim, entry, list, by, "rejected", (c, e, l) => Rejecting(id, c, e, l, rejected, by), rejected, keepsPending: false, reply, asked: verb);
        }

        return Perform(id, claim, entry, list, actor, verb, action, reason, keepsPending, reply);
    }

    private ModerationOutcome Perform(string id, ClaimedEntry claim, EntryHead entry, MailingList? list, string actor, string verb, Func<ClaimedEntry, EntryHead, MailingList?, string> action,
        string? reason, bool keepsPending, string? reply, string? asked = null)
    {
        // Who posted it, for the vette line: read now, the action may remove the entry.
        string post;
        try
        {
            post = Senders.Of(Parse(entry, headersOnly: true), entry.Metadata.Sender).Summary;
        }
        catch
        {
            Hold.Unclaim(claim);
            throw;
        }

        string summary;
        try
        {
            summary = action(claim, entry, list);
        }
        catch
        {
            // Whatever went wrong (a full disk, a post MimeKit chokes on), the claim is put back:
            // a post is never left claimed by a verb.
            if (File.Exists(claim.Path))
            {
                Hold.Unclaim(claim); // the post stays held; the error goes to the caller
            }

            throw;
        }

        var outcome = asked is null ? new ModerationOutcome(true, $"{id}: {summary}")
            : new ModerationOutcome(false, $"{id}: not {asked}: it had been rejected by {actor}, and that rejection is now finished ({summary})");
        if (reply is not null)
        {
            RecordDecision(reply, id, outcome);
        }

        if (!keepsPending)
        {
            ForgetPending(id, keepIfHeld: false, entry.Metadata.List, approved: verb == "approved", finishedRejection: asked is not null, decided: reply is null ? (actor, outcome) : null);
        }

        var rules = string.Join(", ", (entry.Metadata.HoldReasons ?? []).Select(r => r.Split(':')[0]));
        logger.LogWarning("{Action}: held post {QueueEntry} ({MessageId}) to {ListId} from {Sender}, held by {Rules}; by {Actor}{Reason}",
            verb.ToUpperInvariant(), id, entry.Metadata.MessageIdForLog, entry.Metadata.List, post, rules, actor, reason is null ? "" : ": " + Bound(reason, 500));
        return outcome;
    }

    // A reply's action is about to take the step that decides the post: what it will have done
    // is recorded, provisional, for its entry run again (RecordDecision).
    private void Deciding(string? reply, string id, string summary)
    {
        if (reply is not null)
        {
            using var store = lists.Open();
            store.UsedOutcome(reply, PendingKind.HeldPost, id, "?+" + id + ": " + summary);
        }
    }

    /// <summary>Whether the post <paramref name="id"/> is held (waiting, or claimed by an action).</summary>
    public bool IsHeld(string id) => Switchboard.IsValidEntryName(id) && Hold.Holds(id);

    /// <summary>
    /// Uses the held post's request for a moderator's reply (its request entry,
    /// <paramref name="trigger"/>) before the reply acts, so that the entry run again after a
    /// kill anywhere in the action finds it used (<see cref="ListStore.FindUsedRequest"/>);
    /// false when it was used already (another moderator's reply).
    /// </summary>
    public bool TakeRequest(PendingRequest request, string trigger)
    {
        using var store = lists.Open();
        return store.InTransaction(() => store.TakePending(request.Id, trigger, time.GetUtcNow()) is not null);
    }

    /// <summary>
    /// After the reply's action (<paramref name="outcome"/>; null: it failed): a post still held
    /// was not decided, and its request is made live again with the token its notices carry; for
    /// one decided, what the action did is remembered for the entry run again (<see cref="Replayed"/>).
    /// </summary>
    public void SettleRequest(PendingRequest request, string trigger, ModerationOutcome? outcome)
    {
        // Under the actions' lock (review 129: a `held discard` between the look and the
        // writing left a live request for a post gone); without it if it cannot be had.
        IDisposable? one = null;
        try
        {
            one = QueueLock.Moderation(paths, ActionWait);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Held post {QueueEntry}: the request of a moderator's reply is settled without the moderation lock: {Error}", request.Key, e.Message);
        }

        using (one)
        {
            using var store = lists.Open();
            if (IsHeld(request.Key))
            {
                // Under its own number when it had one (review 129: `pending show N` of a
                // listing taken before said "no pending request").
                store.InTransaction(() =>
                {
                    store.ForgetUse(trigger, PendingKind.HeldPost, request.Key);
                    var token = tokens.For(request.Key, PendingKind.HeldPost);
                    return (request.Id > 0 && store.RestorePending(request, token))
                        || store.UpsertPending(request.List, PendingKind.HeldPost, request.Key, request.Address, request.DisplayName, request.Data, request.Created,
                            DateTimeOffset.MaxValue, token).Renewed;
                });
            }
            else if (outcome is not null)
            {
                RecordDecision(store, trigger, request.Key, outcome);
            }
        }
    }

    /// <summary>
    /// Records what a moderator's reply (<paramref name="trigger"/>) did, for its entry run
    /// again. What its action is about to decide is recorded first, provisional, just before the
    /// step that makes it so (a rejection: before the post is marked rejected); an action of anyone
    /// else that decides the post after overrides a provisional record (ForgetPending: review 130,
    /// a reply killed between its record and its step answered "approved" for a post the command
    /// line discarded), unless it finishes a rejection, which keeps a provisional rejection. So a
    /// provisional record found with the post gone is the reply's own doing.
    /// </summary>
    private void RecordDecision(string trigger, string id, ModerationOutcome outcome)
    {
        using var store = lists.Open();
        RecordDecision(store, trigger, id, outcome);
    }

    private static void RecordDecision(ListStore store, string trigger, string id, ModerationOutcome outcome)
        => store.UsedOutcome(trigger, PendingKind.HeldPost, id, (outcome.Done ? "+" : "-") + outcome.Summary);

    /// <summary>
    /// What a reply's action did, as <see cref="RecordDecision"/> remembered it (provisional: its
    /// step may not have been taken); null when its run stopped before it decided.
    /// </summary>
    public static (ModerationOutcome Outcome, bool Provisional)? Replayed(string used)
    {
        var provisional = used.StartsWith('?');
        var record = provisional ? used[1..] : used;
        return record.Length == 0 ? null : (new ModerationOutcome(record.StartsWith('+'), record[1..]), provisional);
    }

    /// <summary>
    /// Makes the held posts' requests match what hold holds, as the daemon starts: a database
    /// restored from a backup (review 98) lists requests for posts decided since, which never
    /// expire, and has none for posts held since, whose mailed tokens then did not work. A
    /// request whose post is gone is removed; a held post without one is given one again, with
    /// the token it was mailed (derived from the entry). Requests made in the last minute are
    /// left alone: a post being held writes its request just before its entry.
    /// </summary>
    /// <returns>Requests removed, and requests made again.</returns>
    public (int Removed, int Made) Reconcile(ListStore store)
    {
        var held = Hold.Pending().Concat(Hold.Claimed()).ToHashSet(StringComparer.Ordinal);
        var now = time.GetUtcNow();
        int removed = 0, made = 0;
        var requests = store.PendingRequests().Where(r => r.Kind == PendingKind.HeldPost).ToList();

        // What the duplicate check keeps of each held post (review 114: a database restored from
        // before a post was held had no record of it, and its resend was held again; an older
        // version's is a week's): kept again, or made again from the entry. What a post no longer
        // held kept is let go (a post held this minute may not be in hold yet).
        foreach (var name in held.Order(StringComparer.Ordinal))
        {
            if (store.KeepSeen(SeenKind.Post, name) == 0)
            {
                RememberHeld(store, name);
            }
        }

        foreach (var entry in store.HeldSeenEntries(now - TimeSpan.FromMinutes(1)).Where(e => !held.Contains(e)))
        {
            store.ReleaseSeen(entry, now);
        }

        foreach (var request in requests.Where(r => !held.Contains(r.Key) && r.Created < now - TimeSpan.FromMinutes(1)))
        {
            if (store.DeletePending(request.Id))
            {
                removed++;
                logger.LogWarning("Pending request {Number} of {ListId} for held post {QueueEntry} removed: the post is no longer held (a database restored from a backup?)",
                    request.Id, request.List.Fqdn, request.Key);
            }
        }

        var known = requests.Select(r => r.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var name in held.Where(n => !known.Contains(n)).Order(StringComparer.Ordinal))
        {
            EntryPeek? head;
            try
            {
                head = EntryPeeks.Read(Hold, name);
            }
            catch (Exception e) when (e is CorruptEntryException or IOException)
            {
                continue; // acted on meanwhile, or unreadable (an action on it moves it to bad)
            }

            if (head is null || !ListName.TryParse(head.Metadata.List, out var listName, out _))
            {
                continue;
            }

            if (store.FindList(listName) is null)
            {
                // Review 109: a database restored from before the list was made left its held
                // posts in hold for good, and nothing said so.
                logger.LogWarning("Held post {QueueEntry} is for {ListId}, which does not exist (deleted, or a database restored from a backup taken before it was made): `mailman lists create {ListId}` and moderate it, or `mailman held discard {QueueEntry}`",
                    name, listName.Fqdn, listName.Fqdn, name);
                continue;
            }

            var author = InternetAddressList.TryParse(head.Headers[HeaderId.From] ?? "", out var from) ? from.Mailboxes.FirstOrDefault() : null;
            var post = Describe(head);
            var (address, displayName) = Requester(author, Bound(Member.Sanitize(head.Metadata.Sender ?? ""), 320));
            store.UpsertPending(listName, PendingKind.HeldPost, name, address, displayName, Bound(post.Subject, 200), post.HeldAt, DateTimeOffset.MaxValue, tokens.For(name, PendingKind.HeldPost));
            made++;

            // Review 131: a moderator's reply stopped (killed) between taking the request and
            // deciding was named a database restored from a backup.
            var why = store.UsedBy(PendingKind.HeldPost, name) is { } reply
                ? $"its request was taken by the moderator's reply {reply}, which stopped before it decided"
                : "it had no pending request (a database restored from a backup?)";
            logger.LogWarning("Held post {QueueEntry} to {ListId}: {Why}; given one again, number {Number}, with the token its notices carried",
                name, listName.Fqdn, why, store.FindPending(listName, PendingKind.HeldPost, name)?.Id);
        }

        return (removed, made);
    }

    // The duplicate check's record of a held post that has none, from its entry.
    private void RememberHeld(ListStore store, string name)
    {
        try
        {
            if (EntryPeeks.Head(Hold, name) is var (head, _) && ListName.TryParse(head.Metadata.List, out var list, out _) && store.FindList(list) is not null
                && SeenKey.Of(head.Metadata.MessageId, () => Hold.OpenMessage(head)) is { } key)
            {
                store.RememberHeld(list, SeenKind.Post, key, name, head.Metadata.HeldAt ?? head.Metadata.Received);
            }
        }
        catch (Exception e) when (e is CorruptEntryException or IOException)
        {
            // Acted on meanwhile, or unreadable (an action on it moves it to bad).
        }
    }

    // Whom a held post's request names: its author, as `held list` shows it (review 60: `pending
    // list` named the envelope sender, MAILER-DAEMON or a forwarder's), else the fallback.
    private static (string Address, string DisplayName) Requester(MailboxAddress? author, string fallback)
        => (author?.Address is { Length: > 0 } a ? Bound(Member.Sanitize(a), 320) : fallback, Member.Sanitize(author?.Name ?? ""));

    // The pending request of a post that left hold (or that is gone under a running daemon), and
    // what the duplicate check keeps of it while held (ListStore.KeepSeen). A post the moderators
    // rejected, discarded or let expire may come again with its Message-ID (review 111: a resend
    // after a fix was discarded as a duplicate for a week); the copies an MTA fanned out came
    // within seconds of the first and were dropped long before (a post rejected by a rule at
    // intake keeps its record, so that those are not each rejected). An approved one is the
    // list's from now on, for the key's life.
    private void ForgetPending(string id, bool keepIfHeld, string? list = null, bool? approved = null, bool finishedRejection = false,
        (string Actor, ModerationOutcome Outcome)? decided = null)
    {
        if (keepIfHeld && Hold.Holds(id))
        {
            return;
        }

        using var store = lists.Open();
        if (list is not null && ListName.TryParse(list, out var name, out _))
        {
            if (store.FindPending(name, PendingKind.HeldPost, id) is { } request)
            {
                // Decided by an actor who had no token (the command line, the expiry): the token
                // is remembered as used by them, with what they decided, for a moderator's reply
                // after it (told "unknown" before).
                if (decided is var (actor, outcome))
                {
                    store.InTransaction(() =>
                    {
                        if (store.TakePending(request.Id, DeciderPrefix + actor, time.GetUtcNow()) is { } hash)
                        {
                            store.UsedOutcome(hash, (outcome.Done ? "+" : "-") + outcome.Summary);
                        }

                        return 0;
                    });
                }
                else
                {
                    store.DeletePending(request.Id);
                }
            }

            // Decided here: a reply stopped before its own step did not decide it; but a rejection
            // finished here is the one a reply stopped after marking it may have begun.
            store.SettleProvisionalOutcomes(PendingKind.HeldPost, id, finishedRejection ? $"+{id}: rejected" : null, $"-{id}: {NotHeldSummary}");

            if (approved is true)
            {
                store.ReleaseSeen(id, time.GetUtcNow());
            }
            else if (approved is false)
            {
                store.ForgetSeen(name, SeenKind.Post, id);
            }

            return;
        }

        // The entry is gone, and with it the list's name: look through every list's requests.
        foreach (var request in store.PendingRequests().Where(r => r.Kind == PendingKind.HeldPost && r.Key == id))
        {
            store.DeletePending(request.Id);
        }

        // Gone without a decision recorded (an approval killed after the move, a file removed by
        // hand, review 114): remembered a week from now, as an approved post.
        store.ReleaseSeen(id, time.GetUtcNow());
    }

    // What stands for the entry in the record of a request used by an actor without one: no
    // entry name begins so.
    private const string DeciderPrefix = "by ";

    private static HeldPost Describe(EntryPeek head)
    {
        var m = head.Metadata;
        var from = head.Headers[HeaderId.From] ?? m.Sender ?? "";
        return new HeldPost(head.Name, m.List, Bound(Member.Sanitize(from), 120), Bound(Member.Sanitize(Decode(head.Headers[HeaderId.Subject] ?? "")), 120), m.MessageId,
            m.HeldAt ?? m.Received, m.HoldReasons ?? (m.Error is { } e ? [e] : []), m.MessageLength, head.Claimed)
        {
            RejectedBy = m.Rejected is null ? null : Bound(Member.Sanitize(m.RejectedBy ?? "a moderator"), 120),
            Sender = (InternetAddressList.TryParse(head.Headers[HeaderId.From] ?? "", out var list) ? list.Mailboxes.FirstOrDefault()?.Address : null) ?? m.Sender ?? "",
        };
    }

    private static string Decode(string value)
    {
        try
        {
            return MimeKit.Utils.Rfc2047.DecodeText(System.Text.Encoding.UTF8.GetBytes(value));
        }
        catch (ArgumentException)
        {
            return value;
        }
    }

    private MimeMessage Parse(EntryHead entry, bool headersOnly)
    {
        using var stream = Hold.OpenMessage(entry);
        if (!headersOnly)
        {
            return MimeMessage.Load(stream);
        }

        var message = new MimeMessage();
        foreach (var header in HeaderList.Load(stream))
        {
            message.Headers.Add(header);
        }

        return message;
    }

    private static string Bound(string text, int max) => text.Length <= max ? text : text[..(max - 3)] + "...";

    private static string Printable(string s) => Bound(new string(s.Select(c => char.IsControl(c) ? '?' : c).ToArray()), 80);
}
