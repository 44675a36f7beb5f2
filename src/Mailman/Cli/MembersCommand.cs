// `mailman members add|list|remove`. `add --file` imports one member a line (`addr` or
// `Display Name <addr>`) in one transaction.
using System.CommandLine;
using Mailman.Lists;

namespace Mailman.Cli;

internal static class MembersCommand
{
    public static Command Create()
    {
        var command = new Command("members", "add, list and remove list members");

        var list = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var addresses = new Argument<string[]>("address") { Description = "addresses (or 'Name <addr>')", Arity = ArgumentArity.ZeroOrMore };
        var file = new Option<string?>("--file") { Description = "one member a line; '-' reads standard input" };
        var add = new Command("add", "add members") { list, addresses, file };
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

            using var store = new ListStore(paths.Database);
            var added = store.AddMembers(name, members);
            Console.WriteLine($"{name}: {added} added, {members.Count - added} already members");
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
        var removeAddresses = new Argument<string[]>("address") { Description = "addresses to remove", Arity = ArgumentArity.OneOrMore };
        var remove = new Command("remove", "remove members") { removeList, removeAddresses };
        remove.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            using var store = new ListStore(paths.Database);
            var name = ListsCommand.Parse(parse.GetValue(removeList)!);
            var removed = store.RemoveMembers(name, parse.GetValue(removeAddresses)!);
            Console.WriteLine($"{name}: {removed} removed");
            return 0;
        }));
        command.Subcommands.Add(remove);
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
