// `mailman held list|show|approve|reject|discard|defer`: the moderator's verbs for held posts.
// IDs are hold entry names, checked before they become paths; several IDs are acted on one by
// one, and the exit code is 1 if any of them could not be.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mailman.Moderation;

namespace Mailman.Cli;

internal static class HeldCommand
{
    public static Command Create()
    {
        var command = new Command("held", "list, show, approve, reject, discard or defer held posts");

        var listName = new Argument<string?>("list") { Description = "only this list, LIST@HOST", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var list = new Command("list", "list held posts, oldest first") { listName, json };
        list.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            using var services = new VerbServices(paths);
            var only = parse.GetValue(listName) is { } l ? ListsCommand.Parse(l) : null;
            if (only is not null)
            {
                using var store = services.Lists.Open();
                store.GetList(only);
            }

            var posts = services.Held.List(only);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(posts.ToList(), HeldJson.Default.ListHeldPost));
                return 0;
            }

            foreach (var p in posts)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{p.Id}\t{p.List}\t{p.HeldAt:yyyy-MM-dd HH:mm}\t{QueueCommand.Printable(p.From)}\t{QueueCommand.Printable(p.Subject)}\t{QueueCommand.Printable(string.Join("; ", p.Reasons.Select(r => r.Split(':')[0])))}{(p.Claimed ? "\t(being acted on)" : "")}{(p.RejectedBy is { } by ? $"\t(rejected by {QueueCommand.Printable(by)}: the next action finishes it)" : "")}"));
            }

            Console.Error.WriteLine($"{posts.Count} held");
            return 0;
        }));
        command.Subcommands.Add(list);

        var showId = new Argument<string>("id") { Description = "the held post's id (from `held list`)" };
        var show = new Command("show", "show a held post: why it is held, its headers, the start of its body") { showId };
        show.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            using var services = new VerbServices(paths);
            // 64, as approve|reject|discard|defer and queue show have it (review 40: it was 65).
            var id = QueueCommand.CheckedId(parse.GetValue(showId)!);

            var found = services.Held.Show(id) ?? throw new CliException(ExitCodes.NoUser, $"{id}: no such held post");
            var (post, head) = found;
            Console.WriteLine($"id: {post.Id}");
            Console.WriteLine($"list: {post.List}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"held at: {post.HeldAt:yyyy-MM-dd HH:mm:ss zzz}"));
            Console.WriteLine($"envelope sender: {(head.Metadata.Sender is { } sender ? QueueCommand.Printable(sender) : "(none)")}");
            Console.WriteLine($"size: {post.Size} bytes");
            foreach (var reason in post.Reasons)
            {
                Console.WriteLine($"reason: {QueueCommand.Printable(reason)}");
            }

            Console.WriteLine();
            QueueCommand.PrintHeaders(head.Headers);
            Console.WriteLine();
            Console.WriteLine(QueueCommand.PrintableBody(head.BodyStart));
            return 0;
        }));
        command.Subcommands.Add(show);

        command.Subcommands.Add(Action("approve", "send held posts to the list", (held, id, _) => held.Approve(id, VerbServices.Actor)));
        var reason = new Option<string?>("--reason") { Description = "why (sent to the poster)" };
        command.Subcommands.Add(Action("reject", "refuse held posts; the poster is told why", (held, id, parse) => held.Reject(id, parse.GetValue(reason), VerbServices.Actor), reason));
        command.Subcommands.Add(Action("discard", "drop held posts; nobody is told", (held, id, _) => held.Discard(id, VerbServices.Actor)));
        command.Subcommands.Add(Action("defer", "leave held posts held", (held, id, _) => held.Defer(id, VerbServices.Actor)));
        return command;
    }

    private static Command Action(string name, string description, Func<HeldPosts, string, ParseResult, ModerationOutcome> act, Option? option = null)
    {
        var ids = new Argument<string[]>("id") { Description = "held post ids (from `held list`)", Arity = ArgumentArity.OneOrMore };
        var command = new Command(name, description) { ids };
        if (option is not null)
        {
            command.Options.Add(option);
        }

        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            // An id that is not one is a usage error, as `queue show` has it, before any post is acted on.
            foreach (var id in parse.GetValue(ids)!)
            {
                QueueCommand.CheckedId(id, "; nothing was done");
            }

            using var services = new VerbServices(paths);
            var failed = 0;
            foreach (var id in parse.GetValue(ids)!)
            {
                var outcome = act(services.Held, id, parse);
                if (outcome.Done)
                {
                    Console.WriteLine(outcome.Summary);
                }
                else
                {
                    Console.Error.WriteLine("mailman: " + outcome.Summary);
                    failed++;
                }
            }

            return failed == 0 ? 0 : 1;
        }));
        return command;
    }
}

/// <summary>Source-generated JSON for `held list --json`.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(List<HeldPost>))]
internal sealed partial class HeldJson : JsonSerializerContext;
