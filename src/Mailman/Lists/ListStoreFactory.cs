// Opens the instance's list database. A SQLite connection serves one thread, so each runner
// operation opens its own (cheap: no pooling of state worth keeping between posts).
using Mailman.Instance;

namespace Mailman.Lists;

public sealed class ListStoreFactory(InstancePaths paths)
{
    private long _opened;

    /// <summary>Connections opened so far (metric mailman.db.connections.opened): one per post is the budget.</summary>
    public long Opened => Interlocked.Read(ref _opened);

    public ListStore Open()
    {
        Interlocked.Increment(ref _opened);
        return new(paths.Database);
    }

    public MailingList? FindList(ListName name)
    {
        using var store = Open();
        return store.FindList(name);
    }

    public bool IsMember(ListName list, string address)
    {
        using var store = Open();
        return store.IsMember(list, address);
    }

    /// <summary>Streams members; the connection stays open while the caller enumerates.</summary>
    public IEnumerable<Member> Members(ListName list)
    {
        using var store = Open();
        foreach (var m in store.Members(list, deliveryEnabledOnly: true))
        {
            yield return m;
        }
    }
}
