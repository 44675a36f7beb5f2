// `mailman unshunt`: puts shunted entries back in the queue they failed in (after a fix).
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
                var claim = shunt.Claim(name);
                if (claim is null)
                {
                    continue;
                }

                var entry = shunt.Load(claim);
                var metadata = entry.Metadata.Clone();
                var target = QueueSet.Names.Contains(metadata.FromQueue ?? "") ? metadata.FromQueue! : QueueSet.In;
                metadata.FromQueue = null;
                metadata.Error = null;
                queues[target].Enqueue(metadata, entry.Message, metadata.HasRecipients ? shunt.Recipients(entry) : null);
                shunt.Finish(claim);
                Console.WriteLine($"{name} -> {target}");
                moved++;
            }

            Console.WriteLine($"{moved} entries moved back");
            return 0;
        }));
        return command;
    }
}
