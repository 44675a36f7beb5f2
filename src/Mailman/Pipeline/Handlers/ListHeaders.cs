// RFC 2369 List-Post, List-Help, List-Subscribe, List-Unsubscribe, List-Archive and, when the
// unsubscribe URL is HTTPS, RFC 8058 List-Unsubscribe-Post. Headers of an upstream list are replaced.
using MimeKit;

namespace Mailman.Pipeline.Handlers;

public sealed class ListHeaders : IHandler
{
    private static readonly string[] Replaced =
    [
        "List-Post", "List-Help", "List-Subscribe", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Archive", "List-Owner",
    ];

    public string Name => "list-headers";

    public string Description => "add the RFC 2369 List-* headers and RFC 8058 one-click unsubscribe";

    public HandlerResult Process(PostContext post)
    {
        var list = post.List;
        var name = list.Name;
        var headers = post.Message.Headers;
        foreach (var field in Replaced)
        {
            headers.RemoveAll(field);
        }

        headers.Add("List-Post", $"<mailto:{name.Fqdn}>");
        headers.Add("List-Help", $"<mailto:{name.RequestAddress}?subject=help>");
        headers.Add("List-Owner", $"<mailto:{name.OwnerAddress}>");
        headers.Add("List-Subscribe", $"<mailto:{name.LocalPart}-join@{name.Domain}>");
        var unsubscribe = $"<mailto:{name.LocalPart}-leave@{name.Domain}>";
        if (!string.IsNullOrEmpty(list.UnsubscribeUrl))
        {
            unsubscribe = $"<{list.UnsubscribeUrl}>, " + unsubscribe;
        }

        headers.Add("List-Unsubscribe", unsubscribe);
        if (list.UnsubscribeUrl.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            // RFC 8058 §3.1: only with an HTTPS URI in List-Unsubscribe.
            headers.Add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
        }

        if (!string.IsNullOrEmpty(list.ArchiveUrl))
        {
            headers.Add("List-Archive", $"<{list.ArchiveUrl}>");
        }

        return HandlerResult.Continue;
    }
}
