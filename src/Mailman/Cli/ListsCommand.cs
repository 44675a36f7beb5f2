// `mailman lists create|list|show|set`.
using System.CommandLine;
using Mailman.Lists;

namespace Mailman.Cli;

internal static class ListsCommand
{
    public static Command Create()
    {
        var command = new Command("lists", "create, list, show and change mailing lists");

        var name = new Argument<string>("list") { Description = "the list, LIST@HOST" };
        var displayName = new Option<string?>("--display-name") { Description = "name shown in the subject prefix and footer" };
        var personalize = new Option<string>("--personalize") { Description = "none | full", DefaultValueFactory = _ => "full" };
        var create = new Command("create", "create a list") { name, displayName, personalize };
        create.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var listName = Parse(parse.GetValue(name)!);
            var list = new MailingList { Name = listName, DisplayName = listName.LocalPart };
            if (parse.GetValue(displayName) is { } dn)
            {
                list.Set("display_name", dn);
            }

            list.Set("personalize", parse.GetValue(personalize)!);
            paths.EnsureCreated();
            using var store = new ListStore(paths.Database);
            store.CreateList(list);
            Console.WriteLine($"created {listName}");
            return 0;
        }));
        command.Subcommands.Add(create);

        var all = new Command("list", "list every list");
        all.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            paths.EnsureCreated();
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
            list.Set(parse.GetValue(key)!, parse.GetValue(value)!);
            store.SaveList(list);
            Console.WriteLine($"{list.Name}: {parse.GetValue(key)} set");
            return 0;
        }));
        command.Subcommands.Add(set);
        return command;
    }

    internal static ListName Parse(string text)
        => ListName.TryParse(text, out var name, out var error) ? name : throw new CliException(ExitCodes.Usage, error);
}
