// A mailing list and its settings. Pure data: the store persists it, handlers read it.
using System.Text.Json.Serialization;

namespace Mailman.Lists;

public enum Personalization
{
    /// <summary>One copy, batched RCPT TO; the list's To: header is kept.</summary>
    None,

    /// <summary>One copy per member: To: names the member, footer placeholders filled, VERP sender.</summary>
    Full,
}

public enum ReplyToPolicy
{
    /// <summary>Leave Reply-To as the poster set it.</summary>
    None,

    /// <summary>Reply-To: the list's posting address.</summary>
    List,

    /// <summary>Reply-To: <see cref="MailingList.ReplyToAddress"/>.</summary>
    Explicit,
}

/// <summary>Mailman 3's dmarc_mitigate_action: what to do with a post From: a p=reject or p=quarantine domain.</summary>
public enum DmarcMitigateAction
{
    NoMitigation,
    MungeFrom,
    WrapMessage,
    Reject,
    Discard,
}

public enum NonMemberAction
{
    Accept,
    Hold,
    Reject,
    Discard,
}

/// <summary>What the moderation chain does with a member's post (Mailman 3's Action).</summary>
public enum ModerationAction
{
    /// <summary>No shortcut: the list's regular rules decide.</summary>
    Defer,

    /// <summary>Accepted without the remaining rules.</summary>
    Accept,

    Hold,
    Reject,
    Discard,
}

/// <summary>What happens to an automatic reply (RFC 3834 Auto-Submitted, Precedence: bulk/junk) posted to the list.</summary>
public enum AutoReplyAction
{
    Discard,
    Hold,
    Accept,
}

/// <summary>How a request to join is handled (Mailman 3's subscription_policy).</summary>
public enum SubscriptionPolicy
{
    /// <summary>The address confirms by replying to a confirmation mail.</summary>
    Confirm,

    /// <summary>Anyone joins at once.</summary>
    Open,

    /// <summary>A moderator approves every request.</summary>
    Moderate,

    /// <summary>The address confirms, then a moderator approves.</summary>
    ConfirmThenModerate,
}

/// <summary>How a request to leave is handled (Mailman 3's unsubscription_policy).</summary>
public enum UnsubscriptionPolicy
{
    Confirm,
    Open,
}

/// <summary>What an RFC 8058 one-click unsubscribe does to the member.</summary>
public enum OneClickAction
{
    /// <summary>The member is removed, as by a confirmed leave.</summary>
    Remove,

    /// <summary>The member stays with delivery disabled "by user"; a later join re-enables.</summary>
    Disable,
}

/// <summary>A list and its settings, as stored in the database.</summary>
public sealed class MailingList
{
    [JsonIgnore]
    public ListName Name { get; set; } = ListName.Parse("list@example.invalid");

    public string DisplayName { get; set; } = "";

    /// <summary>Subject prefix template; <c>$display_name</c> and the other list placeholders expand.</summary>
    public string SubjectPrefix { get; set; } = "[$display_name] ";

    public Personalization Personalize { get; set; } = Personalization.Full;

    public ReplyToPolicy ReplyTo { get; set; } = ReplyToPolicy.None;

    public string ReplyToAddress { get; set; } = "";

    /// <summary>Largest post accepted, in KiB; 0 means no limit.</summary>
    public int MaxMessageSizeKb { get; set; } = 40 * 1024;

    public NonMemberAction NonMemberAction { get; set; } = NonMemberAction.Hold;

    public string HeaderTemplate { get; set; } = "";

    public string FooterTemplate { get; set; } = "_______________________________________________\n$display_name mailing list -- $fqdn_listname\nTo unsubscribe send an email to $list_name-leave@$domain\n";

    public string ArchiveUrl { get; set; } = "";

    public DmarcMitigateAction DmarcMitigateAction { get; set; } = DmarcMitigateAction.NoMitigation;

    /// <summary>Apply munge_from or wrap_message to every post, whatever the From: domain publishes.</summary>
    public bool DmarcMitigateUnconditionally { get; set; }

    /// <summary>The reason given to the poster when dmarc_mitigate_action is reject; empty for Mailman 3's text.</summary>
    public string DmarcModerationNotice { get; set; } = "";

    /// <summary>Text placed before the original in a wrapped post; empty for none.</summary>
    public string DmarcWrappedMessageText { get; set; } = "";

    public string UnsubscribeUrl { get; set; } = "";

    /// <summary>Mailman 3's max_autoresponses_per_day: automatic replies to one address per day (0: no limit).</summary>
    public int MaxAutoresponsesPerDay { get; set; } = 10;

    /// <summary>Posts one member may make to the list within an hour before the next is held (posting-rate; 0: no limit).</summary>
    public int MaxPostsPerHour { get; set; } = 20;

    public SubscriptionPolicy SubscriptionPolicy { get; set; } = SubscriptionPolicy.Confirm;

    public UnsubscriptionPolicy UnsubscriptionPolicy { get; set; } = UnsubscriptionPolicy.Confirm;

    /// <summary>How long a confirmation token or a subscription awaiting a moderator stays valid.</summary>
    public TimeSpan PendingRequestLife { get; set; } = TimeSpan.FromDays(3);

    public bool SendWelcomeMessage { get; set; } = true;

    public bool SendGoodbyeMessage { get; set; } = true;

    public OneClickAction OneClickAction { get; set; } = OneClickAction.Remove;

    /// <summary>Mailman's process_bounces: score bounces, disable and remove dead addresses (Bounces/).</summary>
    public bool ProcessBounces { get; set; } = true;

    /// <summary>Mailman's bounce_score_threshold: the score at which delivery is disabled (a permanent bounce adds 1.0, once a day).</summary>
    public double BounceScoreThreshold { get; set; } = 5.0;

    /// <summary>Mailman's bounce_info_stale_after, in days: an older score is reset before a new bounce counts.</summary>
    public int BounceInfoStaleAfterDays { get; set; } = 7;

    /// <summary>Mailman's bounce_you_are_disabled_warnings: notices a disabled member gets before removal (0: removed at once).</summary>
    public int BounceYouAreDisabledWarnings { get; set; } = 3;

    /// <summary>Mailman's bounce_you_are_disabled_warnings_interval, in days.</summary>
    public int BounceYouAreDisabledWarningsIntervalDays { get; set; } = 7;

    /// <summary>Mailman's bounce_notify_owner_on_disable.</summary>
    public bool BounceNotifyOwnerOnDisable { get; set; } = true;

    /// <summary>Mailman's bounce_notify_owner_on_removal.</summary>
    public bool BounceNotifyOwnerOnRemoval { get; set; } = true;

    /// <summary>
    /// Members disabled or removed by bounces told to the owners one by one per UTC day (not
    /// Mailman's; 0: no limit). A relay or a provider refusing everyone for an hour disables
    /// hundreds at once (review 99: 493 notices in a minute); past it the owners get one note.
    /// </summary>
    public int MaxOwnerBounceNoticesPerDay { get; set; } = 20;

    /// <summary>Mailman's bounce_unrecognized_goes_to_list_owner: unrecognized mail at the bounce addresses is forwarded to the owners (else kept in unrecognized).</summary>
    public bool BounceUnrecognizedGoesToListOwner { get; set; } = true;

    /// <summary>
    /// Mailman's verp_probes (a site setting there, off by default; here per list and on): at the
    /// threshold a mailed bounce does not disable; a probe goes to the member from a one-time
    /// bounce address, and only its bounce (or a refusal at SMTP time) disables.
    /// </summary>
    public bool VerpProbes { get; set; } = true;

    /// <summary>
    /// Days a probe waits for its bounce; one that did not bounce by then went through, and the
    /// score starts again. Longer than MTAs keep a message they cannot deliver before they
    /// bounce it (Postfix's maximal_queue_lifetime and sendmail's queuereturn are 5 days).
    /// </summary>
    public int VerpProbeWaitDays { get; set; } = 7;

    /// <summary>Mailman 3's emergency: hold every post (approved ones pass).</summary>
    public bool Emergency { get; set; }

    /// <summary>The action for a member whose own moderation_action is defer.</summary>
    public ModerationAction DefaultMemberAction { get; set; } = ModerationAction.Defer;

    /// <summary>Hold posts that look like commands (subscribe, unsubscribe, help, ...) meant for LIST-request.</summary>
    public bool Administrivia { get; set; } = true;

    /// <summary>Hold posts naming this many explicit recipients (To: and Cc:) or more; 0: no limit.</summary>
    public int MaxNumRecipients { get; set; } = 10;

    /// <summary>Hold posts that name the list in neither To: nor Cc: (nor an acceptable alias).</summary>
    public bool RequireExplicitDestination { get; set; } = true;

    /// <summary>Other addresses that count as the list for require_explicit_destination: an address, or a regex starting with ^.</summary>
    public List<string> AcceptableAliases { get; set; } = [];

    /// <summary>Suspicious headers: "Header: regex" lines; a post with a matching header is held.</summary>
    public List<string> BounceMatchingHeaders { get; set; } = [];

    /// <summary>PBKDF2 hash of the password an Approved: header must carry (Lists/PasswordHash.cs); empty: none.</summary>
    public string ModeratorPasswordHash { get; set; } = "";

    /// <summary>Held posts older than this many days are discarded; 0 keeps them for ever.</summary>
    public int MaxDaysToHold { get; set; }

    /// <summary>Tell the poster that their post awaits approval.</summary>
    public bool RespondToPostRequests { get; set; } = true;

    /// <summary>Tell the owners and moderators at once when a post is held.</summary>
    public bool AdminImmedNotify { get; set; } = true;

    /// <summary>
    /// Held posts and subscription requests the moderators are told of one by one per day (UTC);
    /// past it, one note says so and the daily summary lists the rest (0: no limit).
    /// </summary>
    public int MaxModeratorNoticesPerDay { get; set; } = 30;

    /// <summary>What to do with automatic replies posted to the list.</summary>
    public AutoReplyAction AutoReplyAction { get; set; } = AutoReplyAction.Discard;

    /// <summary>Notice bodies this list replaces, by template name (Notices/NoticeTemplates.cs).</summary>
    public Dictionary<string, string> Templates { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Setting names accepted by <c>lists set</c>, with their help text.</summary>
    public static readonly IReadOnlyDictionary<string, string> SettingNames = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["display_name"] = "name shown in the subject prefix and footer",
        ["subject_prefix"] = "prefix added to the Subject (template)",
        ["personalize"] = "none | full",
        ["reply_to"] = "none | list | explicit",
        ["reply_to_address"] = "Reply-To address for reply_to=explicit",
        ["max_message_size_kb"] = "largest post in KiB (0: unlimited)",
        ["nonmember_action"] = "accept | hold | reject | discard",
        ["header"] = "header template (may use \\n for newlines)",
        ["footer"] = "footer template (may use \\n for newlines)",
        ["archive_url"] = "URL for List-Archive",
        ["unsubscribe_url"] = "URL for List-Unsubscribe (https enables RFC 8058 one-click)",
        ["max_autoresponses_per_day"] = "automatic replies to one address per day (0: no limit)",
        ["max_posts_per_hour"] = "posts one member may make within an hour before the next is held (0: no limit)",
        ["emergency"] = "true | false: hold every post for a moderator",
        ["default_member_action"] = "defer | accept | hold | reject | discard: for members whose own action is defer",
        ["administrivia"] = "true | false: hold posts that look like commands for LIST-request",
        ["max_num_recipients"] = "hold posts with this many To:/Cc: recipients or more (0: no limit)",
        ["require_explicit_destination"] = "true | false: hold posts that do not name the list in To: or Cc:",
        ["acceptable_aliases"] = "addresses (or ^regexes) that count as the list, one a line (\\n)",
        ["bounce_matching_headers"] = "suspicious headers, 'Header: regex' one a line (\\n): a match holds the post",
        ["moderator_password"] = "password an Approved: header must carry (stored hashed; empty: none)",
        ["max_days_to_hold"] = "discard held posts after this many days (0: never)",
        ["respond_to_post_requests"] = "true | false: tell posters their post awaits approval",
        ["admin_immed_notify"] = "true | false: tell owners and moderators at once of each held post",
        ["max_moderator_notices_per_day"] = "held posts and subscription requests told to the moderators one by one per day; past it, the daily summary (0: no limit)",
        ["auto_reply_action"] = "discard | hold | accept: automatic replies posted to the list",
        ["welcome_message"] = "body of the welcome notice (template list:user:notice:welcome)",
        ["goodbye_message"] = "body of the goodbye notice (template list:user:notice:goodbye)",
        ["template:NAME"] = "body of the notice template NAME (empty: the default)",
        ["dmarc_mitigate_action"] = "no_mitigation | munge_from | wrap_message | reject | discard",
        ["dmarc_mitigate_unconditionally"] = "true | false: munge or wrap every post, not only From: p=reject/quarantine domains",
        ["dmarc_moderation_notice"] = "reason sent to the poster for dmarc_mitigate_action reject (may use \\n)",
        ["dmarc_wrapped_message_text"] = "text before the original in a wrapped post (may use \\n)",
        ["subscription_policy"] = "confirm | open | moderate | confirm_then_moderate",
        ["unsubscription_policy"] = "confirm | open",
        ["pending_request_life"] = "how long a confirmation or a request awaiting a moderator stays valid (3d, 72h, 1.12:00:00)",
        ["send_welcome_message"] = "true | false: welcome new members",
        ["send_goodbye_message"] = "true | false: say goodbye to members who leave",
        ["one_click_action"] = "remove | disable: what an RFC 8058 one-click unsubscribe does",
        ["process_bounces"] = "true | false: score bounces, disable and remove dead addresses",
        ["bounce_score_threshold"] = "score at which a member's delivery is disabled (default 5.0)",
        ["bounce_info_stale_after"] = "days after which an old bounce score is reset (default 7)",
        ["bounce_you_are_disabled_warnings"] = "notices a disabled member gets before removal (default 3; 0: remove at once)",
        ["bounce_you_are_disabled_warnings_interval"] = "days between those notices (default 7, at least 1)",
        ["bounce_notify_owner_on_disable"] = "true | false: tell the owners when bounces disable a member",
        ["bounce_notify_owner_on_removal"] = "true | false: tell the owners when bounces remove a member",
        ["max_owner_bounce_notices_per_day"] = "members disabled or removed by bounces told to the owners one by one per day (default 20); past it, one note, and the bounce log names the rest (0: no limit)",
        ["bounce_unrecognized_goes_to_list_owner"] = "true | false: forward mail at the bounce addresses that is no bounce we recognize to the owners (up to 100 a day; false: kept in unrecognized)",
        ["verp_probes"] = "true | false: at the threshold send a probe, and disable only if it bounces (forged bounces cannot disable)",
        ["verp_probe_wait"] = "days a probe waits for its bounce before it counts as delivered (default 7, at least 1; longer than your MTA keeps undeliverable mail)",
    };

    /// <summary>Why <paramref name="key"/> is not a setting's name, or null when it is one.</summary>
    public static string? UnknownSetting(string key) =>
        SettingNames.ContainsKey(key) || key.StartsWith("template:", StringComparison.OrdinalIgnoreCase) ? null
            : $"unknown setting '{key}'; known: {string.Join(", ", SettingNames.Keys)}";

    /// <summary>Sets one named setting from text.</summary>
    /// <exception cref="ArgumentException">Unknown key or invalid value.</exception>
    public void Set(string key, string value)
    {
        if (key.StartsWith("template:", StringComparison.OrdinalIgnoreCase))
        {
            SetTemplate(key["template:".Length..], value);
            return;
        }

        switch (key.ToLowerInvariant())
        {
            case "display_name": DisplayName = value.Trim().Length > 0 ? SingleLine(key, value) : throw new ArgumentException($"{key}: cannot be empty (the subject prefix and the footer show it)"); break;
            case "subject_prefix": SubjectPrefix = Placeholders(key, SingleLine(key, value), Mailman.Templates.Template.ListPlaceholders); break;
            case "personalize": Personalize = ParseEnum<Personalization>(key, value); break;
            case "reply_to":
                var policy = ParseEnum<ReplyToPolicy>(key, value);
                ReplyTo = policy == ReplyToPolicy.Explicit && ReplyToAddress.Length == 0
                    ? throw new ArgumentException("reply_to explicit needs an address: set reply_to_address first")
                    : policy;
                break;
            case "reply_to_address":
                ReplyToAddress = value.Length == 0 && ReplyTo == ReplyToPolicy.Explicit
                    ? throw new ArgumentException("reply_to_address: reply_to is explicit and needs it; set reply_to to none or list first")
                    : Address(key, value);
                break;
            case "max_message_size_kb":
                MaxMessageSizeKb = int.TryParse(value, out var kb) && kb >= 0 ? kb : throw new ArgumentException($"{key}: expected a whole number of KiB >= 0, got '{value}'");
                break;
            case "nonmember_action": NonMemberAction = ParseEnum<NonMemberAction>(key, value); break;
            case "header": HeaderTemplate = Placeholders(key, Unescape(value), Mailman.Templates.Template.DecorationPlaceholders); break;
            case "footer": FooterTemplate = Placeholders(key, Unescape(value), Mailman.Templates.Template.DecorationPlaceholders); break;
            case "archive_url": ArchiveUrl = Url(key, value); break;
            case "unsubscribe_url": UnsubscribeUrl = Url(key, value); break;
            case "max_autoresponses_per_day": MaxAutoresponsesPerDay = Whole(key, value); break;
            case "max_posts_per_hour": MaxPostsPerHour = Whole(key, value); break;
            case "emergency": Emergency = Bool(key, value); break;
            case "default_member_action": DefaultMemberAction = ParseEnum<ModerationAction>(key, value); break;
            case "administrivia": Administrivia = Bool(key, value); break;
            case "max_num_recipients": MaxNumRecipients = Whole(key, value); break;
            case "require_explicit_destination": RequireExplicitDestination = Bool(key, value); break;
            case "acceptable_aliases": AcceptableAliases = Aliases(key, value); break;
            case "bounce_matching_headers": BounceMatchingHeaders = HeaderPatterns(key, value); break;
            case "moderator_password":
                ModeratorPasswordHash = value.Length == 0 ? "" : PasswordHash.Create(ModeratorPassword(key, value));
                break;
            case "max_days_to_hold": MaxDaysToHold = Whole(key, value); break;
            case "respond_to_post_requests": RespondToPostRequests = Bool(key, value); break;
            case "admin_immed_notify": AdminImmedNotify = Bool(key, value); break;
            case "max_moderator_notices_per_day": MaxModeratorNoticesPerDay = Whole(key, value); break;
            case "auto_reply_action": AutoReplyAction = ParseEnum<AutoReplyAction>(key, value); break;
            case "welcome_message": SetTemplate(Notices.NoticeTemplates.Welcome, value); break;
            case "goodbye_message": SetTemplate(Notices.NoticeTemplates.Goodbye, value); break;
            case "dmarc_mitigate_action": DmarcMitigateAction = ParseSnake<DmarcMitigateAction>(key, value); break;
            case "dmarc_mitigate_unconditionally": DmarcMitigateUnconditionally = ParseBool(key, value); break;
            case "dmarc_moderation_notice": DmarcModerationNotice = Placeholders(key, Unescape(value), DmarcNoticePlaceholders); break;
            case "dmarc_wrapped_message_text": DmarcWrappedMessageText = Unescape(value); break;
            case "subscription_policy": SubscriptionPolicy = ParseSnake<SubscriptionPolicy>(key, value); break;
            case "unsubscription_policy": UnsubscriptionPolicy = ParseSnake<UnsubscriptionPolicy>(key, value); break;
            case "pending_request_life": PendingRequestLife = Duration(key, value); break;
            case "send_welcome_message": SendWelcomeMessage = ParseBool(key, value); break;
            case "send_goodbye_message": SendGoodbyeMessage = ParseBool(key, value); break;
            case "one_click_action": OneClickAction = ParseSnake<OneClickAction>(key, value); break;
            case "process_bounces": ProcessBounces = ParseBool(key, value); break;
            case "bounce_score_threshold": BounceScoreThreshold = PositiveNumber(key, value); break;
            case "bounce_info_stale_after":
                // 0 would reset every score before its bounce counted: no member ever disabled (review 39).
                BounceInfoStaleAfterDays = Days(key, value) is > 0 and var staleDays ? staleDays : throw new ArgumentException($"{key}: at least 1 day (0 would forget every bounce before it counted)");
                break;
            case "bounce_you_are_disabled_warnings": BounceYouAreDisabledWarnings = Whole(key, value); break;
            case "bounce_you_are_disabled_warnings_interval":
                // Review 133: 0 was taken, and every warning went at the sweeps in a row, the member then removed.
                BounceYouAreDisabledWarningsIntervalDays = Days(key, value) is >= 1 and var interval ? interval
                    : throw new ArgumentException($"{key}: at least 1 day (0 would send every warning at once and remove the member; bounce_you_are_disabled_warnings 0 removes at once)");
                break;
            case "bounce_notify_owner_on_disable": BounceNotifyOwnerOnDisable = ParseBool(key, value); break;
            case "bounce_notify_owner_on_removal": BounceNotifyOwnerOnRemoval = ParseBool(key, value); break;
            case "max_owner_bounce_notices_per_day": MaxOwnerBounceNoticesPerDay = Whole(key, value); break;
            case "bounce_unrecognized_goes_to_list_owner": BounceUnrecognizedGoesToListOwner = ParseBool(key, value); break;
            case "verp_probes": VerpProbes = ParseBool(key, value); break;
            case "verp_probe_wait": VerpProbeWaitDays = Days(key, value) is >= 1 and var days ? days : throw new ArgumentException($"{key}: at least 1 day, got '{value}'"); break;
            default: throw new ArgumentException(UnknownSetting(key));
        }
    }

    /// <summary>Settings as name/value pairs, for <c>lists show</c>.</summary>
    public IEnumerable<KeyValuePair<string, string>> Describe()
    {
        yield return new("fqdn_listname", Name.Fqdn);
        yield return new("list_id", Name.ListId);
        yield return new("display_name", DisplayName);
        yield return new("subject_prefix", SubjectPrefix);
        yield return new("personalize", Personalize.ToString().ToLowerInvariant());
        yield return new("reply_to", ReplyTo.ToString().ToLowerInvariant());
        yield return new("reply_to_address", ReplyToAddress);
        yield return new("max_message_size_kb", MaxMessageSizeKb.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return new("nonmember_action", NonMemberAction.ToString().ToLowerInvariant());
        yield return new("header", HeaderTemplate.Replace("\n", "\\n", StringComparison.Ordinal));
        yield return new("footer", FooterTemplate.Replace("\n", "\\n", StringComparison.Ordinal));
        yield return new("archive_url", ArchiveUrl);
        yield return new("unsubscribe_url", UnsubscribeUrl);
        yield return new("max_autoresponses_per_day", MaxAutoresponsesPerDay.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return new("max_posts_per_hour", MaxPostsPerHour.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return new("subscription_policy", Snake(SubscriptionPolicy.ToString()));
        yield return new("unsubscription_policy", Snake(UnsubscriptionPolicy.ToString()));
        yield return new("pending_request_life", DescribeDuration(PendingRequestLife));
        yield return new("send_welcome_message", SendWelcomeMessage ? "true" : "false");
        yield return new("send_goodbye_message", SendGoodbyeMessage ? "true" : "false");
        yield return new("one_click_action", Snake(OneClickAction.ToString()));
        yield return new("emergency", Lower(Emergency));
        yield return new("default_member_action", DefaultMemberAction.ToString().ToLowerInvariant());
        yield return new("administrivia", Lower(Administrivia));
        yield return new("max_num_recipients", MaxNumRecipients.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return new("require_explicit_destination", Lower(RequireExplicitDestination));
        yield return new("acceptable_aliases", string.Join("\\n", AcceptableAliases));
        yield return new("bounce_matching_headers", string.Join("\\n", BounceMatchingHeaders));
        yield return new("moderator_password", ModeratorPasswordHash.Length > 0 ? "(set)" : "");
        yield return new("max_days_to_hold", MaxDaysToHold.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return new("respond_to_post_requests", Lower(RespondToPostRequests));
        yield return new("admin_immed_notify", Lower(AdminImmedNotify));
        yield return new("max_moderator_notices_per_day", MaxModeratorNoticesPerDay.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return new("auto_reply_action", AutoReplyAction.ToString().ToLowerInvariant());
        foreach (var (name, body) in Templates.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            yield return new("template:" + name, body.Replace("\n", "\\n", StringComparison.Ordinal));
        }
        yield return new("dmarc_mitigate_action", Snake(DmarcMitigateAction.ToString()));
        yield return new("dmarc_mitigate_unconditionally", DmarcMitigateUnconditionally ? "true" : "false");
        yield return new("dmarc_moderation_notice", DmarcModerationNotice.Replace("\n", "\\n", StringComparison.Ordinal));
        yield return new("dmarc_wrapped_message_text", DmarcWrappedMessageText.Replace("\n", "\\n", StringComparison.Ordinal));
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        yield return new("process_bounces", ProcessBounces ? "true" : "false");
        yield return new("bounce_score_threshold", BounceScoreThreshold.ToString("0.0##", invariant));
        yield return new("bounce_info_stale_after", BounceInfoStaleAfterDays.ToString(invariant) + "d");
        yield return new("bounce_you_are_disabled_warnings", BounceYouAreDisabledWarnings.ToString(invariant));
        yield return new("bounce_you_are_disabled_warnings_interval", BounceYouAreDisabledWarningsIntervalDays.ToString(invariant) + "d");
        yield return new("bounce_notify_owner_on_disable", BounceNotifyOwnerOnDisable ? "true" : "false");
        yield return new("bounce_notify_owner_on_removal", BounceNotifyOwnerOnRemoval ? "true" : "false");
        yield return new("max_owner_bounce_notices_per_day", MaxOwnerBounceNoticesPerDay.ToString(invariant));
        yield return new("bounce_unrecognized_goes_to_list_owner", BounceUnrecognizedGoesToListOwner ? "true" : "false");
        yield return new("verp_probes", VerpProbes ? "true" : "false");
        yield return new("verp_probe_wait", VerpProbeWaitDays.ToString(invariant) + "d");
    }

    private void SetTemplate(string name, string value)
    {
        if (!Notices.NoticeTemplates.IsKnown(name))
        {
            throw new ArgumentException($"unknown notice template '{name}'; known: {string.Join(", ", Notices.NoticeTemplates.Names)}");
        }

        var body = Placeholders(name, Unescape(value), Notices.NoticeTemplates.Placeholders);
        if (body.Length == 0)
        {
            Templates.Remove(name);
        }
        else
        {
            Templates[name] = body;
        }
    }

    /// <summary>
    /// The suspicious-header patterns as (header, regex), compiled for linear-time matching
    /// (RegexOptions.NonBacktracking: a header crafted against the pattern cannot make it slow).
    /// </summary>
    public IEnumerable<(string Header, System.Text.RegularExpressions.Regex Pattern)> SuspiciousHeaders()
    {
        foreach (var line in BounceMatchingHeaders)
        {
            if (SplitHeaderPattern(line) is { } p)
            {
                yield return (p.Header, BoundedRegex(p.Pattern));
            }
        }
    }

    /// <summary>A user-supplied regex, matched in linear time, case-insensitively.</summary>
    /// <exception cref="ArgumentException">Not a valid regex.</exception>
    public static System.Text.RegularExpressions.Regex BoundedRegex(string pattern)
        => new(pattern, System.Text.RegularExpressions.RegexOptions.NonBacktracking | System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    private static (string Header, string Pattern)? SplitHeaderPattern(string line)
    {
        var t = line.Trim();
        var colon = t.IndexOf(':', StringComparison.Ordinal);
        return t.Length == 0 || t.StartsWith('#') || colon <= 0 ? null : (t[..colon].Trim(), t[(colon + 1)..].Trim());
    }

    private static List<string> Aliases(string key, string value)
    {
        var result = new List<string>();
        foreach (var line in Unescape(value).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (line.StartsWith('^'))
            {
                Pattern(key, line);
            }
            else if (line.IndexOf('@', StringComparison.Ordinal) <= 0 || line.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
            {
                throw new ArgumentException($"{key}: '{line}' is neither an address nor a regex starting with ^");
            }

            result.Add(line);
        }

        return result;
    }

    private static List<string> HeaderPatterns(string key, string value)
    {
        var result = new List<string>();
        foreach (var line in Unescape(value).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (line.StartsWith('#'))
            {
                continue;
            }

            var p = SplitHeaderPattern(line) ?? throw new ArgumentException($"{key}: '{line}' is not of the form 'Header: regex'");
            if (p.Header.Any(c => c <= ' ' || c >= 127))
            {
                throw new ArgumentException($"{key}: '{p.Header}' is not a header name");
            }

            Pattern(key, p.Pattern);
            result.Add(line);
        }

        return result;
    }

    private static void Pattern(string key, string pattern)
    {
        try
        {
            BoundedRegex(pattern);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            throw new ArgumentException($"{key}: '{pattern}' is not a usable regex: {e.Message}");
        }
    }

    /// <summary>At least 8 characters; none a control character; no white space at either end (an Approved: value is read trimmed).</summary>
    private static string ModeratorPassword(string key, string value)
    {
        // A short one is found everywhere a post must not show it ("a" in every Date:): every
        // approved post would be held (review 57).
        return value.Any(char.IsControl) ? throw new ArgumentException($"{key}: control characters are not allowed")
            : value.Trim().Length != value.Length ? throw new ArgumentException($"{key}: white space at either end would never match (an Approved: value is read without it)")
            : value.Length < MinModeratorPassword ? throw new ArgumentException($"{key}: at least {MinModeratorPassword} characters (a short one shows up in ordinary mail, and every post it approves is held)")
            : value;
    }

    /// <summary>The shortest moderator password accepted.</summary>
    public const int MinModeratorPassword = 8;

    private static bool Bool(string key, string value) => value.Trim().ToLowerInvariant() switch
    {
        "true" or "yes" or "on" or "1" => true,
        "false" or "no" or "off" or "0" => false,
        _ => throw new ArgumentException($"{key}: expected true or false, got '{value}'"),
    };

    private static string Lower(bool value) => value ? "true" : "false";

    /// <summary>A whole number >= 0.</summary>
    private static int Whole(string key, string value)
        => int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"{key}: expected a whole number >= 0, got '{value}'");

    /// <summary>"3d", "72h", "90m", "30s", "2w", or a .NET TimeSpan ("3.00:00:00"); positive, at most a year.</summary>
    internal static TimeSpan Duration(string key, string value)
    {
        var v = value.Trim().ToLowerInvariant();
        TimeSpan result;
        if (v.Length >= 2 && "smhdw".Contains(v[^1], StringComparison.Ordinal)
            && int.TryParse(v[..^1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n <= 100_000)
        {
            result = v[^1] switch
            {
                's' => TimeSpan.FromSeconds(n),
                'm' => TimeSpan.FromMinutes(n),
                'h' => TimeSpan.FromHours(n),
                'd' => TimeSpan.FromDays(n),
                _ => TimeSpan.FromDays(7 * n),
            };
        }
        else if (v.Length > 0 && v.All(char.IsAsciiDigit))
        {
            // .NET reads a bare number as days; one who types 90 may mean minutes (review 94).
            throw new ArgumentException($"{key}: '{value}' has no unit: say {v}m, {v}h or {v}d");
        }
        else if (!TimeSpan.TryParse(v, System.Globalization.CultureInfo.InvariantCulture, out result))
        {
            throw new ArgumentException($"{key}: expected a duration such as 3d, 72h or 1.12:00:00, got '{value}'");
        }

        return result > TimeSpan.Zero && result <= TimeSpan.FromDays(366)
            ? result
            : throw new ArgumentException($"{key}: must be positive and at most a year, got '{value}'");
    }

    private static string DescribeDuration(TimeSpan t)
        => t.Ticks % TimeSpan.TicksPerDay == 0 ? $"{t.Days}d"
            : t.Ticks % TimeSpan.TicksPerHour == 0 ? $"{(long)t.TotalHours}h"
            : t.ToString("c", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Whole days, as "7" or "7d" (Mailman compares bounce dates by the day).</summary>
    private static int Days(string key, string value)
    {
        var v = value.Trim();
        if (v.EndsWith('d') || v.EndsWith('D'))
        {
            v = v[..^1];
        }

        return int.TryParse(v, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n <= 36_500
            ? n
            : throw new ArgumentException($"{key}: expected a whole number of days (7 or 7d), got '{value}'");
    }

    /// <summary>A number > 0 (5, 2.5).</summary>
    private static double PositiveNumber(string key, string value)
        => double.TryParse(value, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var d) && d > 0 && d < 1e6
            ? d
            : throw new ArgumentException($"{key}: expected a number > 0, got '{value}'");

    private static T ParseEnum<T>(string key, string value)
        where T : struct, Enum
        => Enum.TryParse<T>(value, ignoreCase: true, out var v) && Enum.IsDefined(v) && !int.TryParse(value, out _)
            ? v
            : throw new ArgumentException($"{key}: expected one of {string.Join(" | ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}, got '{value}'");

    // Mailman 3 spells enum values in snake case (munge_from); MungeFrom is the C# name.
    private static T ParseSnake<T>(string key, string value)
        where T : struct, Enum
    {
        var wanted = value.Trim().ToLowerInvariant();
        foreach (var v in Enum.GetValues<T>())
        {
            if (Snake(v.ToString()) == wanted)
            {
                return v;
            }
        }

        throw new ArgumentException($"{key}: expected one of {string.Join(" | ", Enum.GetNames<T>().Select(Snake))}, got '{value}'");
    }

    /// <summary>MungeFrom → munge_from.</summary>
    internal static string Snake(string name)
        => string.Concat(name.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "_" : "") + char.ToLowerInvariant(c) : c.ToString()));

    private static bool ParseBool(string key, string value)
        => value.Trim().ToLowerInvariant() switch
        {
            "true" or "yes" or "on" or "1" => true,
            "false" or "no" or "off" or "0" => false,
            _ => throw new ArgumentException($"{key}: expected true or false, got '{value}'"),
        };

    // Values that end up in headers may not carry line breaks (no header injection).
    private static readonly IReadOnlySet<string> DmarcNoticePlaceholders = new HashSet<string>(Mailman.Templates.Template.ListPlaceholders.Append("listowner"), StringComparer.Ordinal);

    /// <summary>
    /// A template may only name placeholders its expansion fills: an unknown one would go out to
    /// every member as written. "$$" and a '$' not followed by a name ("$5") stay literal.
    /// </summary>
    private static string Placeholders(string key, string template, IReadOnlySet<string> known)
    {
        if (Mailman.Templates.Template.UnclosedBrace(template) is var at and >= 0)
        {
            // Sent as written, "${user_address" in every copy's footer (review 39).
            var rest = template[at..].ReplaceLineEndings(" ");
            throw new ArgumentException($"{key}: '{(rest.Length > 30 ? rest[..30] + "..." : rest)}' has no closing brace ($$ for a dollar sign)");
        }

        var unknown = Mailman.Templates.Template.PlaceholderNames(template).Where(n => !known.Contains(n)).Distinct(StringComparer.Ordinal).ToList();
        return unknown.Count == 0
            ? template
            : throw new ArgumentException($"{key}: unknown placeholder {string.Join(", ", unknown.Select(n => "$" + n))}; known: {string.Join(", ", known.Order(StringComparer.Ordinal).Select(n => "$" + n))} ($$ for a dollar sign)");
    }

    /// <summary>One mailbox, "addr@domain" or "Name &lt;addr@domain&gt;": what the Reply-To handler writes (empty clears it).</summary>
    private static string Address(string key, string value)
    {
        value = SingleLine(key, value.Trim());
        if (value.Length > 0 && !(MimeKit.MailboxAddress.TryParse(value, out var mailbox) && mailbox.Address.IndexOf('@', StringComparison.Ordinal) > 0 && !mailbox.Address.EndsWith('@')))
        {
            throw new ArgumentException($"{key}: expected one email address such as dev-replies@example.org, got '{value}'");
        }

        return value;
    }

    private static string SingleLine(string key, string value)
        => value.Any(char.IsControl) ? throw new ArgumentException($"{key}: control characters and line breaks are not allowed") : value;

    private static string Url(string key, string value)
    {
        value = SingleLine(key, value);
        if (value.AsSpan().IndexOfAny("<> \"") >= 0)
        {
            // Uri takes (and escapes) them; written in List-Unsubscribe's <...> they would close it
            // and open a second URL of anyone's choosing (review 40).
            throw new ArgumentException($"{key}: one URL without spaces, quotes or angle brackets (percent-encode them), got '{value}'");
        }

        if (value.Length > 0 && !(Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" or "mailto"))
        {
            throw new ArgumentException($"{key}: expected an absolute http, https or mailto URL, got '{value}'");
        }

        return value;
    }

    private static string Unescape(string value) => value.Replace("\\n", "\n", StringComparison.Ordinal);
}

/// <summary>Source-generated serialization of the settings column.</summary>
[JsonSerializable(typeof(MailingList))]
internal sealed partial class MailingListJson : JsonSerializerContext;
