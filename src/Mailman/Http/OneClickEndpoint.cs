// The one-click unsubscribe endpoint (RFC 8058): POST /u/LIST/ADDRESS/TOKEN with the body
// "List-Unsubscribe=One-Click" unsubscribes at once and answers 200 (no confirmation, cookies or
// redirects); GET shows a page with one button that POSTs. Every failure (shape, list, member,
// token, body) answers 400 with the same page. The link is checked for shape before anything
// touches the database, the HMAC is computed for members and non-members alike, and the effect is
// the same call a confirmed leave makes (Requests/Membership).
//
// Anyone on the internet can send requests: a refused request's line (and a spent link's
// "already done") is written for the first RefusalsLogged of each minute only, the rest counted
// in one line when the minute ends (review 37: 30,000 bad links a second filled mailman- and
// subscribe-DATE.log in minutes). Logged paths never carry the token. A database locked past the
// store's busy timeout (a backup, a long import) is a 503 with Retry-After: the sender's client
// tries again; nothing is half done.
using System.Text;
using Mailman.Lists;
using Mailman.Requests;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Mailman.Http;

public sealed partial class OneClickEndpoint(OneClickLinks links, ListStoreFactory lists, Membership membership, TimeProvider time, ILogger<OneClickEndpoint> logger) : IDisposable
{
    /// <summary>Largest request body read (a one-click body is 26 bytes; a multipart one a few hundred).</summary>
    public const int MaxBodyBytes = 4096;

    /// <summary>Refused requests logged one by one in a minute; the rest are counted.</summary>
    public const int RefusalsLogged = 20;

    private readonly object _gate = new();
    private long _window = -1;
    private int _logged;
    private long _unlogged;
    private ITimer? _countTimer;

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
            Malformed(context, method);
            return Answer(context, 400, OneClickPages.Failed);
        }

        return HttpMethods.IsGet(method) ? Get(context, link) : Post(context, link);
    }

    private Task Get(HttpContext context, (string List, string Address, string Token) link)
    {
        (MailingList List, string Address)? target;
        try
        {
            target = Check(context, "GET", link);
        }
        catch (SqliteException e) when (IsBusy(e))
        {
            return Busy(context, "GET", e);
        }

        return target is null ? Answer(context, 400, OneClickPages.Failed) : Answer(context, 200, OneClickPages.Ask(target.Value.List.Name.Fqdn, target.Value.Address));
    }

    private async Task Post(HttpContext context, (string List, string Address, string Token) link)
    {
        var body = await ReadBody(context);
        if (body is null || !IsOneClick(body, context.Request.ContentType))
        {
            if (MayLog())
            {
                logger.LogInformation("One-click POST to {Path} refused: the body is not List-Unsubscribe=One-Click", Printable(context.Request.Path));
            }

            await Answer(context, 400, OneClickPages.Failed);
            return;
        }

        (MailingList List, string Address)? target = null;
        try
        {
            target = Check(context, "POST", link);
            if (target is not { } t)
            {
                await Answer(context, 400, OneClickPages.Failed);
                return;
            }

            var left = membership.Leave(t.List, t.Address, "one-click unsubscribe", Membership.NewTrigger(time), disable: t.List.OneClickAction == OneClickAction.Disable);
            if (!left.Changed && MayLog())
            {
                logger.LogInformation("One-click unsubscribe of {Recipient} from {ListId}: already done", t.Address, t.List.Name.Fqdn);
            }

            await Answer(context, 200, OneClickPages.Done(t.List.Name.Fqdn, t.Address));
        }
        catch (SqliteException e) when (IsBusy(e))
        {
            // The leave may have been committed before the busy step (the goodbye's bookkeeping,
            // which the idle request runner finishes): then it is done, and said so (review 38).
            if (target is { } t && Gone(t.List, t.Address))
            {
                await Answer(context, 200, OneClickPages.Done(t.List.Name.Fqdn, t.Address));
                return;
            }

            await Busy(context, "POST", e);
        }
    }

    // Whether the address is no longer a receiving member (a read: WAL readers are not blocked by a writer).
    private bool Gone(MailingList list, string address)
    {
        try
        {
            using var store = lists.Open();
            var member = store.FindMember(list.Name, address);
            return member is null || (list.OneClickAction == OneClickAction.Disable && !member.DeliveryEnabled);
        }
        catch (SqliteException)
        {
            return false;
        }
    }

    private void Malformed(HttpContext context, string method)
    {
        if (MayLog())
        {
            logger.LogInformation("One-click {Method} to {Path} refused: malformed link", method, Printable(context.Request.Path));
        }
    }

    // SQLITE_BUSY or SQLITE_LOCKED past the store's own wait: the database is held by someone else.
    private static bool IsBusy(SqliteException e) => e.SqliteErrorCode is 5 or 6;

    // The sender tries again later (RFC 9110 503 with Retry-After); nothing was changed.
    private Task Busy(HttpContext context, string method, SqliteException e)
    {
        if (MayLog())
        {
            logger.LogWarning("One-click {Method} to {Path} answered 503 (try again): the database is busy: {Error}", method, Printable(context.Request.Path), e.Message);
        }

        context.Response.Headers.RetryAfter = "120";
        return Answer(context, 503, OneClickPages.TryLater);
    }

    // Whether this refusal may have a line of its own: the first RefusalsLogged of each minute.
    // The count of those left out is logged when the minute ends (a timer armed by the first one
    // left out), or by the next minute's first refusal if that comes first.
    private bool MayLog()
    {
        long unlogged;
        lock (_gate)
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var window = now / 60_000;
            if (window == _window)
            {
                if (_logged < RefusalsLogged)
                {
                    _logged++;
                    return true;
                }

                if (_unlogged++ == 0)
                {
                    _countTimer?.Dispose();
                    _countTimer = time.CreateTimer(_ => LogCount(), null, TimeSpan.FromMilliseconds((window + 1) * 60_000 - now), Timeout.InfiniteTimeSpan);
                }

                return false;
            }

            unlogged = _unlogged;
            _unlogged = 0;
            _window = window;
            _logged = 1;
        }

        LogCount(unlogged);
        return true;
    }

    private void LogCount()
    {
        long unlogged;
        lock (_gate)
        {
            unlogged = _unlogged;
            _unlogged = 0;
        }

        LogCount(unlogged);
    }

    private void LogCount(long unlogged)
    {
        if (unlogged > 0)
        {
            logger.LogWarning("One-click endpoint: {Count} more refused or repeated requests were not logged one by one (at most {Limit} a minute are)", unlogged, RefusalsLogged);
        }
    }

    /// <summary>Writes the count of refusals not yet logged (the daemon is stopping).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _countTimer?.Dispose();
            _countTimer = null;
        }

        LogCount();
    }

    // The list and member a valid link names, or null (logged) for any failure.
    private (MailingList List, string Address)? Check(HttpContext context, string method, (string List, string Address, string Token) link)
    {
        if (!OneClickLinks.TryParse(link.List, link.Address, link.Token, out var name, out var address))
        {
            Malformed(context, method);
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
            if (!MayLog())
            {
                return null;
            }

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

    // Null for a body over the limit, and for one Kestrel gives up on (chunked past
    // MaxRequestBodySize, below its minimum data rate): a refusal like any other, not an
    // unhandled exception with a stack trace per request in error-DATE.log.
    private static async Task<byte[]?> ReadBody(HttpContext context)
    {
        if (context.Request.ContentLength > MaxBodyBytes)
        {
            return null;
        }

        var buffer = new byte[MaxBodyBytes + 1];
        var total = 0;
        try
        {
            int n;
            while (total < buffer.Length && (n = await context.Request.Body.ReadAsync(buffer.AsMemory(total), context.RequestAborted)) > 0)
            {
                total += n;
            }
        }
        catch (BadHttpRequestException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            return null; // the client went away
        }

        return total > MaxBodyBytes ? null : buffer[..total];
    }

    private static Task Answer(HttpContext context, int status, byte[] page)
    {
        var response = context.Response;
        if (response.HasStarted || context.RequestAborted.IsCancellationRequested)
        {
            return Task.CompletedTask;
        }

        response.StatusCode = status;
        response.ContentType = "text/html; charset=utf-8";
        response.ContentLength = page.Length;
        response.Headers.CacheControl = "no-store";
        response.Headers["X-Content-Type-Options"] = "nosniff";
        response.Headers["Referrer-Policy"] = "no-referrer";
        response.Headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";
        return response.Body.WriteAsync(page, context.RequestAborted).AsTask();
    }

    // The path as a log shows it: control characters as spaces, and never the token (whoever
    // reads a shipped log could unsubscribe the member with it): /u/LIST/ADDRESS/(token).
    private static string Printable(PathString path)
    {
        // Whatever follows the address segment is cut, however many segments (review 38: a
        // link with a trailing '/' was malformed and logged whole, its valid token with it).
        var value = path.Value ?? "";
        var segments = value.Split('/');
        if (segments.Length >= 5)
        {
            value = string.Join('/', segments[..4]) + "/(token)";
        }

        return Member.Sanitize(value);
    }

    // A form-data part named List-Unsubscribe (quoted or not) whose value is One-Click.
    [System.Text.RegularExpressions.GeneratedRegex("Content-Disposition:[^\r\n]*;\\s*name=\"?List-Unsubscribe\"?(;[^\r\n]*)?\r\n(?:[^\r\n]+\r\n)*\r\nOne-Click\r\n", System.Text.RegularExpressions.RegexOptions.IgnoreCase)]
    private static partial System.Text.RegularExpressions.Regex MultipartOneClick();
}
