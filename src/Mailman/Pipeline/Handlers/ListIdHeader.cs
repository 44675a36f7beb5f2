// RFC 2919 List-Id: "Display Name <list.example.org>".
using System.Text;
using MimeKit;
using MimeKit.Utils;

namespace Mailman.Pipeline.Handlers;

public sealed class ListIdHeader : IHandler
{
    public string Name => "list-id";

    public string Description => "set the RFC 2919 List-Id header";

    public HandlerResult Process(PostContext post)
    {
        var list = post.List;
        var id = "<" + list.Name.ListId + ">";
        var value = string.IsNullOrEmpty(list.DisplayName)
            ? id
            : Phrase(list.DisplayName) + " " + id;
        post.Message.Headers.RemoveAll(HeaderId.ListId);
        post.Message.Headers.Add(new Header(Encoding.UTF8, HeaderId.ListId, value));
        return HandlerResult.Continue;
    }

    // RFC 2047 encoded words for non-ASCII; otherwise a quoted string when specials need it.
    private static string Phrase(string name)
        => Ascii.IsValid(name) ? Quote(name) : Encoding.ASCII.GetString(Rfc2047.EncodePhrase(Encoding.UTF8, name));

    // A phrase with specials must be a quoted string (RFC 5322 §3.2.5).
    private static string Quote(string phrase)
        => phrase.Any(c => "()<>[]:;@\\,.\"".Contains(c)) ? MimeUtils.Quote(phrase) : phrase;
}
