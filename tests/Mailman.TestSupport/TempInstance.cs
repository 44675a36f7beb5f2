// A fresh Mailman instance directory under /tmp, removed on dispose, with helpers to create
// lists and members through the real SQLite store.
using Mailman.Instance;
using Mailman.Lists;

namespace Mailman.TestSupport;

public sealed class TempInstance : IDisposable
{
    public TempInstance()
    {
        var dir = Path.Combine(Path.GetTempPath(), "mailman-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        Paths = new InstancePaths(dir);
        Paths.EnsureCreated();

        // An instance as `mailman init` leaves one (verbs other than serve and lists create refuse
        // a directory that is not one); no database yet: an open pooled connection would keep the
        // file a test mounts a tmpfs over.
        File.WriteAllText(Paths.ConfigFile, "{}\n");
    }

    public InstancePaths Paths { get; }

    public string Home => Paths.Home;

    public MailingList CreateList(string fqdn, Action<MailingList>? configure = null)
    {
        var list = new MailingList { Name = ListName.Parse(fqdn), DisplayName = fqdn.Split('@')[0] };
        configure?.Invoke(list);
        using var store = new ListStore(Paths.Database, create: true);
        store.CreateList(list);
        return list;
    }

    public void AddMembers(string fqdn, IEnumerable<Member> members)
    {
        using var store = new ListStore(Paths.Database);
        store.AddMembers(ListName.Parse(fqdn), members);
    }

    /// <summary>Members m0000@domain.. with display names "Member N".</summary>
    public static IEnumerable<Member> NumberedMembers(int count, string domain = "example.com")
        => Enumerable.Range(0, count).Select(i => new Member($"m{i:D5}@{domain}", $"Member {i}"));

    public string QueueDir(string queue) => Paths.Queue(queue);

    public int Count(string queue, string extension = ".msg")
        => Directory.Exists(QueueDir(queue)) ? Directory.GetFiles(QueueDir(queue), "*" + extension).Length : 0;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
