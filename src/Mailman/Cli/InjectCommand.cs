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

    /// <summary>
    /// Queues one message. Returns 0 only when it is durably on disk. The message streams from
    /// its source into the queue file: only its header block is looked at in memory, so a post
    /// of any size costs the same few megabytes.
    /// </summary>
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

        Stream source;
        try
        {
            source = file is null ? stdin : File.OpenRead(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException(ExitCodes.NoInput, $"cannot read the message: {e.Message}");
        }

        using (source)
        {
            byte[] head;
            try
            {
                head = ReadHead(source);
            }
            catch (IOException e)
            {
                throw new CliException(file is null ? ExitCodes.TempFail : ExitCodes.NoInput, $"cannot read the message: {e.Message}");
            }

            var messageId = CheckMessage(head);
            paths.EnsureCreated();
            try
            {
                using var store = new ListStore(paths.Database);
                if (store.FindList(name) is null)
                {
                    throw new CliException(ExitCodes.NoUser, $"no such list: {name}");
                }
            }
            catch (Microsoft.Data.Sqlite.SqliteException e) when (e.SqliteErrorCode is 3 or 8 or 14 or 23)
            {
                // PERM, READONLY, CANTOPEN, AUTH: this user may not use the database.
                throw new CliException(ExitCodes.TempFail, $"cannot open the list database {paths.Database} as {FileOwner.UserName(FileOwner.EffectiveUid)} ({FileOwner.Describe(paths.Database)}): {e.Message}; "
                    + "run inject as the instance's user (Postfix: user= in master.cf)");
            }
            catch (Microsoft.Data.Sqlite.SqliteException e)
            {
                throw new CliException(ExitCodes.TempFail, $"cannot read the list database {paths.Database}: {e.Message}");
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
                var entry = switchboard.Enqueue(metadata, s =>
                {
                    s.Write(head);
                    source.CopyTo(s, 1 << 16);
                }, null);
                Console.Error.WriteLine($"mailman: queued {entry} in {queue} for {name} ({metadata.MessageLength} bytes)");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliException(ExitCodes.TempFail, $"cannot write to the queue {paths.Queue(queue)} as {FileOwner.UserName(FileOwner.EffectiveUid)}: {e.Message}");
            }
        }

        return ExitCodes.Ok;
    }

    // The start of the message up to the blank line that ends its header block, or the first
    // 4 MiB when the header block is longer (the rest streams after it).
    private static byte[] ReadHead(Stream source)
    {
        const int Limit = 4 << 20;
        using var head = new MemoryStream();
        var buffer = new byte[1 << 16];
        var scanFrom = 0;
        while (head.Length < Limit)
        {
            var n = source.Read(buffer, 0, (int)Math.Min(buffer.Length, Limit - head.Length));
            if (n == 0)
            {
                break;
            }

            head.Write(buffer, 0, n);
            var span = head.GetBuffer().AsSpan(0, (int)head.Length);
            if (span[Math.Max(0, scanFrom - 3)..].IndexOf("\n\n"u8) >= 0 || span[Math.Max(0, scanFrom - 3)..].IndexOf("\n\r\n"u8) >= 0)
            {
                break;
            }

            scanFrom = (int)head.Length;
        }

        return head.ToArray();
    }

    /// <summary>The message must start with a header field (name, colon). Returns its Message-Id if the head shows one.</summary>
    private static string? CheckMessage(byte[] head)
    {
        var span = head.AsSpan();
        if (span.Trim("\r\n\t "u8).IsEmpty)
        {
            throw new CliException(ExitCodes.DataError, "empty message");
        }

        // RFC 5322 §2.2: a field name is printable US-ASCII but the colon, then a colon.
        var colon = span.IndexOf((byte)':');
        if (colon <= 0 || span[..colon].IndexOfAnyExceptInRange((byte)33, (byte)126) >= 0)
        {
            throw new CliException(ExitCodes.DataError, "not a message: it does not start with a header line");
        }

        try
        {
            using var stream = new MemoryStream(head, writable: false);
            var headers = HeaderList.Load(stream);
            return headers[HeaderId.MessageId] is { } id ? id.Trim().Trim('<', '>') : null;
        }
        catch (FormatException)
        {
            return null; // a header block longer than the head, or broken further down: queued as it is
        }
    }
}
