// `mailman pending list|show|confirm|discard`: requests that wait for someone. A list's
// moderator approves subscriptions here (policies moderate and confirm_then_moderate); an
// operator can confirm or drop any subscription request. Tokens are stored hashed, so a request
// is named by its number (from `pending list`) or by the token its mail carried.
using System.CommandLine;
using System.Globalization;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Requests;
using Microsoft.Extensions.DependencyInjection;

namespace Mailman.Cli;

internal static class PendingCommand
{
    // A held post's request lives as long as the post is held (its list's max_days_to_hold): the
    // row says so, not "expires 9999-12-31" (review 121).
    private const string HeldPostLife = "while the post is held";

    public static Command Create()
    {
        var command = new Command("pending", "list, show, confirm and discard requests awaiting confirmation or a moderator");

        var listName = new Argument<string?>("list") { Description = "only this list, LIST@HOST", Arity = ArgumentArity.ZeroOrOne };
        var list = new Command("list", "every pending request, oldest first") { listName };
        list.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            paths.EnsureCreated();
            using var store = new ListStore(paths.Database);
            var name = parse.GetValue(listName) is { } n ? ListsCommand.Parse(n) : null;
            if (name is not null)
            {
                store.GetList(name);
            }

            var now = DateTimeOffset.UtcNow;
            foreach (var r in store.PendingRequests(name))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Id}\t{r.List.Fqdn}\t{r.Kind}\t{Show(r)}\tasked {r.Created:yyyy-MM-dd HH:mm}Z\t{(WhileHeld(r) ? HeldPostLife : r.Expires <= now ? "expired" : $"expires {r.Expires:yyyy-MM-dd HH:mm}Z")}"));
            }

            return 0;
        }));
        command.Subcommands.Add(list);

        var showRequest = Request();
        var show = new Command("show", "one request in full") { showRequest };
        show.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var r = Find(paths, parse.GetValue(showRequest)!);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
                id: {r.Id}
                list: {r.List.Fqdn}
                kind: {r.Kind}
                address: {r.Address}
                display_name: {r.DisplayName}
                key: {r.Key}
                data: {r.Data}
                created: {r.Created:u}
                expires: {(WhileHeld(r) ? HeldPostLife : $"{r.Expires:u}{(r.Expires <= DateTimeOffset.UtcNow ? " (expired)" : "")}")}
                """));
            return 0;
        }));
        command.Subcommands.Add(show);

        var confirmRequest = Request();
        var confirm = new Command("confirm", "confirm or approve a request (a moderator's approval of a subscription)") { confirmRequest };
        confirm.SetAction(parse => MailmanCli.Guard(parse, paths => Decide(paths, parse.GetValue(confirmRequest)!, "approve")));
        command.Subcommands.Add(confirm);

        var discardRequest = Request();
        var reason = new Option<string?>("--reason") { Description = "reject with this reason: the address is told (subscriptions awaiting a moderator)" };
        var discard = new Command("discard", "drop a request; with --reason, reject it") { discardRequest, reason };
        discard.SetAction(parse => MailmanCli.Guard(parse, paths =>
            Decide(paths, parse.GetValue(discardRequest)!, parse.GetValue(reason) is { Length: > 0 } why ? "reject " + why : "discard")));
        command.Subcommands.Add(discard);
        return command;
    }

    private static Argument<string> Request() => new("request") { Description = "the request's number (pending list) or its token" };

    private static int Decide(InstancePaths paths, string which, string command)
    {
        var request = Find(paths, which);
        if (request.Expires <= DateTimeOffset.UtcNow)
        {
            throw new CliException(ExitCodes.NoUser, $"request {request.Id} expired at {request.Expires:u}; `mailman pending discard {request.Id}` removes it");
        }

        // Review 129: it said "requests of kind held-post cannot be confirmed here".
        if (request.Kind == PendingKind.HeldPost)
        {
            throw new CliException(ExitCodes.DataError, $"request {request.Id} is the held post {request.Key}: `mailman held approve|reject|discard {request.Key}` decides it");
        }

        // The notice a decision owes (a welcome, a refusal) is recorded in its transaction and
        // queued after, while this holds var/owing/TRIGGER.lock: killed between, or with the out
        // queue unwritable, the daemon sends it (at its start, or within ten minutes).
        using var services = CliServices.Build(paths);
        var membership = services.GetRequiredService<Membership>();
        var trigger = Membership.NewTrigger(services.GetRequiredService<TimeProvider>());
        ConfirmationResult result;
        using (var owing = membership.Owing(trigger))
        {
            try
            {
                result = services.GetRequiredService<Confirmations>().Confirm(request, command, null, $"the command line ({Environment.UserName})", trigger);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                owing.Dispose();
                membership.LeaveOwed(trigger);
                using var store = new ListStore(paths.Database);
                if (store.FindPending(request.Id) is not null)
                {
                    throw;
                }

                // Decided, its notice owed (review 128: "try again" led to "no pending request N").
                // A confirmation of confirm_then_moderate decides nothing: the request now awaits
                // a moderator, and they are owed the telling (review 142).
                Console.Error.WriteLine(request.Kind == PendingKind.Subscribe && request.Data == SubscriptionRequests.ThenModerate && command == "approve"
                    ? $"mailman: request {request.Id} is confirmed and now awaits a moderator, but the moderators' notices could not be queued ({e.Message}); they are owed, and the daemon sends them when it can write its out queue (at its start, or within ten minutes)"
                    : $"mailman: request {request.Id} is decided ({Member.Sanitize(command)}), but the notice it owes could not be queued ({e.Message}); it is owed, and the daemon sends it when it can write its out queue (at its start, or within ten minutes)");
                return 0;
            }
        }

        if (!result.Done)
        {
            throw new CliException(ExitCodes.DataError, result.Summary);
        }

        Console.WriteLine(result.Summary);
        return 0;
    }

    // A number from `pending list`, or a token as mailed (live requests only).
    private static PendingRequest Find(InstancePaths paths, string which)
    {
        paths.EnsureCreated();
        using var store = new ListStore(paths.Database);
        var w = which.Trim().ToLowerInvariant();
        PendingRequest? request = w.Length is > 0 and < 19 && w.All(char.IsAsciiDigit) ? store.FindPending(long.Parse(w, CultureInfo.InvariantCulture))
            : ListStore.IsTokenShaped(w) ? store.FindPending(w, DateTimeOffset.UtcNow)
            : throw new CliException(ExitCodes.Usage, $"'{Member.Sanitize(which)}' is neither a request number (see `mailman pending list`) nor a token");
        return request ?? throw new CliException(ExitCodes.NoUser, $"no pending request {Member.Sanitize(which)} (used, discarded or expired)");
    }

    // Stored as DateTimeOffset.MaxValue to the millisecond.
    private static bool WhileHeld(PendingRequest r) => r.Expires.Year == DateTimeOffset.MaxValue.Year;

    private static string Show(PendingRequest r) => r.DisplayName.Length > 0 ? $"{r.DisplayName} <{r.Address}>" : r.Address;
}
