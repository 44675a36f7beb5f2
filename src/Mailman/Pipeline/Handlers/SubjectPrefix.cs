// Adds the list's subject prefix once: "[Dev] hello"; a reply "Re: [Dev] hello" becomes
// "[Dev] Re: hello" (as Mailman does), never "[Dev] Re: [Dev] hello".
using Mailman.Templates;

namespace Mailman.Pipeline.Handlers;

public sealed class SubjectPrefix : IHandler
{
    public string Name => "subject-prefix";

    public string Description => "prefix the Subject with the list's subject_prefix, not doubled on replies";

    public HandlerResult Process(PostContext post)
    {
        var prefix = Template.Expand(post.List.SubjectPrefix, Template.ListValues(post.List)).Trim();
        if (prefix.Length == 0)
        {
            return HandlerResult.Continue;
        }

        post.Message.Subject = Apply(prefix, post.Message.Subject);
        return HandlerResult.Continue;
    }

    /// <summary>The subject with <paramref name="prefix"/> applied once.</summary>
    public static string Apply(string prefix, string? subject)
    {
        var rest = (subject ?? "").Trim();
        var reply = false;
        while (true)
        {
            if (rest.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                rest = rest[prefix.Length..].TrimStart();
            }
            else if (IsReplyMarker(rest, out var length))
            {
                reply = true;
                rest = rest[length..].TrimStart();
            }
            else
            {
                break;
            }
        }

        if (rest.Length == 0)
        {
            rest = "(no subject)";
        }

        return prefix + " " + (reply ? "Re: " : "") + rest;
    }

    private static bool IsReplyMarker(string s, out int length)
    {
        foreach (var marker in new[] { "re:", "aw:", "sv:", "re :" })
        {
            if (s.StartsWith(marker, StringComparison.OrdinalIgnoreCase))
            {
                length = marker.Length;
                return true;
            }
        }

        length = 0;
        return false;
    }
}
