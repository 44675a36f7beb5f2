// The one-click unsubscribe endpoint (RFC 8058): POST /u/LIST/ADDRESS/TOKEN with the body
// "List-Unsubscribe=One-Click" unsubscribes at once and answers 200 (no confirmation, cookies or
// redirects); GET shows a page with one button that POSTs. Every failure (shape, list, member,
// token, body) answers 400 with the same page. The link is checked for shape before anything
// touches the database, the HMAC is computed for members and non-members alike, and the effect is
// the same call a confirmed leave makes (Requests/Membership).
using System.Text;
using Mailman.Lists;
using Mailman.Requests;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Mailman.Http;

public sealed partial class OneClickEndpoint(OneClickLinks links, ListStoreFactory lists, Membership membership, TimeProvider time, ILogger<OneClickEndpoint> logger)
{
    /// <summary>Largest request body read (a one-click body is 26 bytes; a multipart one a few hundred).</summary>
    public const int MaxBodyBytes = 4096;

    /// <summary>
    /// Answers one request: /u/LIST/ADDRESS/TOKEN by GET or POST; anything else under /u/ is a
    /// broken link (the failure page); any other path is not found. No routing tables: three
    /// path segments are all there is.
    /// </summary>
    public Task Handle(HttpContext context)
    {
        var segments = (context.Request.Path.Value ?? "").Split('/');
        if (segments.Length < 2 || segments[0].Length != 0 || segments[1] != "u")
        {
            context.Response.StatusCode = 404;
            return Task.CompletedTask;
        }

        var method = context.Request.Method;
        if (!HttpMethods.IsGet(method) && !HttpMethods.IsPost(method))
        {
            context.Response.StatusCode = 405;
            context.Response.Headers.Allow = "GET, POST";
            return Task.CompletedTask;
        }

        var link = segments.Length == 5 ? (segments[2], segments[3], segments[4]) : default;
        if (link == default)
        {
            logger.LogInformation("One-click {Method} to {Path} refused: malformed link", method, Printable(context.Request.Path));
            return Answer(context, 400, OneClickPages.Failed);
        }

        return HttpMethods.IsGet(method) ? Get(context, link) : Post(context, link);
    }

    private Task Get(HttpContext context, (string List, string Address, string Token) link)
    {
        var target = Check(context, "GET", link);
        return target is null ? Answer(context, 400, OneClickPages.Failed) : Answer(context, 200, OneClickPages.Ask(target.Value.List.Name.Fqdn, target.Value.Address));
    }

    private async Task Post(HttpContext context, (string List, string Address, string Token) link)
    {
        var body = await ReadBody(context);
        if (body is null || !IsOneClick(body, context.Request.ContentType))
        {
            logger.LogInformation("One-click POST to {Path} refused: the body is not List-Unsubscribe=One-Click", Printable(context.Request.Path));
            await Answer(context, 400, OneClickPages.Failed);
            return;
        }

        var target = Check(context, "POST", link);
        if (target is not { } t)
        {
            await Answer(context, 400, OneClickPages.Failed);
            return;
        }

        var left = membership.Leave(t.List, t.Address, "one-click unsubscribe", Membership.NewTrigger(time), disable: t.List.OneClickAction == OneClickAction.Disable);
        if (!left.Changed)
        {
            logger.LogInformation("One-click unsubscribe of {Recipient} from {ListId}: already done", t.Address, t.List.Name.Fqdn);
        }

        await Answer(context, 200, OneClickPages.Done(t.List.Name.Fqdn, t.Address));
    }

    // The list and member a valid link names, or null (logged) for any failure.
    private (MailingList List, string Address)? Check(HttpContext context, string method, (string List, string Address, string Token) link)
    {
        if (!OneClickLinks.TryParse(link.List, link.Address, link.Token, out var name, out var address))
        {
            logger.LogInformation("One-click {Method} to {Path} refused: malformed link", method, Printable(context.Request.Path));
            return null;
        }

        MailingList? list;
        MemberRecord? member;
        IReadOnlyList<string> merged;
        using (var store = lists.Open())
        {
            list = store.FindList(name!);
            member = list is null ? null : store.FindMember(list.Name, address);
            merged = member is null ? [] : store.MergedSerials(list!.Name, address);
        }

        // The HMAC is computed whether or not the address is a member: no timing difference.
        // A copy sent to a spelling an upgrade merged into this member carries that row's serial.
        var valid = links.Verify(name!, address, member?.Serial ?? "", link.Token);
        foreach (var serial in merged)
        {
            valid |= links.Verify(name!, address, serial, link.Token);
        }
        if (list is null || member is null || !valid)
        {
            logger.LogInformation("One-click {Method} for {Recipient} of {ListId} refused: {Reason}", method, address, name!.Fqdn,
                list is null ? "no such list" : member is null ? "not a member" : "the token does not match (forged, or from before a re-subscription)");
            return null;
        }

        return (list, member.Address);
    }

    // RFC 8058 §3.1: "List-Unsubscribe=One-Click", form-urlencoded or multipart/form-data.
    private static bool IsOneClick(byte[] body, string? contentType)
    {
        var text = Encoding.ASCII.GetString(body);
        return contentType is not null && contentType.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            ? MultipartOneClick().IsMatch(text)
            : text.Trim().Split('&').Any(pair => pair == "List-Unsubscribe=One-Click");
    }

    private static async Task<byte[]?> ReadBody(HttpContext context)
    {
        if (context.Request.ContentLength > MaxBodyBytes)
        {
            return null;
        }

        var buffer = new byte[MaxBodyBytes + 1];
        var total = 0;
        int n;
        while (total < buffer.Length && (n = await context.Request.Body.ReadAsync(buffer.AsMemory(total), context.RequestAborted)) > 0)
        {
            total += n;
        }

        return total > MaxBodyBytes ? null : buffer[..total];
    }

    private static Task Answer(HttpContext context, int status, byte[] page)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "text/html; charset=utf-8";
        response.ContentLength = page.Length;
        response.Headers.CacheControl = "no-store";
        response.Headers["X-Content-Type-Options"] = "nosniff";
        response.Headers["Referrer-Policy"] = "no-referrer";
        response.Headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";
        return response.Body.WriteAsync(page, context.RequestAborted).AsTask();
    }

    private static string Printable(PathString path) => Member.Sanitize(path.Value ?? "");

    // A form-data part named List-Unsubscribe (quoted or not) whose value is One-Click.
    [System.Text.RegularExpressions.GeneratedRegex("Content-Disposition:[^\r\n]*;\\s*name=\"?List-Unsubscribe\"?(;[^\r\n]*)?\r\n(?:[^\r\n]+\r\n)*\r\nOne-Click\r\n", System.Text.RegularExpressions.RegexOptions.IgnoreCase)]
    private static partial System.Text.RegularExpressions.Regex MultipartOneClick();
}
