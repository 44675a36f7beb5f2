// The endpoint's few HTML pages: the one-button page a GET shows (link scanners that follow GETs
// unsubscribe nobody), the page after a successful POST, and one page for every failure, so no
// answer tells whether an address is a member.
using System.Net;
using System.Text;

namespace Mailman.Http;

internal static class OneClickPages
{
    public static byte[] Ask(string list, string address) => Page("Unsubscribe", $"""
        <p>Unsubscribe <b>{Encode(address)}</b> from the mailing list <b>{Encode(list)}</b>?</p>
        <form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>
        """);

    public static byte[] Done(string list, string address) => Page("Unsubscribed", $"""
        <p><b>{Encode(address)}</b> is no longer subscribed to <b>{Encode(list)}</b>.</p>
        """);

    public static readonly byte[] Failed = Page("Link not valid", """
        <p>This unsubscribe link is not valid, or no longer: the address may have left or joined again since the message was sent.</p>
        <p>To leave a list, reply to its welcome message or send a message to its -leave address (LIST-leave@HOST).</p>
        """);

    public static readonly byte[] TryLater = Page("Try again later", """
        <p>The list server is busy. Nothing was changed: please try again in a few minutes.</p>
        """);

    private static string Encode(string s) => WebUtility.HtmlEncode(s);

    private static byte[] Page(string title, string body) => Encoding.UTF8.GetBytes($"""
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex"><meta name="viewport" content="width=device-width">
        <title>{title}</title></head>
        <body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
        {body}
        </body></html>

        """);
}
