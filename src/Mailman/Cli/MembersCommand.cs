// `mailman members add|list|remove|set`. `add --file` imports one member a line (`addr` or
// `Display Name <addr>`) in one transaction; new members are welcomed when the list sends
// welcome messages (send_welcome_message), or as --welcome / --no-welcome say. `remove --file`
// reads the same format; removing an address that is not a member is an error (exit 1), the
// others are removed.
using System.CommandLine;
using Mailman.Lists;
using Mailman.Requests;
using Microsoft.Extensions.DependencyInjection;

namespace Mailman.Cli;

internal static class MembersCommand
{
    public static Command Create()
    {
        var command = new Command("members", "add, list and remove list members");

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
                    members.Add(Member.Parse(line));
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
            var added = new List<Member>();
            store.AddMembers(name, members, added);
            var welcomed = 0;
            if (added.Count > 0 && !parse.GetValue(noWelcome) && (parse.GetValue(welcome) || mailingList.SendWelcomeMessage))
            {
                using var services = CliServices.Build(paths);
                var membership = services.GetRequiredService<Membership>();
                var trigger = Membership.NewTrigger(services.GetRequiredService<TimeProvider>());
                welcomed = added.Count(m => membership.Welcome(mailingList, m, trigger));
            }

            Console.WriteLine($"{name}: {added.Count} added, {members.Count - added.Count} already members" + (welcomed > 0 ? $", {welcomed} welcomed" : ""));
            return 0;
        }));
        command.Subcommands.Add(add);

        var listName = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var show = new Command("list", "list members") { listName };
        show.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            using var store = new ListStore(paths.Database);
            var name = ListsCommand.Parse(parse.GetValue(listName)!);
            store.GetList(name);
            using var output = new StreamWriter(Console.OpenStandardOutput());
            foreach (var m in store.Members(name))
            {
                output.Write(string.IsNullOrEmpty(m.DisplayName) ? m.Address : $"{m.DisplayName} <{m.Address}>");
                output.WriteLine(m.DeliveryEnabled ? "" : "\t(delivery disabled)");
            }

            return 0;
        }));
        command.Subcommands.Add(show);

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
                    addresses.Add(Member.Parse(line).Address);
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
            var missing = addresses.Where(a => !store.IsMember(name, a)).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
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
                throw new CliException(ExitCodes.Usage, $"moderation_action: expected defer, accept, hold, reject or discard, got '{value}'");
            }

            using var store = new ListStore(paths.Database);
            store.GetList(name);
            var address = parse.GetValue(setAddress)!;
            if (!store.SetModerationAction(name, address, action.ToString().ToLowerInvariant()))
            {
                throw new CliException(1, $"{address} is not a member of {name}");
            }

            Console.WriteLine($"{name}: {address} moderation_action {action.ToString().ToLowerInvariant()}");
            return 0;
        }));
        command.Subcommands.Add(set);
        return command;
    }

    private static IEnumerable<string> ReadLines(string? file)
    {
        if (file is null)
        {
            yield break;
        }

        using var reader = file == "-" ? new StreamReader(Console.OpenStandardInput()) : new StreamReader(file);
        while (reader.ReadLine() is { } line)
        {
            yield return line;
        }
    }
}
