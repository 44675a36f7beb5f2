// `mailman lists create|list|show|set|delete|owners|moderators`.
using System.CommandLine;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Queues;
using Microsoft.Extensions.Logging;

namespace Mailman.Cli;

internal static class ListsCommand
{
    public static Command Create()
    {
        var command = new Command("lists", "create, list, show and change mailing lists");

        var name = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var displayName = new Option<string?>("--display-name") { Description = "name shown in the subject prefix and footer" };
        var personalize = new Option<string>("--personalize") { Description = "none | full", DefaultValueFactory = _ => "full" };
        var owner = new Option<string[]>("--owner") { Description = "an owner, `addr` or `Name <addr>` (repeatable)", Arity = ArgumentArity.ZeroOrMore };
        var create = new Command("create", "create a list") { name, displayName, personalize, owner };
        create.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var listName = Parse(parse.GetValue(name)!);

            // dev-owner@, x-join@ ... are the role addresses of dev and x: mail to them would
            // never reach a list of that name (inject routes by suffix), and would go to another
            // list's owners or subscribe its sender.
            if (ListAddress.RoleAddressOf(listName) is { } role)
            {
                throw new CliException(ExitCodes.Usage, $"a list name cannot end in a role suffix: {role}");
            }

            // Mail from other hosts reaches only a fully qualified domain (review 94: dev@example
            // was created, and its posts, notices and List-Id named a host nobody can mail); nor
            // does it reach an IP address (review 107: dev@127.0.0.1) or a special-use name.
            if (!ListName.IsInternetDomain(listName.Domain))
            {
                throw new CliException(ExitCodes.Usage, $"{listName}: '{listName.Domain}' is not a domain mail from the Internet reaches (a list is LIST@HOST.DOMAIN, e.g. {listName.LocalPart}@lists.example.org; not an IP address, nor under localhost, local, localdomain)");
            }

            var list = new MailingList { Name = listName, DisplayName = listName.LocalPart };
            if (parse.GetValue(displayName) is { } dn)
            {
                list.Set("display_name", dn);
            }

            list.Set("personalize", parse.GetValue(personalize)!);
            paths.EnsureCreated();
            SettleDeleted(paths, listName);
            var owners = (parse.GetValue(owner) ?? []).Select(Person).ToList();
            using var store = new ListStore(paths.Database, create: true);
            foreach (var o in owners)
            {
                NotAListAddress(store, o.Address, listName);
            }

            store.InTransaction(() =>
            {
                store.CreateList(list);
                return store.AddRole(listName, ListRole.Owner, owners);
            });

            // A deletion mark of an earlier list of this name stops nothing of this one (review
            // 38: with the clock stepped back, it stopped a post to the list made again).
            var mark = paths.DeletedListMarker(listName);
            if (File.Exists(mark))
            {
                File.Delete(mark);
            }

            Console.WriteLine($"created {listName}" + (owners.Count > 0 ? $" (owners: {string.Join(", ", owners.Select(o => o.Address))})" : ""));

            // Members added before this list existed may be its addresses (members add refuses
            // them from now on): each post to their list would come here as a bounce, a request
            // or a post. Its plain posting address is a member as an umbrella list's is.
            foreach (var (other, address) in store.MembersStartingWith(listName.LocalPart, listName.Domain))
            {
                if (ListAddress.TryResolve(address, out var resolved, out _) && resolved.List == listName && (resolved.Suffix.Length > 0 || resolved.Extension is not null))
                {
                    Console.Error.WriteLine($"mailman: warning: {address}, a member of {other}, is an address of {listName}: {other}'s copies to it come here; "
                        + $"remove it: mailman members remove {other} {address}");
                }
            }

            // Owners and moderators likewise (lists owners refuses them from now on): the
            // server's notices to them are not sent, so those owners are told nothing (review 100).
            foreach (var (other, held, address) in store.RolesStartingWith(listName.LocalPart, listName.Domain))
            {
                if (ListAddress.TryResolve(address, out var resolved, out _) && resolved.List == listName)
                {
                    Console.Error.WriteLine($"mailman: warning: {address}, a{(held == ListRole.Owner ? "n" : "")} {held} of {other}, is an address of {listName}: no notice goes to it; "
                        + $"remove it: mailman lists {held}s {other} remove {address}");
                }
            }
            return 0;
        }, createsInstance: true));
        command.Subcommands.Add(create);

        var all = new Command("list", "list every list");
        all.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            using var store = new ListStore(paths.Database);
            foreach (var list in store.AllLists())
            {
                Console.WriteLine($"{list.Name.Fqdn}\t{list.DisplayName}\t{store.CountMembers(list.Name)} members");
            }

            return 0;
        }));
        command.Subcommands.Add(all);

        var showName = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var show = new Command("show", "show a list's settings") { showName };
        show.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            using var store = new ListStore(paths.Database);
            var list = store.GetList(Parse(parse.GetValue(showName)!));
            foreach (var (key, value) in list.Describe())
            {
                Console.WriteLine($"{key}: {value}");
            }

            Console.WriteLine($"members: {store.CountMembers(list.Name)}");
            Console.WriteLine($"owners: {string.Join(", ", store.Roles(list.Name, ListRole.Owner).Select(Show))}");
            Console.WriteLine($"moderators: {string.Join(", ", store.Roles(list.Name, ListRole.Moderator).Select(Show))}");
            return 0;
        }));
        command.Subcommands.Add(show);

        var setName = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var key = new Argument<string>("key") { Description = "setting: " + string.Join(", ", MailingList.SettingNames.Keys) };
        var value = new Argument<string>("value") { Description = "new value" };
        var set = new Command("set", "change one setting of a list") { setName, key, value };
        set.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            using var store = new ListStore(paths.Database);
            var list = store.GetList(Parse(parse.GetValue(setName)!));
            if (MailingList.UnknownSetting(parse.GetValue(key)!) is { } unknown)
            {
                // A name that is not a setting is a usage error (64), as members set's; a bad value is data (65).
                throw new CliException(ExitCodes.Usage, unknown);
            }

            list.Set(parse.GetValue(key)!, parse.GetValue(value)!);
            if (parse.GetValue(key) == "reply_to_address" && list.ReplyToAddress.Length > 0
                && ListAddress.TryResolve(list.ReplyToAddress, out var resolved, out _) && resolved.Queue is QueueSet.Bounces or QueueSet.Request
                && (resolved.List == list.Name || store.FindList(resolved.List) is not null))
            {
                // Every member's reply would go to a robot of a list here, -request, -join, -leave,
                // -confirm or -bounces (review 60); a list's posting address (a discussion list for
                // an announce list) and its -owner (people read it) are what Reply-To may name.
                throw new CliException(ExitCodes.DataError, $"reply_to_address: {list.ReplyToAddress} is the {resolved.Queue} address of the list {resolved.List}: members' replies would go to it; give a posting address");
            }

            store.SaveList(list);
            // What was stored, as `lists show` says it (review 94: "90" was stored as 90 days unseen).
            var stored = list.Describe().FirstOrDefault(s => s.Key == parse.GetValue(key)).Value;
            Console.WriteLine(stored is null or "(set)" ? $"{list.Name}: {parse.GetValue(key)} set" : $"{list.Name}: {parse.GetValue(key)} set to {stored}");
            return 0;
        }));
        command.Subcommands.Add(set);
        command.Subcommands.Add(Roles("owners", ListRole.Owner));
        command.Subcommands.Add(Roles("moderators", ListRole.Moderator));
        command.Subcommands.Add(Delete());
        return command;
    }

    // `lists owners|moderators LIST add|remove|list [ADDR...]`
    private static Command Roles(string verb, string role)
    {
        var listArg = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var action = new Argument<string>("action") { Description = "add | remove | list" };
        var people = new Argument<string[]>("address") { Description = "`addr` or `Name <addr>`", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command(verb, $"add, remove or list the list's {verb}") { listArg, action, people };
        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var listName = Parse(parse.GetValue(listArg)!);
            var addresses = parse.GetValue(people) ?? [];
            using var store = new ListStore(paths.Database);
            store.GetList(listName);
            switch (parse.GetValue(action))
            {
                case "list":
                    foreach (var p in store.Roles(listName, role))
                    {
                        Console.WriteLine(Show(p));
                    }

                    return 0;
                case "add":
                {
                    var members = addresses.Length > 0 ? addresses.Select(Person).ToList() : throw new CliException(ExitCodes.Usage, $"lists {verb} add: name at least one address");
                    foreach (var m in members)
                    {
                        NotAListAddress(store, m.Address, listName);
                    }

                    var added = store.AddRole(listName, role, members);
                    Console.WriteLine($"{listName}: {added} {verb} added, {members.Count - added} already {verb}");
                    return 0;
                }

                case "remove":
                {
                    if (addresses.Length == 0)
                    {
                        throw new CliException(ExitCodes.Usage, $"lists {verb} remove: name at least one address");
                    }

                    var missing = addresses.Select(a => Person(a).Address).Where(a => !store.HasRole(listName, role, a)).ToList();
                    var removed = store.RemoveRole(listName, role, addresses.Select(a => Person(a).Address));
                    Console.WriteLine($"{listName}: {removed} {verb} removed");
                    if (missing.Count > 0)
                    {
                        throw new CliException(1, $"not {role}s of {listName}: {string.Join(", ", missing)}");
                    }

                    return 0;
                }

                default:
                    throw new CliException(ExitCodes.Usage, $"lists {verb}: expected add, remove or list, got '{parse.GetValue(action)}'");
            }
        }));
        return command;
    }

    // `lists delete LIST [--keep-archives]`
    private static Command Delete()
    {
        var listArg = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var keepArchives = new Option<bool>("--keep-archives") { Description = "accepted for Mailman's sake: this server keeps no archives (archive_url points elsewhere)" };
        var command = new Command("delete", "delete a list: its members, owners, pending requests and held posts; its queued posts go to bad") { listArg, keepArchives };
        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var listName = Parse(parse.GetValue(listArg)!);
            using var services = new VerbServices(paths);
            long members;
            using (var store = services.Lists.Open())
            {
                store.GetList(listName);

                // First the database: from here on inject refuses the list (exit 67) and runners
                // shunt what they pick up for it; then the queues. Counted in the delete's own
                // transaction (review 80: 200,000 members an import committed in between were
                // deleted and said to be 0).
                members = store.InTransaction(() =>
                {
                    var count = store.CountMembers(listName);
                    store.DeleteList(listName);
                    return count;
                });
            }

            // Then the mark a delivery under way looks for: it stops at its next look (every
            // ListDeletionWatch.Interval) and its entry goes to bad.
            // If var/ cannot take it, the rest is still done (review 38: the command stopped
            // here, the list gone, its held and queued posts left behind).
            var marker = paths.DeletedListMarker(listName);
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(marker)!);
                File.WriteAllText(marker, $"{listName.Fqdn} deleted by {VerbServices.Actor} at {DateTimeOffset.UtcNow:O}\n");
                File.SetLastWriteTimeUtc(marker, DateTime.UtcNow);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"mailman: warning: cannot write {marker} ({e.Message}): a delivery of the list under way in the daemon is not stopped");
            }

            // A killed daemon's claims are nobody's: set aside with the waiting ones (review 71:
            // left as "in the daemon's hands" with none running, a list made again under the name
            // had the deleted list's post resumed to its members at the next start).
            using var idle = NoDaemon(paths);
            if (idle is not null)
            {
                PutBackAbandoned(services.Queues, listName);
            }

            int held = 0, moved = 0, busy = 0;
            var locked = new List<string>();
            foreach (var queue in services.Queues.All.Where(q => q.Name != QueueSet.Bad))
            {
                foreach (var id in Waiting(queue, listName, locked))
                {
                    if (queue.Name == QueueSet.Hold && services.Held.Discard(id, $"{VerbServices.Actor} (lists delete)").Done)
                    {
                        held++;
                    }
                    else if (MoveToBad(services, queue, id, listName, $"the list {listName.Fqdn} was deleted ({VerbServices.Actor}); "
                        + (File.Exists(queue.CheckpointPath(id)) ? "partly delivered (its checkpoint, beside it, records how far), the rest not" : "not delivered")))
                    {
                        moved++;
                    }
                }

                busy += Claims(queue, listName).Count();
            }

            Console.WriteLine($"deleted {listName}: {members} members, its owners, moderators and pending requests; {held} held posts discarded; {moved} queued entries moved to bad");
            services.Vette.LogWarning("LIST DELETED: {ListId} by {Actor}: {Members} members, its owners, moderators and pending requests; {Held} held posts discarded; {Moved} queued entries moved to bad; {Busy} claimed",
                listName.Fqdn, VerbServices.Actor, members, held, moved, busy);
            if (busy > 0)
            {
                Console.WriteLine(idle is null
                    ? $"{busy} entries for it are in the daemon's hands right now; a delivery under way stops within seconds and goes to bad, and the others end in shunt or bad with the reason"
                    : $"{busy} entries for it are claimed by another command (held, unshunt) right now; they end in shunt or bad with the reason");
            }

            if (locked.Count > 0)
            {
                // Not known to be the list's (review 123's leftover: they were passed over silently).
                Console.WriteLine($"{locked.Count} queued entries could not be read, locked by another process ({string.Join(", ", locked.Take(10))}{(locked.Count > 10 ? ", ..." : "")}): "
                    + "once let go, those of this list are treated as mail for a list that does not exist (shunted with the reason; a held one stays held: held discard ID)");
            }

            if (parse.GetValue(keepArchives))
            {
                Console.WriteLine("this server keeps no archives: nothing to keep");
            }

            Console.WriteLine("run `mailman aliases` (and postmap) so that Postfix stops accepting mail for it");
            return 0;
        }));
        return command;
    }

    // Set aside by renames (the file as it is, with where it came from and why beside it), with
    // a line in the vette log naming the entry.
    private static bool MoveToBad(VerbServices services, Switchboard queue, string id, ListName list, string why)
    {
        var bad = services.Queues[QueueSet.Bad];
        bool moved;
        try
        {
            var claim = queue.Claim(id);
            moved = claim is not null;
            if (claim is not null)
            {
                queue.SetAside(claim, bad, why);
            }
        }
        catch (EntryBlockedException)
        {
            // A directory or link where its claim goes (review 47: the verb stopped half-way, 73).
            moved = queue.SetAsideWaiting(id, bad, why) is not null;
        }

        if (moved)
        {
            services.Vette.LogWarning("SET ASIDE: queue entry {QueueEntry} of {ListId} moved from {Queue} to bad by {Actor}: {Reason}", id, list.Fqdn, queue.Name, VerbServices.Actor, why);
        }

        return moved;
    }

    // Posts of a deleted list of this name still claimed: made again now, its deletion mark
    // would go and the runners would carry them on for the new list (review 71: a delivery
    // under way went on to the deleted list's members). A daemon is let finish stopping them;
    // a killed one's are set aside here, as `lists delete` does.
    private static void SettleDeleted(InstancePaths paths, ListName listName)
    {
        if (!File.Exists(paths.DeletedListMarker(listName)) || !Directory.Exists(paths.QueuesDirectory))
        {
            return;
        }

        // Waiting entries of the deleted list are nobody's: a daemon stopped (SIGTERM) before it
        // saw the mark put its delivery back to wait, to be resumed for the list made again.
        // (The verbs' services take the queue lock that keeps a starting daemon's recovery off.)
        using var services = new VerbServices(paths);
        var queues = services.Queues;
        SetAsideWaiting(services, listName);
        if (ClaimedFor(queues, listName) == 0)
        {
            return;
        }

        using var idle = NoDaemon(paths);
        if (idle is null)
        {
            var still = ClaimedFor(queues, listName);
            if (still > 0)
            {
                throw new CliException(ExitCodes.TempFail, $"the daemon is still stopping {still} entries of the deleted list {listName} (a delivery under way stops within seconds and goes to bad); create it again then");
            }
        }
        else
        {
            PutBackAbandoned(queues, listName);
        }

        SetAsideWaiting(services, listName);
    }

    private static void SetAsideWaiting(VerbServices services, ListName listName)
    {
        foreach (var queue in DaemonQueues(services.Queues))
        {
            foreach (var id in Waiting(queue, listName))
            {
                MoveToBad(services, queue, id, listName, $"the list {listName.Fqdn} was deleted; not delivered (set aside when a list of its name was made again)");
            }
        }
    }

    // The list's entries waiting in the queue, and those claimed there (an unreadable one is no one's).
    // One another process holds locked is named in locked (when given), not taken for the list's.
    private static IEnumerable<string> Waiting(Switchboard queue, ListName list, List<string>? locked = null) => queue.Pending().Where(id => IsFor(queue, id, Switchboard.EntryExtension, list, locked));

    private static IEnumerable<string> Claims(Switchboard queue, ListName list) => queue.Claimed().Where(id => IsFor(queue, id, Switchboard.ClaimedExtension, list, null));

    private static bool IsFor(Switchboard queue, string id, string extension, ListName list, List<string>? locked)
    {
        try
        {
            return queue.ReadMetadata(id, extension).List.Equals(list.Fqdn, StringComparison.OrdinalIgnoreCase);
        }
        catch (EntryLockedException)
        {
            locked?.Add($"{id} in {queue.Name}");
            return false;
        }
        catch (Exception e) when (e is CorruptEntryException or IOException)
        {
            return false;
        }
    }

    // Serve's lock while this verb works when no daemon runs; null when one does, or when the
    // lock cannot be taken at all (then claims are left as a daemon's).
    private static ServeLock? NoDaemon(InstancePaths paths)
    {
        try
        {
            return ServeLock.WhileNoneRuns(paths);
        }
        catch (ServeLockException)
        {
            return null;
        }
    }

    // The queues only the daemon's runners claim in (hold and shunt are claimed by verbs too).
    private static IEnumerable<Switchboard> DaemonQueues(QueueSet queues)
        => queues.All.Where(q => q.Name is not (QueueSet.Bad or QueueSet.Hold or QueueSet.Shunt));

    private static int ClaimedFor(QueueSet queues, ListName list) => DaemonQueues(queues).Sum(q => Claims(q, list).Count());

    // Called with the serve lock held: no daemon can have these claims.
    private static void PutBackAbandoned(QueueSet queues, ListName list)
    {
        foreach (var queue in DaemonQueues(queues))
        {
            foreach (var id in Claims(queue, list).ToList())
            {
                try
                {
                    queue.PutBackAbandoned(id);
                }
                catch (EntryBlockedException e)
                {
                    Console.Error.WriteLine($"mailman: warning: {e.Message}; it stays claimed");
                }
            }
        }
    }

    private static Member Person(string text)
    {
        try
        {
            return Member.Parse(text);
        }
        catch (FormatException e)
        {
            throw new CliException(ExitCodes.DataError, e.Message);
        }
    }

    // Mail to an owner or moderator that is an address of a list here would loop.
    private static void NotAListAddress(ListStore store, string address, ListName list)
    {
        if (ListAddress.TryResolve(address, out var resolved, out _) && (resolved.List == list || store.FindList(resolved.List) is not null))
        {
            throw new CliException(ExitCodes.DataError, $"{address} is an address of the list {resolved.List}: mail to it would loop");
        }
    }

    private static string Show(Member m) => string.IsNullOrEmpty(m.DisplayName) ? m.Address : $"{m.DisplayName} <{m.Address}>";

    internal static ListName Parse(string text)
        => ListName.TryParse(text, out var name, out var error) ? name : throw new CliException(ExitCodes.Usage, error);
}
