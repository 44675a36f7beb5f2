// `mailman inject LIST@HOST`: what the MTA pipes each message into. Exit codes follow
// sysexits.h; 0 only once the message is durably in the queue.
using System.CommandLine;
using System.IO.Abstractions;
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Queues;
using MimeKit;

namespace Mailman.Cli;

internal static class InjectCommand
{
    private static readonly HashSet<string> Queues = new(StringComparer.OrdinalIgnoreCase) { QueueSet.In, QueueSet.Bounces, QueueSet.Request, QueueSet.Owner };

    public static Command Create()
    {
        var list = new Argument<string>("address") { Description = "the list (LIST@HOST) or any of its addresses (LIST-bounces+VERP@HOST, LIST-request@HOST, ...), as Postfix's ${recipient}" };
        var file = new Option<string?>("--file", "-f") { Description = "read the message from this file instead of standard input" };
        var sender = new Option<string?>("--sender") { Description = "envelope sender (Postfix: ${sender})" };
        var queue = new Option<string?>("--queue")
        {
            Description = "in, bounces, request or owner (default: from the address)",
        };
        var command = new Command("inject", "queue one message for a list (stdin by default)") { list, file, sender, queue };
        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
            Inject(paths, parse.GetValue(list)!, parse.GetValue(file), parse.GetValue(sender), parse.GetValue(queue), Console.OpenStandardInput()),
            ExitCodes.TempFail));
        return command;
    }

    /// <summary>Queues one message. Returns 0 only when it is durably on disk.</summary>
    /// <exception cref="CliException">With the sysexits code the MTA should act on.</exception>
    public static int Inject(InstancePaths paths, string address, string? file, string? sender, string? queueName, Stream stdin)
    {
        if (!ListAddress.TryResolve(address, out var resolved, out var error))
        {
            throw new CliException(ExitCodes.NoUser, error);
        }

        var name = resolved.List;
        var queue = (queueName ?? resolved.Queue).ToLowerInvariant();
        if (!Queues.Contains(queue))
        {
            throw new CliException(ExitCodes.Usage, $"unknown queue '{queueName}': expected in, bounces, request or owner");
        }

        byte[] raw;
        try
        {
            raw = Read(file, stdin);
        }
        catch (IOException e)
        {
            throw new CliException(file is null ? ExitCodes.TempFail : ExitCodes.NoInput, $"cannot read the message: {e.Message}");
        }

        string? messageId = CheckMessage(raw);
        paths.EnsureCreated();
        try
        {
            using var store = new ListStore(paths.Database);
            if (store.FindList(name) is null)
            {
                throw new CliException(ExitCodes.NoUser, $"no such list: {name}");
            }
        }
        catch (Microsoft.Data.Sqlite.SqliteException e)
        {
            throw new CliException(ExitCodes.TempFail, $"cannot read the list database: {e.Message}");
        }

        var time = TimeProvider.System;
        var metadata = new EntryMetadata
        {
            List = name.Fqdn,
            Sender = sender,
            Received = time.GetUtcNow(),
            MessageId = messageId,
            Destination = address,
        };
        try
        {
            var switchboard = new Switchboard(new FileSystem(), paths.Queue(queue), queue, time);
            var entry = switchboard.Enqueue(metadata, raw);
            Console.Error.WriteLine($"mailman: queued {entry} in {queue} for {name} ({raw.Length} bytes)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException(ExitCodes.TempFail, $"cannot write to the queue: {e.Message}");
        }

        return ExitCodes.Ok;
    }

    private static byte[] Read(string? file, Stream stdin)
    {
        if (file is not null)
        {
            return File.ReadAllBytes(file);
        }

        using var buffer = new MemoryStream();
        stdin.CopyTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>The message must start with a parseable header block. Returns its Message-Id.</summary>
    private static string? CheckMessage(byte[] raw)
    {
        if (raw.AsSpan().Trim("\r\n\t "u8).IsEmpty)
        {
            throw new CliException(ExitCodes.DataError, "empty message");
        }

        try
        {
            using var stream = new MemoryStream(raw, writable: false);
            var headers = HeaderList.Load(stream);
            if (headers.Count == 0)
            {
                throw new CliException(ExitCodes.DataError, "not a message: no header lines");
            }

            return headers[HeaderId.MessageId] is { } id ? id.Trim().Trim('<', '>') : null;
        }
        catch (FormatException e)
        {
            throw new CliException(ExitCodes.DataError, $"not a message: {e.Message}");
        }
    }
}
