// `mailman unshunt`: puts shunted entries back in the queue they failed in (after a fix), under
// their own name and with their delivery checkpoint, so a delivery that failed half-way
// resumes where it stopped instead of starting again. `--queue unrecognized` does the same for
// bounces the bounce runner set aside (after adding an owner, say): they go back to bounces.
using System.CommandLine;
using System.IO.Abstractions;
using Mailman.Queues;

namespace Mailman.Cli;

internal static class UnshuntCommand
{
    public static Command Create()
    {
        var queue = new Option<string>("--queue") { Description = "shunt (default) or unrecognized", DefaultValueFactory = _ => QueueSet.Shunt };
        var command = new Command("unshunt", "move shunted (or unrecognized) entries back to the queue they came from") { queue };
        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var source = parse.GetValue(queue)!.ToLowerInvariant();
            if (source is not (QueueSet.Shunt or QueueSet.Unrecognized))
            {
                throw new CliException(ExitCodes.Usage, $"--queue: expected shunt or unrecognized, got '{source}'");
            }

            using var verbLock = QueueLock.Shared(paths, TimeSpan.FromSeconds(60));
            using var queues = new QueueSet(new FileSystem(), paths, TimeProvider.System);
            var shunt = queues[source];
            int moved = 0, refused = 0;
            foreach (var name in shunt.Pending())
            {
                string? from;
                try
                {
                    from = shunt.ReadState(name)?.FromQueue;
                    if (from is null || !QueueSet.Names.Contains(from) || from is QueueSet.Shunt or QueueSet.Bad or QueueSet.Unrecognized)
                    {
                        // No record of where it came from (a state file lost): an entry with
                        // recipients was on its way out; never send one back through the list.
                        // What waits in unrecognized came from bounces.
                        from = source == QueueSet.Unrecognized ? QueueSet.Bounces : Infer(shunt, name);
                        Console.Error.WriteLine($"mailman: {name}: where it was set aside from is not recorded; it goes to {from}");
                    }
                }
                catch (EntryLockedException e)
                {
                    // Where it came from is not known now: never guessed (review 123: a post went
                    // back through the list and was discarded as a loop).
                    Console.Error.WriteLine($"mailman: {name} not moved: {e.Message}; run unshunt again once it is let go");
                    refused++;
                    continue;
                }

                var target = from;
                if (queues[target].Holds(name))
                {
                    Console.Error.WriteLine($"mailman: {name} not moved: {target} already holds an entry of that name");
                    refused++;
                    continue;
                }

                try
                {
                    if (shunt.Restore(name, queues[target]))
                    {
                        Console.WriteLine($"{name} -> {target}");
                        moved++;
                    }
                }
                catch (CorruptEntryException e)
                {
                    // A link or FIFO under an entry's name (queue list calls it no entry): left alone (review 46).
                    Console.Error.WriteLine($"mailman: {e.Message}: not moved; move it out of queues/{source}");
                    refused++;
                }
                catch (EntryBlockedException e)
                {
                    // Nothing moved and nothing left claimed (review 46: a failed move left it claimed until a restart).
                    Console.Error.WriteLine($"mailman: {name} not moved: {e.Message}; move that away and run unshunt again");
                    refused++;
                }
            }

            Console.WriteLine($"{moved} entries moved back{(refused > 0 ? $", {refused} not moved (above)" : "")}");
            return refused > 0 ? 1 : 0;
        }));
        return command;
    }

    private static string Infer(Switchboard shunt, string name)
    {
        try
        {
            var metadata = shunt.ReadMetadata(name);
            return metadata.HasRecipients ? QueueSet.Out : metadata.SlotNonce is not null || metadata.Personalized ? QueueSet.Out : QueueSet.In;
        }
        catch (Exception e) when (e is CorruptEntryException or IOException or UnauthorizedAccessException && e is not EntryLockedException)
        {
            return QueueSet.In;
        }
    }
}
