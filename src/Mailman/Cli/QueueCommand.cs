// `mailman queue list QUEUE`, `queue show ID`, `queue delete ID --yes`, `queue flush [ID...]`: what an operator needs to
// look into the queues the daemon leaves entries in (hold, shunt, bad, bounces, request, owner):
// each entry's list, sender, subject and error; one entry's metadata, headers and start of body.
// IDs are checked before they become paths; delete asks for --yes and refuses the queues the
// daemon works through (in, pipeline, out, retry), where an entry is in flight.
using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Mailman.Instance;
using Mailman.Queues;
using Mailman.Runners;
using MimeKit;

namespace Mailman.Cli;

internal static class QueueCommand
{
    /// <summary>Queues an operator may delete from: entries there wait for a person, not for a runner.</summary>
    // retry too: its entries wait unclaimed between attempts, and the recipients of one that
    // must not go are given up with it (review 109: Guarantees pointed there, the verb refused).
    public static readonly IReadOnlyList<string> Deletable = [QueueSet.Hold, QueueSet.Retry, QueueSet.Shunt, QueueSet.Bad, QueueSet.Bounces, QueueSet.Request, QueueSet.Owner, QueueSet.Unrecognized];

    public static Command Create()
    {
        var command = new Command("queue", "look into the queues: list, show and delete entries; flush retry");

        var queueName = new Argument<string>("queue") { Description = "one of " + string.Join(", ", QueueSet.Names) };
        var list = new Command("list", "list the entries of a queue, oldest first") { queueName };
        list.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var name = parse.GetValue(queueName)!.ToLowerInvariant();
            if (!QueueSet.Names.Contains(name))
            {
                throw new CliException(ExitCodes.Usage, $"no queue named '{Printable(name)}'; queues: {string.Join(", ", QueueSet.Names)}");
            }

            using var services = new VerbServices(paths);
            var queue = services.Queues[name];
            var count = 0;
            foreach (var id in queue.Pending().Concat(queue.Claimed()).Distinct().Order(StringComparer.Ordinal))
            {
                count++;
                try
                {
                    if (EntryPeeks.Read(queue, id, bodyBytes: 0) is not { } head)
                    {
                        continue;
                    }

                    var m = head.Metadata;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{id}\t{(head.Claimed ? "claimed" : "waiting")}\t{m.List}\t{Bound(Header(head.Headers, HeaderId.From) ?? m.Sender ?? "", 60)}\t{Bound(Header(head.Headers, HeaderId.Subject) ?? "", 60)}\t{m.MessageLength} bytes\t{Bound(m.NotBefore is null ? m.Error ?? m.Purpose ?? "" : RetryOf(m, DateTimeOffset.UtcNow, services.Options.Retry.MaximumDelay) + (m.Error is { } e ? "; " + e : ""), 200)}"));
                }
                catch (UnauthorizedAccessException)
                {
                    // One entry this user may not read (left by root) does not hide the others.
                    var claimed = EntryFile(queue, id).EndsWith(Switchboard.ClaimedExtension, StringComparison.Ordinal);
                    Console.WriteLine($"{id}\tunreadable{(claimed ? " (claimed)" : "")}\t{CannotRead(queue, id)}");
                }
                catch (EntryLockedException e)
                {
                    // Held by another process (a writer stopped before its close, a tool): not
                    // broken, and the runner passes it over until it is let go.
                    Console.WriteLine($"{id}\tlocked\t{Bound(e.Message, 200)}");
                }
                catch (Exception e) when (e is CorruptEntryException or IOException)
                {
                    Console.WriteLine($"{id}\tunreadable\t{Bound(e.Message, 200)}");
                }
            }

            Console.Error.WriteLine($"{count} entries in {name}");
            return 0;
        }));
        command.Subcommands.Add(list);

        var showId = new Argument<string>("id") { Description = "the entry's id (from `queue list`)" };
        var show = new Command("show", "show an entry: its metadata, error, headers and the start of its body") { showId };
        show.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var id = CheckedId(parse.GetValue(showId)!);
            using var services = new VerbServices(paths);
            var queue = Find(services.Queues, id);
            EntryPeek? head;
            try
            {
                head = EntryPeeks.Read(queue, id);
            }
            catch (EntryLockedException e)
            {
                throw new CliException(ExitCodes.TempFail, $"{id} in {queue.Name}: {e.Message}; try again once it is let go (fuser names the process)");
            }
            catch (Exception e) when (e is CorruptEntryException or IOException)
            {
                Console.WriteLine($"id: {id}");
                Console.WriteLine($"queue: {queue.Name}");
                Console.WriteLine($"unreadable: {e.Message}");
                return 0;
            }
            catch (UnauthorizedAccessException)
            {
                // Left by root, say: name the owner and the mode, not .NET's sentence.
                // The instance's own user meets an entry another user (root) left: chown it.
                var me = FileOwner.UserName(FileOwner.EffectiveUid);
                var remedy = FileOwner.Uid(paths.Home) == FileOwner.EffectiveUid
                    ? $"as root, chown {me} {EntryFile(queue, id)} (another user left it)"
                    : "run queue show as the instance's user";
                throw new CliException(ExitCodes.NoPerm, $"{id} in {queue.Name}: {CannotRead(queue, id)}; {remedy}");
            }

            Console.WriteLine($"id: {id}");
            Console.WriteLine($"queue: {queue.Name}");

            if (head is null)
            {
                throw new CliException(ExitCodes.NoUser, $"{id}: gone from {queue.Name} meanwhile");
            }

            Console.WriteLine($"state: {(head.Claimed ? "claimed (a runner or a verb is acting on it)" : "waiting")}");
            if (head.Metadata.Error is { } error)
            {
                Console.WriteLine($"error: {Printable(error)}");
            }

            Console.WriteLine("metadata: " + Indented(JsonSerializer.SerializeToUtf8Bytes(head.Metadata, EntryMetadataJson.Default.EntryMetadata)));
            Console.WriteLine();
            PrintHeaders(head.Headers);
            Console.WriteLine();
            Console.WriteLine(PrintableBody(head.BodyStart));
            return 0;
        }));
        command.Subcommands.Add(show);

        var deleteId = new Argument<string>("id") { Description = "the entry's id" };
        var yes = new Option<bool>("--yes") { Description = "really delete it (it cannot be undone)" };
        var delete = new Command("delete", "delete an entry from " + string.Join(", ", Deletable)) { deleteId, yes };
        delete.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var id = CheckedId(parse.GetValue(deleteId)!);
            using var services = new VerbServices(paths);
            var queue = Find(services.Queues, id);
            if (!Deletable.Contains(queue.Name))
            {
                throw new CliException(ExitCodes.Usage, $"{id} is in {queue.Name}, where the daemon is working on it; only entries in {string.Join(", ", Deletable)} can be deleted");
            }

            if (!parse.GetValue(yes))
            {
                throw new CliException(ExitCodes.Usage, $"{id} in {queue.Name} would be deleted for good; add --yes to do it");
            }

            if (queue.Name == QueueSet.Hold)
            {
                var outcome = services.Held.Discard(id, VerbServices.Actor);
                Console.WriteLine(outcome.Done ? $"deleted {id} from hold (discarded)" : throw new CliException(ExitCodes.TempFail, outcome.Summary));
                return 0;
            }

            var claim = queue.Claim(id) ?? throw new CliException(ExitCodes.TempFail, $"{id}: a runner is acting on it (or it just went); try again");
            queue.Finish(claim);
            Console.WriteLine($"deleted {id} from {queue.Name}");
            return 0;
        }));
        command.Subcommands.Add(delete);
        command.Subcommands.Add(Flush());
        return command;
    }

    // `queue flush [ID...]`: asks the retry runner to send entries waiting in retry back to out
    // now, their backoff cleared (review 59: a post deferred through a long relay outage waited
    // up to Retry:MaximumDelay after the relay came back, with no way to send it sooner). The
    // verb only writes its request (var/flush/, one file, renamed into place); the move is the
    // runner's, under its own claim: a verb killed half-way left a claim only the next start
    // settled (review 63). The attempt still counts (the next backoff doubles as before).
    private static Command Flush()
    {
        var ids = new Argument<string[]>("id") { Description = "retry entries to send now (default: every one waiting in retry)", Arity = ArgumentArity.ZeroOrMore };
        var flush = new Command("flush", "send entries waiting in retry back to out now, without waiting for their next attempt") { ids };
        flush.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var named = (parse.GetValue(ids) ?? []).Select(id => CheckedId(Bound(id, 80))).Distinct(StringComparer.Ordinal).ToList();
            using var services = new VerbServices(paths);
            var retry = services.Queues[QueueSet.Retry];
            var asked = new List<string>();
            var refused = 0;
            foreach (var id in named.Count > 0 ? named : retry.Pending())
            {
                if (!retry.Holds(id))
                {
                    Console.Error.WriteLine($"mailman: {id}: not in retry{(services.Queues.All.FirstOrDefault(q => q.Holds(id)) is { } q ? $" (it is in {q.Name})" : "")}");
                    refused++;
                    continue;
                }

                asked.Add(id);
                try
                {
                    var m = retry.ReadMetadata(id);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{id}\t{m.List}\t{m.RecipientCount} recipients, attempt {m.Attempts + 1}"));
                }
                catch (Exception e) when (e is CorruptEntryException or IOException or UnauthorizedAccessException)
                {
                    // Claimed by the runner meanwhile, or unreadable (the runner sets it aside): asked for all the same.
                    Console.WriteLine($"{id}\t(being moved, or unreadable: {Bound(Printable(e.Message), 100)})");
                }
            }

            if (asked.Count > 0)
            {
                WriteFlushRequest(paths, asked);
            }

            Console.WriteLine($"{asked.Count} entries asked to go back to out now: a running daemon sends them within Queues:PollInterval, a stopped one at its start{(refused > 0 ? $"; {refused} not in retry (named on stderr)" : "")}");
            return refused > 0 ? 1 : 0;
        }));
        return flush;
    }

    private static void WriteFlushRequest(InstancePaths paths, List<string> ids)
    {
        var directory = paths.FlushRequests;
        var name = string.Create(CultureInfo.InvariantCulture, $"{DateTime.UtcNow.Ticks:D19}-{Environment.ProcessId}-{Random.Shared.Next():x8}");
        var temp = Path.Combine(directory, name + ".tmp");
        try
        {
            Directory.CreateDirectory(directory);
            FileOwner.WriteNew(temp, Encoding.ASCII.GetBytes(string.Join('\n', ids) + "\n"));
            File.Move(temp, Path.Combine(directory, name + RetryRunner.FlushExtension));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            FileOwner.TryDelete(temp); // one left (not removable either) is a stray temporary, never read
            throw new CliException(e is UnauthorizedAccessException ? ExitCodes.NoPerm : ExitCodes.TempFail, $"the request cannot be written in {directory}: {e.Message}; nothing was asked, the entries wait for their next attempt");
        }
    }

    /// <summary>Prints a header block for a person: one line per header, values cut and cleaned of control characters.</summary>
    public static void PrintHeaders(HeaderList headers)
    {
        var n = 0;
        foreach (var header in headers)
        {
            if (++n > 200)
            {
                Console.WriteLine($"... {headers.Count - 200} more headers");
                break;
            }

            Console.WriteLine($"{Printable(header.Field)}: {Bound(Printable(header.Value.Trim()), 1000)}");
        }
    }

    /// <summary>The id, or a usage error (64) naming what an id looks like; before it becomes a path.</summary>
    internal static string CheckedId(string id, string after = "")
        => Switchboard.IsValidEntryName(id) ? id : throw new CliException(ExitCodes.Usage, $"'{Printable(id)}' is not a queue entry id (17 digits, '-', 8 hex digits){after}");

    private static Switchboard Find(QueueSet queues, string id)
        => queues.All.FirstOrDefault(q => q.Holds(id)) ?? throw new CliException(ExitCodes.NoUser, $"{id}: no such entry in any queue");

    private static string? Header(HeaderList headers, HeaderId id) => headers[id] is { } v ? Printable(v.Trim()) : null;

    private static string Indented(byte[] json)
    {
        using var document = JsonDocument.Parse(json);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            document.WriteTo(writer);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    // An entry this user may not read: whose it is and its mode (left by root, say).
    private static string CannotRead(Switchboard queue, string id)
    {
        var file = EntryFile(queue, id);
        return $"cannot read it as {FileOwner.UserName(FileOwner.EffectiveUid)} ({file} is {FileOwner.Describe(file)})";
    }

    // A retry entry's next attempt, attempt number and recipients (review 59: only `queue show`
    // told them, one entry at a time).
    // One due further ahead than any backoff (a clock that was ahead, an edit) goes at once, as
    // the retry runner takes it (RetryRunner.IsDue; review 71: the listing showed the far time).
    private static string RetryOf(EntryMetadata m, DateTimeOffset now, TimeSpan longestWait)
        => string.Create(CultureInfo.InvariantCulture, $"next attempt {m.NotBefore!.Value.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC")
            + (m.NotBefore.Value - now > longestWait ? $" (further ahead than Retry:MaximumDelay, {longestWait}: it goes at the retry runner's next look)" : "")
            + string.Create(CultureInfo.InvariantCulture, $", attempt {m.Attempts + 1}, {m.RecipientCount} recipients");

    // The entry's file: waiting, or claimed.
    private static string EntryFile(Switchboard queue, string id)
    {
        var file = queue.PathOf(id, Switchboard.EntryExtension);
        return File.Exists(file) ? file : queue.PathOf(id, Switchboard.ClaimedExtension);
    }

    private static string Bound(string text, int max) => text.Length <= max ? text : text[..(max - 3)] + "...";

    /// <summary>One line for the terminal: control and format characters (a bidi override) as spaces, at most 4,096 characters.</summary>
    internal static string Printable(string s)
    {
        var sb = new StringBuilder(Math.Min(s.Length, 4096));
        foreach (var c in s.Length > 4096 ? s[..4096] : s)
        {
            sb.Append(char.IsControl(c) || IsFormat(c) ? ' ' : c);
        }

        return sb.ToString();
    }

    /// <summary>
    /// The start of a body for the terminal: lines and tabs kept, every other control character
    /// (an escape sequence that clears the screen or writes the clipboard) and format character
    /// (a bidi override) shown as '?' (review 27: they reached the operator's terminal raw).
    /// </summary>
    internal static string PrintableBody(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var c in s.Replace("\r\n", "\n", StringComparison.Ordinal))
        {
            sb.Append(c is '\n' or '\t' ? c : char.IsControl(c) || IsFormat(c) ? '?' : c);
        }

        return sb.ToString();
    }

    private static bool IsFormat(char c) => c > 127 && CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.Format;
}
