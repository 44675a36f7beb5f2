// A list in a real temp database and a helper that builds a rule's view of a post.
using System.Text;
using Mailman.Lists;
using Mailman.Moderation;
using Mailman.Pipeline;
using Mailman.Queues;
using Mailman.Runners;
using Mailman.TestSupport;

namespace Mailman.Tests.Moderation;

internal sealed class ModerationFixture : IDisposable
{
    public const string List = "dev@example.org";

    private readonly List<ListStore> _stores = [];

    public ModerationFixture(Action<MailingList>? configure = null)
    {
        Instance.CreateList(List, configure);
        Instance.AddMembers(List, [new Member("ann@example.com", "Ann"), new Member("bob@example.com", "Bob")]);
    }

    public TempInstance Instance { get; } = new();

    public MailingList Settings
    {
        get
        {
            using var store = new ListStore(Instance.Paths.Database);
            return store.GetList(ListName.Parse(List));
        }
    }

    public void Configure(Action<MailingList> change)
    {
        using var store = new ListStore(Instance.Paths.Database);
        var list = store.GetList(ListName.Parse(List));
        change(list);
        store.SaveList(list);
    }

    public void SetAction(string address, string action)
    {
        using var store = new ListStore(Instance.Paths.Database);
        Assert.True(store.SetModerationAction(ListName.Parse(List), address, action));
    }

    /// <summary>A post with these header lines (To: the list unless given) and body.</summary>
    public static byte[] Post(string headers, string body = "Hello\n")
    {
        if (!headers.Contains("To:", StringComparison.OrdinalIgnoreCase))
        {
            headers += $"To: {List}\n";
        }

        return Encoding.UTF8.GetBytes($"{headers}Subject: test\nMessage-Id: <t@example.com>\n\n{body}");
    }

    public ModerationContext Context(byte[] raw, string? envelopeSender = null, bool approved = false)
    {
        var store = new ListStore(Instance.Paths.Database);
        _stores.Add(store);
        var list = store.GetList(ListName.Parse(List));
        var metadata = new EntryMetadata { List = List, Sender = envelopeSender, Approved = approved };
        return new ModerationContext(new PostContext(list, PostParser.Parse(raw), metadata, raw.Length), store);
    }

    public void Dispose()
    {
        foreach (var s in _stores)
        {
            s.Dispose();
        }

        Instance.Dispose();
    }
}
