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

    public SubscriptionPolicy SubscriptionPolicy { get; set; } = SubscriptionPolicy.Confirm;

    public UnsubscriptionPolicy UnsubscriptionPolicy { get; set; } = UnsubscriptionPolicy.Confirm;

    /// <summary>How long a confirmation token or a subscription awaiting a moderator stays valid.</summary>
    public TimeSpan PendingRequestLife { get; set; } = TimeSpan.FromDays(3);

    public bool SendWelcomeMessage { get; set; } = true;

    public bool SendGoodbyeMessage { get; set; } = true;

    public OneClickAction OneClickAction { get; set; } = OneClickAction.Remove;

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
    };

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
            case "display_name": DisplayName = SingleLine(key, value); break;
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
            default: throw new ArgumentException($"unknown setting '{key}'; known: {string.Join(", ", SettingNames.Keys)}");
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
        yield return new("subscription_policy", Snake(SubscriptionPolicy.ToString()));
        yield return new("unsubscription_policy", Snake(UnsubscriptionPolicy.ToString()));
        yield return new("pending_request_life", DescribeDuration(PendingRequestLife));
        yield return new("send_welcome_message", SendWelcomeMessage ? "true" : "false");
        yield return new("send_goodbye_message", SendGoodbyeMessage ? "true" : "false");
        yield return new("one_click_action", Snake(OneClickAction.ToString()));
        foreach (var (name, body) in Templates.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            yield return new("template:" + name, body.Replace("\n", "\\n", StringComparison.Ordinal));
        }
        yield return new("dmarc_mitigate_action", Snake(DmarcMitigateAction.ToString()));
        yield return new("dmarc_mitigate_unconditionally", DmarcMitigateUnconditionally ? "true" : "false");
        yield return new("dmarc_moderation_notice", DmarcModerationNotice.Replace("\n", "\\n", StringComparison.Ordinal));
        yield return new("dmarc_wrapped_message_text", DmarcWrappedMessageText.Replace("\n", "\\n", StringComparison.Ordinal));
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
