// `mailman unshunt`: puts shunted entries back in the queue they failed in (after a fix), under
// their own name and with their delivery checkpoint, so a delivery that failed half-way
// resumes where it stopped instead of starting again.
using System.CommandLine;
using System.IO.Abstractions;
using Mailman.Queues;

namespace Mailman.Cli;

internal static class UnshuntCommand
{
    public static Command Create()
    {
        var command = new Command("unshunt", "move shunted entries back to the queue they came from");
        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            using var verbLock = QueueLock.Shared(paths, TimeSpan.FromSeconds(60));
            using var queues = new QueueSet(new FileSystem(), paths, TimeProvider.System);
            var shunt = queues[QueueSet.Shunt];
            var moved = 0;
            foreach (var name in shunt.Pending())
            {
                var from = shunt.ReadState(name)?.FromQueue;
                if (from is null || !QueueSet.Names.Contains(from) || from is QueueSet.Shunt or QueueSet.Bad)
                {
                    // No record of where it came from (a state file lost): an entry with
                    // recipients was on its way out; never send one back through the list.
                    from = Infer(shunt, name);
                    Console.Error.WriteLine($"mailman: {name}: where it was shunted from is not recorded; it goes to {from}");
                }

                var target = from;
                if (queues[target].Holds(name))
                {
                    Console.Error.WriteLine($"mailman: {name} not moved: {target} already holds an entry of that name");
                    continue;
                }

                if (shunt.Restore(name, queues[target]))
                {
                    Console.WriteLine($"{name} -> {target}");
                    moved++;
                }
            }

            Console.WriteLine($"{moved} entries moved back");
            return 0;
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
        catch (Exception e) when (e is CorruptEntryException or IOException or UnauthorizedAccessException)
        {
            return QueueSet.In;
        }
    }
}
