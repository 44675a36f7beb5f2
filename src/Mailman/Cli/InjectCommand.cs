// `mailman inject LIST@HOST`: what the MTA pipes each message into. Exit codes follow
// sysexits.h; 0 only once the message is durably in the queue.
using System.CommandLine;
using Mailman.Instance;
using Mailman.Queues;

namespace Mailman.Cli;

internal static class InjectCommand
{
    public static Command Create()
    {
        var list = new Argument<string>("address") { Description = "the list (LIST@HOST) or any of its addresses (LIST-bounces+VERP@HOST, LIST-request@HOST, ...), as Postfix's ${recipient}" };
        var file = new Option<string?>("--file", "-f") { Description = "read the message from this file instead of standard input" };
        var sender = new Option<string?>("--sender") { Description = "envelope sender (Postfix: ${sender}; empty, or <>, for the null sender)" };
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
    /// of any size costs the same few megabytes. A leading mbox From_ line (Postfix's pipe flag
    /// F) is dropped, and with a Return-Path: (flag R) gives the envelope sender when --sender
    /// is absent, as every MDA does.
    /// </summary>
    /// <exception cref="CliException">With the sysexits code the MTA should act on.</exception>
    public static int Inject(InstancePaths paths, string address, string? file, string? sender, string? queueName, Stream stdin)
    {
        var intake = new Intake(paths, TimeProvider.System);
        try
        {
            var route = Intake.Route(address, queueName);
            if (sender is not null && sender.Any(char.IsControl))
            {
                // Postfix never passes one; a caller that does would write lines of its own into the logs.
                throw new CliException(ExitCodes.Usage, "--sender holds control characters: not an envelope sender");
            }

            if (sender is not null && sender.Length > Intake.MaxEnvelopeSender)
            {
                // As LMTP refuses it (review 95: a notice to a 100 KB address broke the relay's
                // connection, and the relay was marked down for everyone's mail).
                throw new CliException(ExitCodes.Usage, $"--sender is {sender.Length:N0} characters, over the {Intake.MaxEnvelopeSender} an SMTP path holds: not an envelope sender");
            }

            // "<>" as SMTP writes it is the null sender, stored as Postfix's ${sender} gives it: empty
            // (review 47: kept as the text "<>", some checks took it for an address).
            if (sender?.Trim() is "<>")
            {
                sender = "";
            }

            if (file is null && StandardInputWasClosed())
            {
                throw new CliException(ExitCodes.NoInput, "standard input is closed: give the message on standard input or with --file");
            }

            Stream source;
            try
            {
                source = file is null ? stdin : File.OpenRead(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliException(ExitCodes.NoInput, $"cannot read the message: {FileOwner.WhyUnreadable(file!, e)}");
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

                var inspected = Intake.Inspect(head);
                paths.EnsureCreated();
                intake.CheckList(route);
                var envelope = sender ?? inspected.EnvelopeSender;
                var (entry, metadata) = intake.Enqueue(route, envelope, inspected.MessageId, s =>
                {
                    // The parts' header blocks are counted as the bytes go by (Intake.CheckHeaderBlock
                    // counted the message's own): past a limit nothing is left behind, and 65.
                    var shape = new MimeShape();
                    var watched = shape.Watch(s);
                    watched.Write(head.AsSpan(inspected.Skip));
                    source.CopyTo(watched, 1 << 16);
                    shape.End();
                });
                // On disk now: exit 0 whatever the lines after it meet (review 103: a closed or
                // full stderr made it 134 or 75, and the MTA would send the post again).
                MailmanCli.Say($"mailman: queued {entry} in {route.Queue} for {route.List} ({metadata.MessageLength} bytes)");
                if (route.Queue != QueueSet.In)
                {
                    // Posts are logged when the incoming runner takes them ("Post received");
                    // nothing else looks at what went to bounces, request or owner until its runner does.
                    LogQueued(paths, route, entry, metadata);
                }
            }
        }
        catch (UnauthorizedAccessException e)
        {
            // The pipe runs as a user who may not use this instance: Postfix must defer (75) and
            // keep the post until the operator fixes user= or the ownership, never bounce it.
            throw new CliException(ExitCodes.TempFail, $"{e.Message} (inject runs as {FileOwner.UserName(FileOwner.EffectiveUid)}; {paths.Home} is {FileOwner.Describe(paths.Home)}): "
                + "run inject as the instance's user (Postfix: user= in master.cf)");
        }
        catch (IOException e)
        {
            throw new CliException(ExitCodes.TempFail, e.Message);
        }
        catch (IntakeException e)
        {
            throw new CliException(e.Failure switch
            {
                IntakeFailure.NoSuchList => ExitCodes.NoUser,
                IntakeFailure.NotAMessage or IntakeFailure.HeaderTooLarge => ExitCodes.DataError,
                IntakeFailure.Usage => ExitCodes.Usage,
                _ => ExitCodes.TempFail,
            }, e.Message);
        }

        return ExitCodes.Ok;
    }

    /// <summary>One line in the post log for mail queued outside the post path; a log that cannot be written never fails the injection.</summary>
    internal static void LogQueued(InstancePaths paths, IntakeRoute route, string entry, EntryMetadata metadata)
    {
        try
        {
            var configuration = Hosting.MailmanConfiguration.Build(paths, [new("Logging:Console", "false")]);
            var logger = Hosting.Logging.Create(configuration, paths);
            using var dispose = logger as IDisposable;
            logger.ForContext("Area", "post").ForContext("SourceContext", "Mailman.Cli.Inject").Information(
                "Queued for {ListId} in {Queue}: to {Destination}, Message-Id {MessageId}, envelope sender {Sender}, {Size} bytes, entry {QueueEntry}",
                route.List.Fqdn, route.Queue, Delivery.Verp.Redact(route.Address), metadata.MessageIdForLog, metadata.SenderForLog, metadata.MessageLength, entry);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or FormatException)
        {
            MailmanCli.Say($"mailman: queued, but the post log could not be written: {e.Message}");
        }
    }

    // Started with descriptor 0 closed (`inject L <&-`), the process finds there whatever the
    // runtime opened first (the lowest free descriptor): its own pipe (a read waited forever) or
    // /dev/urandom in the Native AOT build (random bytes read as a message; review 39). The
    // runtime opens its files close-on-exec; a standard input that came through exec never is.
    private static bool StandardInputWasClosed()
    {
        try
        {
            // "flags:\t02100000": octal; O_CLOEXEC is 02000000.
            return File.ReadLines("/proc/self/fdinfo/0").FirstOrDefault(l => l.StartsWith("flags:", StringComparison.Ordinal)) is { } flags
                && (Convert.ToInt32(flags[6..].Trim(), 8) & 0x80000) != 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return false; // no /proc, or no descriptor 0 at all: the read decides
        }
    }

    // The start of the message up to the blank line that ends its header block, or the first
    // Intake.HeadBytes when the header block is longer (the rest streams after it).
    private static byte[] ReadHead(Stream source)
    {
        const int Limit = Intake.HeadBytes;
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
}
