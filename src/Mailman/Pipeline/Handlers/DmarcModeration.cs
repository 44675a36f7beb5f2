// Incoming check: looks up the DMARC policy of the post's From: domain once (Dmarc/), records it
// in the entry metadata for the dmarc handler, and rejects or discards the post when the list's
// dmarc_mitigate_action says so (Mailman 3's dmarc-mitigation rule). A DNS failure never holds
// or rejects a post: the pipeline munges it instead.
using System.Text.RegularExpressions;
using Mailman.Dmarc;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.Templates;
using Microsoft.Extensions.Logging;

namespace Mailman.Pipeline.Handlers;

public sealed partial class DmarcModeration(DmarcServices dmarc) : IHandler
{
    /// <summary>Mailman 3's default reason for dmarc_mitigate_action reject (rules/dmarc.py).</summary>
    public const string DefaultNotice =
        "You are not allowed to post to this mailing list From: a domain which publishes a DMARC policy of reject or quarantine, "
        + "and your message has been automatically rejected.  If you think that your messages are being rejected in error, "
        + "contact the mailing list owner at ${listowner}.";

    public string Name => "dmarc-moderation";

    public string Description => "look up the From: domain's DMARC policy; reject or discard per dmarc_mitigate_action";

    public HandlerResult Process(PostContext post)
    {
        var list = post.List;
        var action = list.DmarcMitigateAction;
        if (action == DmarcMitigateAction.NoMitigation)
        {
            // As Mailman 3: no lookup for a list that would do nothing with the answer.
            return HandlerResult.Continue;
        }

        var domains = FromDomains(post);
        if (list.DmarcMitigateUnconditionally && action is DmarcMitigateAction.MungeFrom or DmarcMitigateAction.WrapMessage)
        {
            post.Metadata.Dmarc = new DmarcNote(string.Join(",", domains), "unconditional", Mitigate: true);
            return HandlerResult.Continue;
        }

        if (TooManyDomains(domains) is { } many)
        {
            post.Metadata.Dmarc = many;
            dmarc.Log.LogWarning("DMARC: post {MessageId} to {ListId} has more than {Count} From: domains ({Domains}): mitigated without a lookup",
                post.Metadata.MessageId, list.Name.Fqdn, DmarcPolicyLookup.MaximumDomainsPerPost, many.Domain);
            return HandlerResult.Continue;
        }

        var result = dmarc.Lookup.LookupAll(domains);
        if (result is null)
        {
            post.Metadata.Dmarc = new DmarcNote("", "no-from", Mitigate: false);
            return HandlerResult.Continue;
        }

        post.Metadata.Dmarc = new DmarcNote(result.Domain, result.PolicyName, result.NeedsMitigation);
        if (!result.NeedsMitigation || result.Verdict == DmarcVerdict.DnsError || action is DmarcMitigateAction.MungeFrom or DmarcMitigateAction.WrapMessage)
        {
            // reject/discard act on a policy found, never on a DNS outage: the dmarc handler munges those.
            return HandlerResult.Continue;
        }

        dmarc.Log.LogWarning("DMARC mitigation of post {MessageId} to {ListId}: From: domain {Domain}, policy {Policy} ({Detail}), action {Action}",
            post.Metadata.MessageId, list.Name.Fqdn, result.Domain, result.PolicyName, result.Detail, MailingList.Snake(action.ToString()));
        return action == DmarcMitigateAction.Reject
            ? HandlerResult.Reject(Notice(list))
            : HandlerResult.Discard($"DMARC moderation: {result.Domain} publishes {result.PolicyName}");
    }

    /// <summary>
    /// The From: domains, in order (empty for an address without one): those of the mailboxes
    /// MimeKit parsed, then any other domain written after an @ in any From: header as it came
    /// (encoded words not decoded), outside quoted strings and comments. A From: MimeKit cannot
    /// parse whole ("bob@none.test, Anne Smith anne@reject.test", an unclosed comment, a second
    /// From: header) still names its domains to a lenient receiver (reviews 27, 29, 30). The scan
    /// stops once there are more than <see cref="DmarcPolicyLookup.MaximumDomainsPerPost"/>.
    /// </summary>
    public static List<string> FromDomains(PostContext post)
    {
        var domains = post.Message.From.Mailboxes.Select(m => m.Address.LastIndexOf('@') is var at && at >= 0 ? m.Address[(at + 1)..] : "").ToList();
        var seen = new HashSet<string>(domains, StringComparer.OrdinalIgnoreCase);
        foreach (var header in post.Message.Headers)
        {
            if (header.Id != MimeKit.HeaderId.From)
            {
                continue;
            }

            foreach (Match match in WrittenDomain().Matches(Bare(System.Text.Encoding.UTF8.GetString(header.RawValue))))
            {
                var domain = match.Groups[1].Value.TrimEnd('.');
                if (domain.Length > 0 && seen.Add(domain))
                {
                    domains.Add(domain);
                    if (seen.Count > DmarcPolicyLookup.MaximumDomainsPerPost + 1)
                    {
                        return domains;
                    }
                }
            }
        }

        return domains;
    }

    /// <summary>
    /// More distinct From: domains than are looked up: one past the fifth may publish p=reject
    /// (review 30: five decoys first). Mitigated like a DNS failure, never rejected for it.
    /// </summary>
    public static DmarcNote? TooManyDomains(List<string> domains)
        => domains.Where(d => d.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase).Count() > DmarcPolicyLookup.MaximumDomainsPerPost
            ? new DmarcNote(string.Join(",", domains.Where(d => d.Length > 0).Take(DmarcPolicyLookup.MaximumDomainsPerPost)) + ",...", "too-many-domains", Mitigate: true)
            : null;

    // Quoted strings ("anne@reject.test via Dev") and comments ("(sent via anne@reject.test)")
    // blanked out, their delimiters kept: neither names the address.
    private static string Bare(string value)
    {
        if (value.IndexOfAny(['"', '(']) < 0)
        {
            return value;
        }

        var chars = value.ToCharArray();
        var quoted = false;
        var depth = 0;
        for (var i = 0; i < chars.Length; i++)
        {
            var c = chars[i];
            if (c == '\\' && (quoted || depth > 0) && i + 1 < chars.Length)
            {
                chars[i] = chars[i + 1] = ' ';
                i++;
            }
            else if (!quoted && c == '(')
            {
                depth++;
            }
            else if (!quoted && depth > 0 && c == ')')
            {
                depth--;
            }
            else if (depth == 0 && c == '"')
            {
                quoted = !quoted;
            }
            else if (quoted || depth > 0)
            {
                chars[i] = ' ';
            }
        }

        return new string(chars);
    }

    // "@domain" as written in a header value: up to a space, bracket, quote, comma or another @.
    [GeneratedRegex(@"@([^\s<>()\[\]"",;:@\\]+)", RegexOptions.NonBacktracking)]
    private static partial Regex WrittenDomain();

    /// <summary>The list's notice, or Mailman 3's, with $listowner and the list placeholders expanded.</summary>
    public static string Notice(MailingList list)
    {
        var text = string.IsNullOrWhiteSpace(list.DmarcModerationNotice) ? DefaultNotice : list.DmarcModerationNotice;
        var values = Template.ListValues(list);
        return Template.Expand(text, name => name == "listowner" ? list.Name.OwnerAddress : values(name));
    }
}
