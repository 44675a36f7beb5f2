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
        var from = new Option<string>("--queue") { Description = "shunt (default) or unrecognized", DefaultValueFactory = _ => QueueSet.Shunt };
        var command = new Command("unshunt", "move shunted (or unrecognized) entries back to the queue they came from") { from };
        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            var source = parse.GetValue(from)!.ToLowerInvariant();
            if (source is not (QueueSet.Shunt or QueueSet.Unrecognized))
            {
                throw new CliException(ExitCodes.Usage, $"--queue: expected shunt or unrecognized, got '{source}'");
            }

            using var queues = new QueueSet(new FileSystem(), paths, TimeProvider.System);
            var shunt = queues[source];
            var moved = 0;
            foreach (var name in shunt.Pending())
            {
                var origin = shunt.ReadState(name)?.FromQueue;
                var target = origin is not null && QueueSet.Names.Contains(origin) && origin is not QueueSet.Shunt and not QueueSet.Bad and not QueueSet.Unrecognized
                    ? origin
                    : source == QueueSet.Unrecognized ? QueueSet.Bounces : QueueSet.In;
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
}
