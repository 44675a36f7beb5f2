// The texts of the mail the server writes by itself, by Mailman 3's template names, with their
// subjects. A list may replace a body (`lists set LIST template:NAME TEXT`, or the aliases
// welcome_message / goodbye_message); subjects are fixed, as in Mailman.
using Mailman.Lists;

namespace Mailman.Notices;

/// <summary>One notice text: subject and body templates ($placeholders).</summary>
public sealed record NoticeTemplate(string Name, string Subject, string Body);

public static class NoticeTemplates
{
    public const string Welcome = "list:user:notice:welcome";
    public const string Goodbye = "list:user:notice:goodbye";
    public const string ConfirmSubscribe = "list:user:action:subscribe";
    public const string ConfirmUnsubscribe = "list:user:action:unsubscribe";
    public const string Help = "list:user:notice:help";
    public const string Hold = "list:user:notice:hold";
    public const string Rejected = "list:user:notice:rejected";
    public const string Refused = "list:user:notice:refuse";
    public const string DisabledWarning = "list:user:notice:warning";
    public const string Probe = "list:user:notice:probe";
    public const string Results = "list:user:notice:results";
    public const string ModeratorPost = "list:admin:action:post";
    public const string ModeratorSubscribe = "list:admin:action:subscribe";
    public const string OwnerDisabled = "list:admin:notice:disable";
    public const string OwnerRemoved = "list:admin:notice:removal";
    public const string OwnerBounceLimit = "list:admin:notice:bounce-limit";
    public const string OwnerUnrecognizedBounce = "list:admin:notice:unrecognized";
    public const string OwnerSubscribed = "list:admin:notice:subscribe";
    public const string OwnerUnsubscribed = "list:admin:notice:unsubscribe";
    public const string OwnerHeldExpired = "list:admin:notice:held-expired";
    public const string ModeratorLimit = "list:admin:notice:moderator-limit";
    public const string ModeratorSummary = "list:admin:notice:pending";

    /// <summary>Placeholders every notice may use besides the list's own (Template.ListValues).</summary>
    public static readonly IReadOnlySet<string> CommonPlaceholders = new HashSet<string>(StringComparer.Ordinal)
    {
        "user_email", "user_address", "user_name", "listname", "owner_email", "request_email", "confirm_email", "token", "subject", "reason",
        "sender_email", "score", "warnings_left", "member", "rules", "count", "entry", "requests", "bounce_day", "bounce_said",
    };

    /// <summary>What a notice template may name: the list's placeholders and the common ones.</summary>
    public static readonly IReadOnlySet<string> Placeholders = new HashSet<string>(Templates.Template.ListPlaceholders.Concat(CommonPlaceholders), StringComparer.Ordinal);

    private static readonly Dictionary<string, NoticeTemplate> Defaults = new NoticeTemplate[]
    {
        new(Welcome, "Welcome to the \"$display_name\" mailing list", """
            Welcome to the "$display_name" mailing list!

            To post to this list, send your message to:

              $listname

            To unsubscribe, send a message to $list_name-leave@$domain, or a message to
            $request_email with the word "help" in the subject or body for the commands.
            """),
        new(Goodbye, "You have been unsubscribed from the $display_name mailing list", """
            $user_email is no longer subscribed to the "$display_name" mailing list.
            To join again, send a message to $list_name-join@$domain.
            """),
        new(ConfirmSubscribe, "confirm $token", """
            Someone (hopefully you) asked to subscribe $user_email to the "$display_name"
            mailing list ($listname).

            To confirm, simply reply to this message, keeping the Subject intact,
            or send a message to $confirm_email

            If you did not ask for this, ignore this message: nothing happens, and the
            request expires.
            """),
        new(ConfirmUnsubscribe, "confirm $token", """
            Someone (hopefully you) asked to unsubscribe $user_email from the "$display_name"
            mailing list ($listname).

            To confirm, simply reply to this message, keeping the Subject intact,
            or send a message to $confirm_email

            If you did not ask for this, ignore this message: you stay subscribed.
            """),
        new(Help, "Help for the $display_name mailing list", """
            Commands for the "$display_name" mailing list ($listname), sent to
            $request_email in the Subject or at the start of the body, one a line:

              join (or subscribe)      subscribe the address this message comes from
              join address=ADDRESS     subscribe another address: it is sent the
                                       confirmation, and joins only if it confirms
              leave (or unsubscribe)   unsubscribe the address this message comes from
              confirm TOKEN            confirm a request
              help                     this text
              end                      stop reading commands here

            Commands act for the address in your From: line, but for join address=.
            You can also send an empty message to $list_name-join@$domain or
            $list_name-leave@$domain.
            """),
        new(Hold, "Your message to $listname awaits moderator approval", """
            Your message to the "$display_name" mailing list

                Subject: $subject

            is being held until a list moderator can review it, because:

                $reason

            If the moderator approves it, it is posted to the list; if the moderator
            rejects it, you will be told why. No action is needed on your part.
            """),
        new(Rejected, "Your message to $listname was rejected", """
            Your message to the "$display_name" mailing list was rejected:

                $reason

            The list owner can be reached at $owner_email.
            """),
        new(Refused, "Your request to $listname was refused", """
            Your request to the "$display_name" mailing list was refused by the list
            moderator:

                $reason

            The list owner can be reached at $owner_email.
            """),
        new(DisabledWarning, "Your membership in $listname is disabled", """
            Your delivery from the "$display_name" mailing list ($listname) has been
            disabled because mail to $user_email bounced too often.

            To receive mail again, send a message to $list_name-join@$domain or ask
            the list owner ($owner_email) to re-enable you. Unless you do, you will be
            removed from the list after $warnings_left more warning(s).
            """),
        new(Probe, "$display_name mailing list probe message", """
            This is a probe message from the "$display_name" mailing list ($listname).
            You can ignore it.

            The list has received reports that mail to $user_email bounced, which may
            mean that this address no longer receives mail. This message checks: if it
            reaches you, nothing more happens and you stay a member. If it bounces within
            $count days, delivery from the list to $user_email is disabled.

            The list owner can be reached at $owner_email.
            """),
        new(Results, "The results of your email commands", """
            The results of your email commands to $listname:

            $reason
            """),
        new(ModeratorPost, "$listname post from $sender_email requires approval", """
            A post to the "$display_name" mailing list is held for your approval.

                List:    $listname
                From:    $sender_email
                Subject: $subject
                Reason:  $reason

            Reply to this message with "approve", "reject REASON" or "discard" in the
            first line of the body (the reply goes to $confirm_email),
            or run `mailman held approve|reject|discard $entry` on the server.
            The post is attached.
            """),
        new(ModeratorSubscribe, "$listname subscription request from $user_email", """
            $user_email asks to join the "$display_name" mailing list and the list
            requires a moderator's approval.

            Reply with "approve", "reject REASON" or "discard" in the first line, or use
            `mailman pending confirm $token` / `mailman pending discard $token`.
            """),
        new(OwnerDisabled, "$member's delivery from $listname disabled by bounces", """
            Delivery to $member from the "$display_name" mailing list was disabled
            after a bounce score of $score, and a notice was sent to that address.

            The last bounce that scored came on $bounce_day and said:
                $bounce_said

            What each scoring bounce said is in the server's bounce log
            (logs/bounce-DATE.log, one line per bounce, naming the member).
            """),
        new(OwnerRemoved, "$member removed from $listname after bounces", """
            $member was removed from the "$display_name" mailing list: delivery had
            been disabled by bounces and every warning went unanswered.
            """),
        new(OwnerBounceLimit, "$listname: more than $count members disabled or removed by bounces today", """
            More than $count members of the "$display_name" mailing list were disabled
            or removed by bounces today: you are not told of the rest one by one today.
            The server's bounce log (logs/bounce-DATE.log) names each of them, and
            `mailman members list $listname --status disabled` on the server shows
            who is disabled now.

            Many at once often means a receiving server or a provider refused
            everyone for a while, not that the addresses are dead: a member disabled
            by bounces is re-enabled by `mailman members enable` on the server, or by
            joining again.
            """),
        new(OwnerUnrecognizedBounce, "Unrecognized bounce for $listname", """
            The attached message arrived at the bounce address of the "$display_name"
            mailing list, but the server did not recognize it as a delivery failure
            report naming a member, so no member's bounce score changed. It is
            attached for you to act on.
            """),
        new(OwnerSubscribed, "$listname subscription notification", """
            $member has been subscribed to the "$display_name" mailing list.
            """),
        new(OwnerUnsubscribed, "$listname unsubscription notification", """
            $member has been removed from the "$display_name" mailing list.
            """),
        new(OwnerHeldExpired, "$listname held post discarded after $count days", """
            A post held for the "$display_name" mailing list was discarded because no
            moderator acted on it within $count days.

                From:    $sender_email
                Subject: $subject
            """),
        new(ModeratorLimit, "$listname: more than $count requests for the moderators today", """
            More than $count held posts, subscription requests and expired posts were
            for the moderators of the "$display_name" mailing list ($listname) today:
            you are not told of the rest one by one today; $reason.

            Many at once from addresses never seen before may be a forged flood: a
            list that asks new subscribers to confirm first (subscription_policy
            confirm_then_moderate) keeps forged requests from you.
            """),
        new(ModeratorSummary, "Waiting for the moderators of $listname: $count", """
            Requests waiting for the moderators of the "$display_name" mailing list
            ($listname): $count.

            $requests

            To decide one, send a message to its address with "approve", "reject REASON"
            or "discard" in the first line of the body, or run the command shown on the
            server.
            """),
    }.ToDictionary(t => t.Name, StringComparer.Ordinal);

    /// <summary>Every template name the server knows.</summary>
    public static IEnumerable<string> Names => Defaults.Keys;

    public static bool IsKnown(string name) => Defaults.ContainsKey(name);

    /// <summary>The template <paramref name="name"/> for <paramref name="list"/>: its body replaced where the list sets one.</summary>
    /// <exception cref="ArgumentException">Unknown template name.</exception>
    public static NoticeTemplate For(MailingList list, string name)
    {
        if (!Defaults.TryGetValue(name, out var template))
        {
            throw new ArgumentException($"unknown notice template '{name}'", nameof(name));
        }

        return list.Templates.TryGetValue(name, out var body) && body.Length > 0 ? template with { Body = body } : template;
    }
}
