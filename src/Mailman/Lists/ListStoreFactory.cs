// Opens the instance's list database. A SQLite connection serves one thread, so each runner
// operation opens its own, and keeps it for the whole of that operation (one per post in the
// moderation chain, not one per question): opening costs a file open and the WAL set-up.
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
