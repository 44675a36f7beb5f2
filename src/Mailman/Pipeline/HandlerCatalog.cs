// Every handler by name, and the default order. A pipeline is data: the configuration lists
// handler names; this turns the names into instances. The checks among them (loop-detection,
// dmarc-moderation, maximum-size) run in the moderation chain (Moderation/ModerationChain.cs),
// before the pipeline.
using Mailman.Dmarc;
using Mailman.Lists;
using Mailman.Pipeline.Handlers;

namespace Mailman.Pipeline;

public sealed class HandlerCatalog
{
    /// <summary>The default pipeline (config/mailman.json ships the same).</summary>
    public static readonly IReadOnlyList<string> DefaultPipeline =
    [
        "dmarc", "list-id", "list-headers", "x-beenthere", "subject-prefix", "reply-to", "personalize", "decorate", "member-recipients",
    ];

    /// <summary>Every handler's name (the catalog test holds it to the instances).</summary>
    public static readonly IReadOnlyList<string> Names =
    [
        "loop-detection", "dmarc-moderation", "maximum-size", "dmarc", "list-id", "list-headers", "x-beenthere", "subject-prefix",
        "reply-to", "personalize", "decorate", "member-recipients",
    ];

    /// <summary>The handlers that are checks: the only handlers the moderation chain takes (a pipeline may run them too).</summary>
    public static readonly IReadOnlySet<string> Checks = new HashSet<string>(["loop-detection", "dmarc-moderation", "maximum-size"], StringComparer.OrdinalIgnoreCase);

    /// <summary>The handler that gives a post its recipients: a pipeline without it delivers every post to nobody.</summary>
    public const string Recipients = "member-recipients";

    private readonly Dictionary<string, IHandler> _handlers;

    /// <param name="members">Streams a list's members (with their serials).</param>
    /// <param name="dmarc">The DMARC policy lookup and site settings.</param>
    /// <param name="oneClick">One-click unsubscribe links, when the instance has a public URL.</param>
    public HandlerCatalog(Func<ListName, IEnumerable<Member>> members, DmarcServices dmarc, Http.OneClickLinks? oneClick = null)
    {
        IHandler[] all =
        [
            new LoopDetection(), new DmarcModeration(dmarc), new MaximumSize(), new DmarcMitigation(dmarc),
            new ListIdHeader(), new ListHeaders(), new BeenThere(), new SubjectPrefix(), new ReplyTo(),
            new Personalize(oneClick), new Decorate(), new MemberRecipients(members, oneClick),
        ];
        _handlers = all.ToDictionary(h => h.Name, StringComparer.OrdinalIgnoreCase);
    }

    public IEnumerable<IHandler> All => _handlers.Values;

    /// <exception cref="InvalidOperationException">A name is unknown.</exception>
    public IReadOnlyList<IHandler> Resolve(IEnumerable<string> names)
        => names.Select(n => _handlers.TryGetValue(n, out var h)
            ? h
            : throw new InvalidOperationException($"configuration: unknown pipeline handler '{n}'; known: {string.Join(", ", _handlers.Keys)}")).ToList();
}
