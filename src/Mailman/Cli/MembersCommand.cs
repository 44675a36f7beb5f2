// `mailman members add|list|remove|show|enable|disable|set`. `add --file` imports one member a
// line (`addr` or `Display Name <addr>`, what `members list` writes) in one transaction; new members are welcomed when the
// list sends welcome messages (send_welcome_message), or as --welcome / --no-welcome say.
// `remove --file` reads the same format; removing an address that is not a member is an error
// (exit 1), the others are removed. show, enable and disable are the operator's side of bounce
// processing (why delivery is off, the score, the warnings).
using System.CommandLine;
using Mailman.Lists;
using Mailman.Requests;
using Microsoft.Extensions.DependencyInjection;

namespace Mailman.Cli;

internal static class MembersCommand
{
    public static Command Create()
    {
        var command = new Command("members", "add, list, show, enable, disable and remove list members");

        var list = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var addresses = new Argument<string[]>("address") { Description = "addresses (or 'Name <addr>')", Arity = ArgumentArity.ZeroOrMore };
        var file = new Option<string?>("--file") { Description = "one member a line; '-' reads standard input" };
        var welcome = new Option<bool>("--welcome") { Description = "send new members the welcome message (default: the list's send_welcome_message)" };
        var noWelcome = new Option<bool>("--no-welcome") { Description = "send no welcome message (bulk imports)" };
        var add = new Command("add", "add members") { list, addresses, file, welcome, noWelcome };
        add.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var name = ListsCommand.Parse(parse.GetValue(list)!);
            var members = new List<Member>();
            var lineNo = 0;
            foreach (var line in parse.GetValue(addresses)!.Concat(ReadLines(parse.GetValue(file))))
            {
                lineNo++;
                if (string.IsNullOrWhiteSpace(line) || line.TrimStart().StartsWith('#'))
                {
                    continue;
                }

                try
                {
                    members.Add(WithStatus(Member.Parse(line.Split('\t', 2)[0]), line.Split('\t', 2) is [_, var status] ? status : null));
                }
                catch (FormatException e)
                {
                    throw new CliException(ExitCodes.DataError, $"member {lineNo}: {e.Message}; nothing was added");
                }
            }

            if (parse.GetValue(welcome) && parse.GetValue(noWelcome))
            {
                throw new CliException(ExitCodes.Usage, "--welcome and --no-welcome exclude each other");
            }

            using var store = new ListStore(paths.Database);
            var mailingList = store.GetList(name);
            foreach (var m in members)
            {
                if (!ListAddress.TryResolve(m.Address, out var of, out _))
                {
                    continue;
                }

                if (of.List == name)
                {
                    // Each copy would come back as a post (review 39).
                    throw new CliException(ExitCodes.DataError, $"{m.Address} is an address of the list {name} itself: its copies would come back as posts; nothing was added");
                }

                // Another list here may be a member by its posting address (an umbrella list), never
                // by a role address (review 49: with b-bounces@ or b-owner@ a member, each post to
                // this list became an unrecognized bounce or a forward to b's owners).
                if (of.Suffix.Length > 0 && store.FindList(of.List) is not null)
                {
                    throw new CliException(ExitCodes.DataError, $"{m.Address} is the {of.Suffix[1..]} address of the list {of.List}, no mailbox; a list is a member by its posting address ({of.List}); nothing was added");
                }

                // LIST+anything@ is the posting address again (the MTA's recipient delimiter):
                // beside the plain one each post reached the list twice (review 73).
                if (of.Extension is not null && store.FindList(of.List) is not null)
                {
                    throw new CliException(ExitCodes.DataError, $"{m.Address} is the posting address of the list {of.List} with a +extension; a list is a member by its plain posting address ({of.List}); nothing was added");
                }
            }

            var added = new List<Member>();
            if (parse.GetValue(noWelcome) || !(parse.GetValue(welcome) || mailingList.SendWelcomeMessage))
            {
                store.AddMembers(name, members, added);
                Console.WriteLine($"{name}: {added.Count} added, {members.Count - added.Count} already members");
                return 0;
            }

            // Each welcome is owed in the add's transaction, then queued: what a kill or a full
            // queue leaves unqueued the daemon sends (at its start, or within ten minutes).
            using var services = CliServices.Build(paths);
            var membership = services.GetRequiredService<Membership>();
            var trigger = Membership.NewTrigger(services.GetRequiredService<TimeProvider>());
            var welcomed = 0;
            var queued = 0;
            string? failure = null;
            using (membership.Owing(trigger))
            {
                store.AddMembers(name, members, added, m => membership.OweWelcome(store, name, m, trigger));
                try
                {
                    foreach (var m in added)
                    {
                        welcomed += membership.PayWelcome(store, mailingList, m, trigger) ? 1 : 0;
                        queued++;
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    failure = e.Message;
                }
            }

            if (failure is not null)
            {
                membership.LeaveOwed(trigger);
                Console.Error.WriteLine($"mailman: {added.Count - queued} welcomes could not be queued ({failure}); they are owed, and the daemon sends them when it can write its out queue (at its start, or within ten minutes)");
            }

            Console.WriteLine($"{name}: {added.Count} added, {members.Count - added.Count} already members" + (welcomed > 0 ? $", {welcomed} welcomed" : ""));
            return 0;
        }));
        command.Subcommands.Add(add);

        var listName = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var status = new Option<string>("--status") { Description = "enabled | disabled | all", DefaultValueFactory = _ => "all" };
        var show = new Command("list", "list members") { listName, status };
        show.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            bool? enabled = parse.GetValue(status)!.ToLowerInvariant() switch
            {
                "all" => null,
                "enabled" => true,
                "disabled" => false,
                var other => throw new CliException(ExitCodes.Usage, $"--status: expected enabled, disabled or all, got '{other}'"),
            };
            using var store = new ListStore(paths.Database);
            var name = ListsCommand.Parse(parse.GetValue(listName)!);
            store.GetList(name);
            using var output = new StreamWriter(Console.OpenStandardOutput());
            foreach (var m in store.MemberRecords(name, enabled))
            {
                // Quoted as a mailbox when the name needs it ("Bob <x@evil.test>, Carl"), so the
                // list reads back with add --file (review 27: one such name aborted the import).
                output.Write(string.IsNullOrEmpty(m.DisplayName) ? m.Address
                    : m.DisplayName.AsSpan().IndexOfAny(NameSpecials) < 0 ? $"{m.DisplayName} <{m.Address}>"
                    : new MimeKit.MailboxAddress(m.DisplayName, m.Address).ToString());
                output.WriteLine(m.DeliveryEnabled ? "" : $"\tdisabled: {(m.DisabledReason.Length > 0 ? m.DisabledReason : "unknown")}");
            }

            return 0;
        }));
        command.Subcommands.Add(show);
        command.Subcommands.Add(ShowMember());
        command.Subcommands.Add(SetDelivery("enable", "turn delivery back on (and reset the bounce score and warnings)", DisabledReason.None));
        command.Subcommands.Add(SetDelivery("disable", "turn delivery off (reason: moderator)", DisabledReason.Moderator));

        var removeList = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var removeAddresses = new Argument<string[]>("address") { Description = "addresses to remove", Arity = ArgumentArity.ZeroOrMore };
        var removeFile = new Option<string?>("--file") { Description = "one address a line; '-' reads standard input" };
        var remove = new Command("remove", "remove members") { removeList, removeAddresses, removeFile };
        remove.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var name = ListsCommand.Parse(parse.GetValue(removeList)!);
            var addresses = new List<string>();
            var lineNo = 0;
            foreach (var line in parse.GetValue(removeAddresses)!.Concat(ReadLines(parse.GetValue(removeFile))))
            {
                lineNo++;
                if (string.IsNullOrWhiteSpace(line) || line.TrimStart().StartsWith('#'))
                {
                    continue;
                }

                try
                {
                    addresses.Add(Member.Parse(line.Split('\t', 2)[0]).Address); // "\tdisabled: REASON" is members list's
                }
                catch (FormatException e)
                {
                    throw new CliException(ExitCodes.DataError, $"member {lineNo}: {e.Message}; nothing was removed");
                }
            }

            if (addresses.Count == 0)
            {
                throw new CliException(ExitCodes.Usage, "name the addresses to remove, or --file");
            }

            using var store = new ListStore(paths.Database);
            store.GetList(name);
            var missing = addresses.Where(a => !store.IsMember(name, a)).DistinctBy(ListStore.AddressKey).ToList();
            var removed = store.RemoveMembers(name, addresses);
            Console.WriteLine($"{name}: {removed} removed");
            if (missing.Count > 0)
            {
                throw new CliException(1, $"not members of {name}: {string.Join(", ", missing.Take(20))}{(missing.Count > 20 ? $" and {missing.Count - 20} more" : "")}");
            }

            return 0;
        }));
        command.Subcommands.Add(remove);

        var setList = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var setAddress = new Argument<string>("address") { Description = "the member" };
        var setKey = new Argument<string>("key") { Description = "moderation_action" };
        var setValue = new Argument<string>("value") { Description = "defer | accept | hold | reject | discard" };
        var set = new Command("set", "change a member's setting (moderation_action)") { setList, setAddress, setKey, setValue };
        set.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var name = ListsCommand.Parse(parse.GetValue(setList)!);
            var key = parse.GetValue(setKey)!;
            if (!key.Equals("moderation_action", StringComparison.OrdinalIgnoreCase))
            {
                throw new CliException(ExitCodes.Usage, $"unknown member setting '{key}'; known: moderation_action");
            }

            var value = parse.GetValue(setValue)!;
            if (!Enum.TryParse<ModerationAction>(value, ignoreCase: true, out var action) || !Enum.IsDefined(action) || int.TryParse(value, out _))
            {
                throw new CliException(ExitCodes.DataError, $"moderation_action: expected defer, accept, hold, reject or discard, got '{value}'");
            }

            using var store = new ListStore(paths.Database);
            store.GetList(name);
            var address = parse.GetValue(setAddress)!;
            if (!store.SetModerationAction(name, address, action.ToString().ToLowerInvariant()))
            {
                throw new CliException(ExitCodes.NoUser, $"{address} is not a member of {name}");
            }

            Console.WriteLine($"{name}: {address} moderation_action {action.ToString().ToLowerInvariant()}");
            return 0;
        }));
        command.Subcommands.Add(set);
        return command;
    }

    // `members show LIST ADDR`: everything the store knows about one member, one "key: value" a line.
    private static Command ShowMember()
    {
        var list = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var address = new Argument<string>("address") { Description = "the member's address" };
        var show = new Command("show", "show a member's delivery status, bounce score and warnings") { list, address };
        show.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            using var store = new ListStore(paths.Database);
            var name = ListsCommand.Parse(parse.GetValue(list)!);
            store.GetList(name);
            var m = store.FindMember(name, parse.GetValue(address)!)
                ?? throw new CliException(ExitCodes.NoUser, $"{parse.GetValue(address)} is not a member of {name}");
            static string When(DateTimeOffset? t) => t is { } v ? v.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture) : "-";
            Console.WriteLine($"address: {m.Address}");
            Console.WriteLine($"display_name: {m.DisplayName}");
            Console.WriteLine($"delivery: {(m.DeliveryEnabled ? "enabled" : "disabled")}");
            Console.WriteLine($"disabled_reason: {(m.DeliveryEnabled ? "-" : m.DisabledReason.Length > 0 ? m.DisabledReason : "unknown")}");
            Console.WriteLine($"disabled_at: {When(m.DisabledAt)}");
            Console.WriteLine($"bounce_score: {m.BounceScore.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture)}");
            Console.WriteLine($"last_bounce: {When(m.LastBounce)}");
            Console.WriteLine($"last_bounce_said: {m.LastBounceSaid ?? "-"}");
            Console.WriteLine($"probe_sent: {When(m.ProbeSent)}");
            Console.WriteLine($"warnings_sent: {m.WarningsSent}");
            Console.WriteLine($"last_warning: {When(m.LastWarning)}");
            Console.WriteLine($"joined: {When(m.JoinedAt)}");
            return 0;
        }));
        return show;
    }

    // `members enable|disable LIST ADDR...`: one transaction; addresses that are not members are
    // named on stderr and make the exit code 1, the others are still changed.
    private static Command SetDelivery(string verb, string description, string reason)
    {
        var list = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var addresses = new Argument<string[]>("address") { Description = "members' addresses", Arity = ArgumentArity.OneOrMore };
        var command = new Command(verb, description) { list, addresses };
        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            using var store = new ListStore(paths.Database);
            var name = ListsCommand.Parse(parse.GetValue(list)!);
            store.GetList(name);
            var now = DateTimeOffset.UtcNow;
            var missing = store.InTransaction(() => parse.GetValue(addresses)!.Where(a => !store.SetDelivery(name, a, reason, now)).ToList());
            foreach (var a in missing)
            {
                Console.Error.WriteLine($"mailman: {a} is not a member of {name}");
            }

            Console.WriteLine($"{name}: {parse.GetValue(addresses)!.Length - missing.Count} {verb}d");
            return missing.Count == 0 ? 0 : 1;
        }));
        return command;
    }

    // RFC 5322's specials: a display name with one is written quoted.
    private static readonly System.Buffers.SearchValues<char> NameSpecials = System.Buffers.SearchValues.Create("()<>[]:;@\\,.\"");

    private static IEnumerable<string> ReadLines(string? file)
    {
        if (file is null)
        {
            yield break;
        }

        StreamReader reader;
        try
        {
            reader = file == "-" ? new StreamReader(Console.OpenStandardInput()) : new StreamReader(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // 66, as inject --file (review 40: a missing file was 73, a directory 77).
            throw new CliException(ExitCodes.NoInput, $"cannot read {file}: {Instance.FileOwner.WhyUnreadable(file, e)}");
        }

        using var _ = reader;
        while (reader.ReadLine() is { } line)
        {
            yield return line;
        }
    }

    // `members list` writes "\tdisabled: REASON" after a disabled member: read back, the member
    // stays disabled (review 80: a list moved by list and add --file came back all enabled).
    private static Member WithStatus(Member member, string? status)
    {
        if (status is null || status.Trim().Length == 0)
        {
            return member;
        }

        var words = status.Trim().ToLowerInvariant();
        var reason = words == "disabled" ? "unknown" : words.StartsWith("disabled:", StringComparison.Ordinal) ? words["disabled:".Length..].Trim() : null;
        if (reason is not (DisabledReason.Bounces or DisabledReason.User or DisabledReason.Moderator or "unknown"))
        {
            throw new FormatException($"after the tab: expected what members list writes (disabled: bounce, user, moderator or unknown), got '{Member.Sanitize(status.Trim())}'");
        }

        return member with { DeliveryEnabled = false, DisabledReason = reason == "unknown" ? DisabledReason.None : reason };
    }
}
