// Mailman 3's template placeholders: $name and ${name}. Unknown names are left as written, so
// a footer with a stray '$' or a price ("$5") survives. "$$" is a literal dollar sign.
using System.Text;

namespace Mailman.Templates;

/// <summary>Expands <c>$name</c> / <c>${name}</c> placeholders.</summary>
public static class Template
{
    /// <summary>Placeholders that differ per recipient; filled at the point of sending.</summary>
    public static readonly IReadOnlySet<string> RecipientPlaceholders = new HashSet<string>(StringComparer.Ordinal)
    {
        "user_address", "user_name", "user_delivered_to", "user_email",
    };

    /// <summary>The names <see cref="ListValues"/> fills.</summary>
    public static readonly IReadOnlySet<string> ListPlaceholders = new HashSet<string>(StringComparer.Ordinal)
    {
        "list_name", "display_name", "list_id", "fqdn_listname", "domain", "mail_host", "listinfo_uri", "archive_url", "unsubscribe_url", "request_email", "owner_email",
    };

    /// <summary>What a header or footer may name: the list's placeholders and the recipient's.</summary>
    public static readonly IReadOnlySet<string> DecorationPlaceholders = new HashSet<string>(ListPlaceholders.Concat(RecipientPlaceholders), StringComparer.Ordinal);

    /// <summary>
    /// The placeholder names <paramref name="template"/> uses, as <see cref="Expand"/> reads them:
    /// "$name" where the name starts with a letter or '_', and every "${name}"; "$$" is not one.
    /// </summary>
    public static IEnumerable<string> PlaceholderNames(string template)
    {
        var names = new List<string>();
        Expand(template, name =>
        {
            if (name.Length > 0 && (char.IsAsciiLetter(name[0]) || name[0] == '_' || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_')))
            {
                names.Add(name);
            }

            return null;
        });
        return names;
    }

    /// <summary>Where a "${" has no closing brace (it would be sent as written), or -1.</summary>
    public static int UnclosedBrace(string template)
    {
        for (var i = template.IndexOf('$', StringComparison.Ordinal); i >= 0 && i + 1 < template.Length; i = template.IndexOf('$', i + 1))
        {
            if (template[i + 1] == '$')
            {
                i++;
            }
            else if (template[i + 1] == '{' && template.IndexOf('}', i + 2) < 0)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Expands <paramref name="template"/>; <paramref name="lookup"/> returns null for names it does not know.</summary>
    public static string Expand(string template, Func<string, string?> lookup)
    {
        if (template.IndexOf('$', StringComparison.Ordinal) < 0)
        {
            return template;
        }

        var sb = new StringBuilder(template.Length + 64);
        var i = 0;
        while (i < template.Length)
        {
            var c = template[i];
            if (c != '$' || i + 1 >= template.Length)
            {
                sb.Append(c);
                i++;
                continue;
            }

            if (template[i + 1] == '$')
            {
                sb.Append('$');
                i += 2;
                continue;
            }

            int nameStart, nameEnd, next;
            if (template[i + 1] == '{')
            {
                var close = template.IndexOf('}', i + 2);
                if (close < 0)
                {
                    sb.Append(c);
                    i++;
                    continue;
                }

                nameStart = i + 2;
                nameEnd = close;
                next = close + 1;
            }
            else
            {
                nameStart = i + 1;
                nameEnd = nameStart;
                while (nameEnd < template.Length && (char.IsAsciiLetterOrDigit(template[nameEnd]) || template[nameEnd] == '_'))
                {
                    nameEnd++;
                }

                next = nameEnd;
            }

            var value = nameEnd > nameStart ? lookup(template[nameStart..nameEnd]) : null;
            if (value is null)
            {
                sb.Append(template, i, next - i);
            }
            else
            {
                sb.Append(value);
            }

            i = next;
        }

        return sb.ToString();
    }

    /// <summary>The list-level placeholders of <paramref name="list"/>.</summary>
    public static Func<string, string?> ListValues(Lists.MailingList list) => name => name switch
    {
        "list_name" => list.Name.LocalPart,
        "display_name" => string.IsNullOrEmpty(list.DisplayName) ? list.Name.LocalPart : list.DisplayName,
        "list_id" => list.Name.ListId,
        "fqdn_listname" => list.Name.Fqdn,
        "domain" or "mail_host" => list.Name.Domain,
        "listinfo_uri" or "archive_url" => list.ArchiveUrl,
        "unsubscribe_url" => list.UnsubscribeUrl,
        "request_email" => list.Name.RequestAddress,
        "owner_email" => list.Name.OwnerAddress,
        _ => null,
    };
}
