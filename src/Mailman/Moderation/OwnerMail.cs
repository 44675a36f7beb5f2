// Mail to LIST-owner@: who it is forwarded to, and when it is kept instead. Forwarded to the
// list's owners (never to an address of a list on this server), else to the site owner. Kept, not
// forwarded, when forwarding could loop: mail that already went through this list (its
// X-BeenThere: the post's, or the forward's own), mail from an address of the list itself, and an
// owner's automatic reply to it.
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Notices;
using MimeKit;

namespace Mailman.Moderation;

public static class OwnerMail
{
    /// <summary>The trace header a forwarded copy carries: X-BeenThere: LIST-owner@HOST.</summary>
    public const string TraceHeader = "X-BeenThere";

    /// <summary>Why <paramref name="message"/> must not be forwarded to the owners, or null when it may.</summary>
    public static string? WhyKeep(ListStore store, MailingList list, MimeMessage message, string? envelopeSender)
    {
        var name = list.Name;
        foreach (var header in message.Headers)
        {
            if (header.Field.Equals(TraceHeader, StringComparison.OrdinalIgnoreCase))
            {
                var value = header.Value.Trim();
                if (value.Equals(name.Fqdn, StringComparison.OrdinalIgnoreCase) || value.Equals(name.OwnerAddress, StringComparison.OrdinalIgnoreCase))
                {
                    return $"loop: it already went through {name.Fqdn} ({TraceHeader}: {value})";
                }
            }
        }

        var from = message.From.Mailboxes.Select(m => m.Address).Take(20).ToList();
        var envelope = (envelopeSender ?? "").Trim().Trim('<', '>').Trim();
        foreach (var address in from.Append(envelope).Where(a => a.Length > 0))
        {
            if (ListAddress.TryResolve(address, out var resolved, out _) && resolved.List == name)
            {
                return $"loop: it comes from the list itself ({address})";
            }
        }

        if (AutomaticMail.AutoSubmitted(message.Headers) is { } automatic
            && from.Append(envelope).Any(a => a.Length > 0 && store.HasRole(name, ListRole.Owner, a)))
        {
            return $"loop: an owner's automatic reply ({automatic})";
        }

        return null;
    }

    /// <summary>
    /// Who owner mail goes to: the owners, else the site owner; never an address of a list here
    /// (those owners are <paramref name="skipped"/>).
    /// </summary>
    public static IReadOnlyList<Member> Recipients(ListStore store, MailingList list, MailmanOptions options, out IReadOnlyList<string> skipped)
    {
        var all = store.Roles(list.Name, ListRole.Owner);
        var owners = all.Where(o => !HeldPosts.IsListAddress(store, o.Address)).ToList();
        skipped = [.. all.Where(o => !owners.Contains(o)).Select(o => o.Address)];
        if (owners.Count == 0 && options.SiteOwner.Length > 0 && !HeldPosts.IsListAddress(store, options.SiteOwner))
        {
            owners.Add(new Member(options.SiteOwner, "Site owner"));
        }

        return owners;
    }
}
