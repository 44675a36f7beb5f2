// The one component that sends mail the server writes by itself: it fills the template, adds
// the RFC 3834 headers (Auto-Submitted, In-Reply-To), applies the never-answer rules and the
// per-address daily limit, and queues the notice in `out`. A notice is an out entry whose name
// derives from the entry that caused it and the notice's purpose, so a crash before that entry
// is finished cannot queue it twice. Its envelope sender is the list's VERP address for the
// recipient (a bounce probe's, its one-time probe address): a bounce of a notice names who it
// was for and never produces another notice.
using Mailman.Delivery;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.Templates;
using Microsoft.Extensions.Logging;
using MimeKit;
using MimeKit.Utils;

namespace Mailman.Notices;

public sealed class NoticeSender(QueueSet queues, ListStoreFactory lists, TimeProvider time, ILogger<NoticeSender> logger)
{
    /// <summary>
    /// Queues <paramref name="notice"/> unless a rule forbids it. <paramref name="triggerEntry"/>
    /// and <paramref name="purpose"/> name it: the same pair never queues a second notice.
    /// </summary>
    /// <param name="beforePlacing">
    /// Runs once the notice is written, before it is queued (or at once when it is not to be
    /// sent, or queued already): what is chained to it (the next notice) is placed with it or not
    /// at all (Switchboard's beforePlacing).
    /// </param>
    /// <exception cref="IOException">The out queue cannot be written (the caller's entry stays claimed and is retried).</exception>
    public NoticeResult Send(Notice notice, string triggerEntry, string purpose, Action? beforePlacing = null)
    {
        var list = notice.List;
        var derived = Switchboard.DerivedName(triggerEntry, purpose);
        if (queues[QueueSet.Out].Holds(derived))
        {
            // Queued by an earlier run of the same entry (a crash before it finished): counted then.
            beforePlacing?.Invoke();
            return new NoticeResult(derived, null);
        }

        var why = WhyNot(notice, out var countedOn);
        if (why is not null)
        {
            logger.LogInformation("No {Template} notice from {ListId} to {Recipient}: {Reason}", notice.Template, list.Name.Fqdn, notice.To, why);
            beforePlacing?.Invoke();
            return new NoticeResult(null, why);
        }

        var message = Build(notice);
        var metadata = new EntryMetadata
        {
            List = list.Name.Fqdn,
            Received = time.GetUtcNow(),
            MessageId = message.MessageId,
            EnvelopeSender = notice.EnvelopeSender ?? Verp.Encode(list.Name, notice.To),
            Purpose = "notice " + notice.Template,
        };
        string name;
        try
        {
            name = queues[QueueSet.Out].Enqueue(metadata, WireFormat.Flatten(message), [new Recipient(notice.To, Member.Sanitize(notice.ToName))], derived, beforePlacing);
        }
        catch (Exception) when (countedOn is { } day)
        {
            // Not sent (a full disk, say): it does not count toward the day's limit (review 36:
            // each retry of a paused runner counted, and the address's limit was used up by
            // replies that never went).
            using var store = lists.Open();
            Uncount(store, notice, day, askedFor: AsksForOther(notice));
            throw;
        }

        logger.LogInformation("Notice {Template} from {ListId} to {Recipient} queued as {QueueEntry}", notice.Template, list.Name.Fqdn, notice.To, name);
        return new NoticeResult(name, null);
    }

    /// <summary>The notice as a message (also for tests and `held show`).</summary>
    public MimeMessage Build(Notice notice)
    {
        var list = notice.List;
        var template = NoticeTemplates.For(list, notice.Template);
        var listValues = Template.ListValues(list);
        // A value is one line unless it is one of the texts the server composes line by line
        // (whose parts from mail are made one line each where they are composed): a Subject or
        // an address from mail never writes lines of its own into the body.
        string? Lookup(string name) => notice.Values.TryGetValue(name, out var v) ? (MultiLine.Contains(name) ? v : Member.OneLine(v))
            : name switch
            {
                "user_email" or "user_address" or "member" => notice.To,
                "user_name" => notice.ToName.Length > 0 ? notice.ToName : notice.To,
                "listname" => list.Name.Fqdn,
                "request_email" => list.Name.RequestAddress,
                "owner_email" => list.Name.OwnerAddress,
                _ => listValues(name),
            };

        var message = new MimeMessage();
        message.From.Add(new MailboxAddress(Encoding, Member.Sanitize(DisplayName(list)), notice.From ?? list.Name.RequestAddress));
        message.To.Add(new MailboxAddress(Encoding, Member.Sanitize(notice.ToName), notice.To));
        if (notice.ReplyTo is not null)
        {
            message.ReplyTo.Add(MailboxAddress.Parse(notice.ReplyTo));
        }

        // Template values may come from mail (a subject, a reason): no line break reaches a header.
        message.Subject = Member.Sanitize(Template.Expand(template.Subject, Lookup));
        message.Date = time.GetUtcNow();
        message.MessageId = MimeUtils.GenerateMessageId(list.Name.Domain);
        message.Headers.Add(HeaderId.AutoSubmitted, notice.Kind == NoticeKind.Reply ? "auto-replied" : "auto-generated");
        message.Headers.Add(HeaderId.Precedence, "bulk");
        message.Headers.Add("X-Mailman-Notice", notice.Template);
        // The answered post's ids as MimeKit parsed them: "Message-ID: <>" parses to "", which
        // MimeKit refuses to write (review 27: a held post's notice threw and the post went to
        // shunt). A reply without threading headers is still the reply.
        if (notice.Answering?.MessageId is { Length: > 0 } answered && TryThread(message, answered))
        {
            // The thread's first post and its last few are enough to thread by (as mail clients
            // trim it). Every one of 30,000 ids on one line, added one by one, cost 94 s of CPU
            // and made a References header of 15,000 lines (review 43).
            var references = notice.Answering.References;
            if (references.Count == 0 && notice.Answering.Headers[HeaderId.InReplyTo] is { } inReplyTo
                && MimeUtils.EnumerateReferences(inReplyTo).Take(2).ToList() is [var parent])
            {
                // RFC 5322 §3.6.4: a message without References threads by its one In-Reply-To
                // (review 56: the parent of a reply to a confirmation was dropped).
                references = [parent];
            }

            foreach (var reference in references.Count <= MaxReferences ? references : references.Take(1).Concat(references.Skip(references.Count - (MaxReferences - 1))))
            {
                TryReference(message, reference);
            }

            TryReference(message, answered);
        }

        var text = new TextPart("plain") { Text = Template.Expand(template.Body, Lookup).ReplaceLineEndings("\n") };
        text.ContentType.Charset = "utf-8";
        // A line longer than RFC 5322's 998 (a template set so, a reason quoting mail) goes
        // quoted-printable, which no relay refolds or refuses (review 75).
        // UTF-8 in it (a name, a subject) is declared 8bit: without a Content-Transfer-Encoding
        // it was 7bit by default (review 79).
        var best = text.GetBestEncoding(EncodingConstraint.EightBit, 998);
        if (best is ContentEncoding.QuotedPrintable or ContentEncoding.Base64)
        {
            text.ContentTransferEncoding = ContentEncoding.QuotedPrintable;
        }
        else if (best == ContentEncoding.EightBit)
        {
            text.ContentTransferEncoding = ContentEncoding.EightBit;
        }

        message.Body = notice.Attachment is null ? text : new Multipart("mixed") { text, notice.Attachment };
        return message;
    }

    private static bool TryThread(MimeMessage message, string id)
    {
        if (id.Length > MaxIdLength)
        {
            return false;
        }

        try
        {
            message.InReplyTo = id;
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private const int MaxReferences = 10;

    // One id is never folded: "In-Reply-To: <id>" or a References line of one id over RFC
    // 5322's 998 characters would be broken by the relay (review 75). Such an id is left out.
    private const int MaxIdLength = 980;

    private static void TryReference(MimeMessage message, string id)
    {
        if (id.Length > MaxIdLength)
        {
            return;
        }

        try
        {
            message.References.Add(id);
        }
        catch (ArgumentException)
        {
            // Not an id MimeKit will write: left out.
        }
    }

    // countedOn: the day a reply was counted toward the daily limit (null: not counted).
    private string? WhyNot(Notice notice, out DateOnly? countedOn)
    {
        countedOn = null;
        if (notice.To.Trim().Length == 0)
        {
            return "the recipient is the null sender";
        }

        if (notice.To.Trim().Length > Member.MaxAddressLength)
        {
            // No relay takes it (review 95: a 100 KB sender's notice broke the relay's connection).
            return $"an address of {notice.To.Trim().Length:N0} characters is longer than any SMTP path";
        }

        if (!MailboxAddress.TryParse(notice.To, out var parsed) || parsed.Address != notice.To.Trim())
        {
            return $"'{Member.Sanitize(notice.To)}' is not one address";
        }

        using var store = lists.Open();
        if (ListAddress.TryResolve(notice.To, out var resolved, out _) && store.FindList(resolved.List) is not null)
        {
            return $"{notice.To} is an address of the list {resolved.List}";
        }

        // A robot-like name (postmaster@, it-admin@, owner-x@) is no reason to refuse whom the
        // list's roster names: a member (a probe), or an owner or moderator the operator set,
        // whom the server's own notices are for (review 100: postmaster@ as an owner was told of
        // no held post). Its answers still go to nobody of the kind.
        if (!notice.ToMember && AutomaticMail.IsRobotAddress(notice.To)
            && !(notice.Kind == NoticeKind.Generated && (store.HasRole(notice.List.Name, ListRole.Owner, notice.To) || store.HasRole(notice.List.Name, ListRole.Moderator, notice.To))))
        {
            return $"{notice.To} is a robot address";
        }

        if (notice.Kind != NoticeKind.Reply)
        {
            return null;
        }

        if (notice.Answering is not null && AutomaticMail.WhyNotAnswer(notice.Answering, notice.AnsweringSender) is { } rule)
        {
            return rule;
        }

        if (notice.UsedToken)
        {
            return null;
        }

        var today = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
        var limit = notice.List.MaxAutoresponsesPerDay;
        if (!store.TryCountAutoresponse(notice.List.Name, notice.To, today, limit))
        {
            return $"the daily limit of {limit} automatic replies to {notice.To} is reached";
        }

        if (limit > 0 && AsksForOther(notice))
        {
            if (!store.TryCountAutoresponse(notice.List.Name, notice.AskedBy!, today, limit))
            {
                Uncount(store, notice, today, askedFor: false);
                return $"the daily limit of {limit} automatic replies asked for by {notice.AskedBy} is reached";
            }

            if (store.CountDaily(notice.List.Name, AskedForOthersCounter, today) > AskedForOthersFactor * limit)
            {
                Uncount(store, notice, today, askedFor: true);
                return $"the list's daily limit of {AskedForOthersFactor * limit} automatic replies to addresses other than the one asking is reached";
            }
        }

        countedOn = limit > 0 ? today : null;
        return null;
    }

    /// <summary>The list's daily limit of replies asked for others, in per-address limits.</summary>
    public const int AskedForOthersFactor = 10;

    private const string AskedForOthersCounter = "asked-for-others";

    private static bool AsksForOther(Notice notice) => notice.AskedBy is { Length: > 0 } by && !ListStore.SameAddress(by, notice.To);

    private static void Uncount(ListStore store, Notice notice, DateOnly day, bool askedFor)
    {
        store.UncountAutoresponse(notice.List.Name, notice.To, day);
        if (askedFor)
        {
            store.UncountAutoresponse(notice.List.Name, notice.AskedBy!, day);
            store.UncountDaily(notice.List.Name, AskedForOthersCounter, day);
        }
    }

    // Values the server writes as several lines: the rules that held a post, a command's results, the summary's items.
    private static readonly HashSet<string> MultiLine = new(StringComparer.Ordinal) { "reason", "requests" };

    private static string DisplayName(MailingList list) => string.IsNullOrEmpty(list.DisplayName) ? list.Name.LocalPart : list.DisplayName;

    private static readonly System.Text.Encoding Encoding = System.Text.Encoding.UTF8;
}
