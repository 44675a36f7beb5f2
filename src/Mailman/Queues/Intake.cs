// What the MTA hands over, by either door (inject's pipe, an LMTP recipient): the address picks
// the list and the queue (ListAddress), the list must exist, the head must look like a message,
// and the entry is written durably (Switchboard: fsync, rename, directory fsync) before the
// caller may say "accepted". It never answers the MTA itself: callers turn an IntakeException
// into an exit code (inject) or a reply (LMTP).
using System.IO.Abstractions;
using Mailman.Instance;
using Mailman.Lists;
using MimeKit;

namespace Mailman.Queues;

/// <summary>Why something could not be taken in; each caller maps it to its own answer.</summary>
public enum IntakeFailure
{
    /// <summary>Not an address of a list, or no such list (sysexits 67, LMTP 550 5.1.1).</summary>
    NoSuchList,

    /// <summary>Empty, or not a message (65, LMTP 554 5.6.0).</summary>
    NotAMessage,

    /// <summary>A header block over the limits (65, LMTP 552 5.3.4).</summary>
    HeaderTooLarge,

    /// <summary>The database or the queue cannot be used now (75, LMTP 451/452): try again later.</summary>
    TryAgain,

    /// <summary>An argument is wrong (64).</summary>
    Usage,
}

/// <summary>One refusal, with the line to show or log.</summary>
public sealed class IntakeException(IntakeFailure failure, string message, Exception? inner = null) : Exception(message, inner)
{
    public IntakeFailure Failure { get; } = failure;

    /// <summary>The queue could not be written for lack of space (ENOSPC, EDQUOT): LMTP's 452.</summary>
    public bool OutOfSpace => InnerException is IOException { HResult: 28 or 122 };
}

/// <summary>Where an address's mail goes: the list and the queue.</summary>
public sealed record IntakeRoute(ListName List, string Queue, string Address);

/// <summary>What the head of a message says: its Message-Id, the envelope sender it records (an mbox From_ line, Return-Path), and how many leading bytes are not the message.</summary>
public sealed record MessageHead(string? MessageId, string? EnvelopeSender, int Skip);

public sealed class Intake
{
    /// <summary>
    /// The largest header block taken in (Exim's header_maxsize is 1 MB; this one leaves room for
    /// a 1 MB header line). Every runner parses the header block into objects: review 27's
    /// 9 MB of one-line fields cost gigabytes of memory in the pipeline.
    /// </summary>
    public const int MaxHeaderBytes = 4 << 20;

    /// <summary>
    /// What must stay free on the queue's file system with a post of <paramref name="size"/>
    /// bytes written for it to be taken: room for each of the daemon's hops to write its next copy
    /// before it deletes the last, and some more (Postfix keeps 1.5 times its message size limit).
    /// Review 44: posts taken until the disk was full sat in <c>in</c> for good, every hop failing
    /// for want of a second copy's room, the daemon's own queue what filled it.
    /// </summary>
    public static long KeepFree(long size) => 2 * size + ReserveBytes;

    /// <summary>The part of <see cref="KeepFree"/> that does not grow with the post: 8 MiB.</summary>
    public const long ReserveBytes = 8 << 20;

    /// <summary>The longest envelope sender taken: an SMTP path is 256 characters with its angle brackets (RFC 5321 4.5.3.1.3).</summary>
    public const int MaxEnvelopeSender = Member.MaxAddressLength;

    /// <summary>The most header fields taken in (twice the 10,000 Guarantees promise).</summary>
    public const int MaxHeaderFields = 20_000;

    /// <summary>
    /// The most header lines, continuation lines included: MimeKit's parse of one field grows
    /// with the square of its continuation lines (review 29: 1.3 million in one field, 3.9 MB,
    /// held the outgoing runner for minutes; 50,000 parse in a fifth of a second).
    /// </summary>
    public const int MaxHeaderLines = 50_000;

    /// <summary>How much of a message's start <see cref="Inspect"/> needs to apply the limits.</summary>
    public const int HeadBytes = MaxHeaderBytes + 8192;

    /// <summary>The queues mail can be injected into.</summary>
    public static readonly IReadOnlySet<string> Queues = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { QueueSet.In, QueueSet.Bounces, QueueSet.Request, QueueSet.Owner };

    private readonly InstancePaths _paths;
    private readonly QueueSet? _queues;
    private readonly TimeProvider _time;

    /// <param name="queues">The daemon's queues (an enqueue wakes the runner at once); null opens the one queue needed (inject).</param>
    public Intake(InstancePaths paths, TimeProvider time, QueueSet? queues = null)
    {
        _paths = paths;
        _time = time;
        _queues = queues;
    }

    /// <summary>The list and queue of <paramref name="address"/> (a "+extension" is ignored; a suffix picks the queue). The list is not looked up.</summary>
    /// <exception cref="IntakeException">Not an address of a list; an unknown queue.</exception>
    public static IntakeRoute Route(string address, string? queue = null)
    {
        if (address.Any(char.IsControl))
        {
            throw new IntakeException(IntakeFailure.NoSuchList, "no such list address: it holds control characters");
        }

        if (!ListAddress.TryResolve(address, out var resolved, out var error))
        {
            throw new IntakeException(IntakeFailure.NoSuchList, error);
        }

        var name = (queue ?? resolved.Queue).ToLowerInvariant();
        if (!Queues.Contains(name))
        {
            throw new IntakeException(IntakeFailure.Usage, $"unknown queue '{queue}': expected in, bounces, request or owner");
        }

        // Kept as the wire spells it: the VERP and probe addresses it is matched against carry the
        // list's domain as A-labels (review 51: a bounce to the U-label form was not decoded).
        return new IntakeRoute(resolved.List, name, Instance.SmtpOptions.WireAddress(address));
    }

    /// <summary>Checks that the route's list exists.</summary>
    /// <exception cref="IntakeException">No such list; the database cannot be read (TryAgain, naming the file and the user).</exception>
    public void CheckList(IntakeRoute route)
    {
        try
        {
            using var store = new ListStore(_paths.Database);
            if (store.FindList(route.List) is null)
            {
                throw new IntakeException(IntakeFailure.NoSuchList, $"no such list: {route.List}");
            }
        }
        catch (Exception e) when (e is DatabaseReadOnlyException or DatabaseUnusableException)
        {
            // Missing (ListStore never makes one here: a new empty one would have the post refused
            // as to no such list and bounced; review 40), damaged, a directory, or read-only: a
            // fault to mend while the MTA keeps the post.
            throw new IntakeException(IntakeFailure.TryAgain, e.Message, e);
        }
        catch (Microsoft.Data.Sqlite.SqliteException e) when (e.SqliteErrorCode is 3 or 8 or 14 or 23)
        {
            // PERM, READONLY, CANTOPEN, AUTH: this user may not use the database; or it is this
            // user's and cannot be written (a mode, a read-only mount): then user= is not the fix.
            var me = FileOwner.EffectiveUid;
            var foreign = FileOwner.FirstNotOurs(_paths.Database + "-wal", _paths.Database + "-shm");
            var remedy = FileOwner.Uid(_paths.Database) != me ? "run inject as the instance's user (Postfix: user= in master.cf)"
                : foreign is not null ? $"{foreign} is {FileOwner.Describe(foreign)} (a root-run sqlite3?): chown it to {FileOwner.UserName(me)}"
                : "the file is this user's: check its mode, its directory's and whether the file system is read-only";
            throw new IntakeException(IntakeFailure.TryAgain, $"cannot open the list database {_paths.Database} as {FileOwner.UserName(FileOwner.EffectiveUid)} ({FileOwner.Describe(_paths.Database)}): {e.Message}; {remedy}", e);
        }
        catch (Microsoft.Data.Sqlite.SqliteException e)
        {
            throw new IntakeException(IntakeFailure.TryAgain, $"cannot read the list database {_paths.Database}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Writes one entry for <paramref name="route"/> and returns its name once it is durably on
    /// disk. <paramref name="writeMessage"/> streams the message bytes (without any From_ line).
    /// </summary>
    /// <exception cref="IntakeException">The queue cannot be written (TryAgain); nothing is left behind.</exception>
    public (string Entry, EntryMetadata Metadata) Enqueue(IntakeRoute route, string? sender, string? messageId, Action<Stream> writeMessage)
    {
        var metadata = new EntryMetadata
        {
            List = route.List.Fqdn,
            Sender = sender,
            Received = _time.GetUtcNow(),
            MessageId = messageId,
            Destination = route.Address,
        };
        try
        {
            var switchboard = _queues?[route.Queue] ?? new Switchboard(new FileSystem(), _paths.Queue(route.Queue), route.Queue, _time);
            var entry = switchboard.Enqueue(metadata, writeMessage, null, keepFree: KeepFree);
            return (entry, metadata);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IntakeException(IntakeFailure.TryAgain, $"cannot write to the queue {_paths.Queue(route.Queue)} as {FileOwner.UserName(FileOwner.EffectiveUid)}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Reads what the start of a message says. A leading mbox <c>From sender date</c> line (what
    /// Postfix's pipe flag F, procmail and every MDA's mbox format put first) is not part of the
    /// message: <see cref="MessageHead.Skip"/> covers it, and it gives the envelope sender unless
    /// a <c>Return-Path:</c> (flag R) says otherwise. After it the message must start with a header field.
    /// </summary>
    /// <exception cref="IntakeException">Empty, or not a message (NotAMessage).</exception>
    public static MessageHead Inspect(ReadOnlySpan<byte> head)
    {
        if (head.Trim("\r\n\t "u8).IsEmpty)
        {
            throw new IntakeException(IntakeFailure.NotAMessage, "empty message");
        }

        var skip = 0;
        string? fromLine = null;
        // "From : Alice" is a From: field in the obsolete syntax (white space before the colon),
        // not an mbox line: a From_ line's second word is the sender, never a colon.
        if (head.StartsWith("From "u8) && !head[5..].TrimStart(" \t"u8).StartsWith(":"u8))
        {
            var end = head.IndexOf((byte)'\n');
            if (end < 0)
            {
                throw new IntakeException(IntakeFailure.NotAMessage, "not a message: an mbox From_ line and nothing after it");
            }

            skip = end + 1;
            // "From sender date": Postfix writes MAILER-DAEMON for the null sender.
            var line = System.Text.Encoding.UTF8.GetString(head[5..end]).Trim();
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            fromLine = space < 0 ? line : line[..space];
            if (fromLine.Equals("MAILER-DAEMON", StringComparison.OrdinalIgnoreCase) || fromLine == "<>")
            {
                fromLine = "";
            }
        }

        var message = head[skip..];
        if (message.Trim("\r\n\t "u8).IsEmpty)
        {
            throw new IntakeException(IntakeFailure.NotAMessage, "empty message");
        }

        // RFC 5322 §2.2: a field name is printable US-ASCII but the colon, then a colon (white
        // space before it is the obsolete syntax of §4.5.3, still to be read).
        var colon = message.IndexOf((byte)':');
        var lineEnd = message.IndexOf((byte)'\n');
        var name = colon <= 0 ? default : message[..colon].TrimEnd(" \t"u8);
        if (name.IsEmpty || (lineEnd >= 0 && colon > lineEnd) || name.IndexOfAnyExceptInRange((byte)33, (byte)126) >= 0)
        {
            throw new IntakeException(IntakeFailure.NotAMessage, "not a message: it does not start with a header line");
        }

        CheckHeaderBlock(message);

        string? messageId = null, returnPath = null;
        try
        {
            using var stream = new MemoryStream(message.ToArray(), writable: false);
            var headers = HeaderList.Load(stream);
            messageId = headers[HeaderId.MessageId] is { } id ? id.Trim().Trim('<', '>') : null;
            if (headers[HeaderId.ReturnPath] is { } rp)
            {
                // Return-Path: <address> (RFC 5322 §3.6.7); <> is the null sender.
                var value = rp.Trim();
                var open = value.IndexOf('<', StringComparison.Ordinal);
                var close = value.LastIndexOf('>');
                returnPath = open >= 0 && close > open ? value[(open + 1)..close].Trim() : value;

                // Postfix's flag R writes <MAILER-DAEMON> for the null sender, as its From_ line does.
                if (returnPath.Equals("MAILER-DAEMON", StringComparison.OrdinalIgnoreCase))
                {
                    returnPath = "";
                }
            }
        }
        catch (FormatException)
        {
            // A header block longer than the head, or broken further down: queued as it is.
        }

        // An envelope sender read from the message is used only when it is one plausible address.
        var envelope = returnPath ?? fromLine;
        if (envelope is not null && (envelope.Length > MaxEnvelopeSender || envelope.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))))
        {
            envelope = null;
        }

        return new MessageHead(messageId, envelope, skip);
    }

    // The header block as MimeKit will read it: every line up to the first blank one (a message
    // without one is all header block). <paramref name="message"/> may be cut short at HeadBytes.
    private static void CheckHeaderBlock(ReadOnlySpan<byte> message)
    {
        var fields = 0;
        var lines = 0;
        var at = 0;
        long fieldBytes = 0, capacity = 0, sinceRead = 0;
        long copyWork = 0;
        while (at < message.Length)
        {
            var rest = message[at..];
            var newline = rest.IndexOf((byte)'\n');
            var line = newline < 0 ? rest : rest[..newline];
            if (line.Length > 0 && line[^1] == (byte)'\r')
            {
                line = line[..^1];
            }

            if (line.IsEmpty)
            {
                break;
            }

            if (++lines > MaxHeaderLines)
            {
                throw new IntakeException(IntakeFailure.HeaderTooLarge, $"more than {MaxHeaderLines:N0} header lines: not taken");
            }

            // A line that is no field does not end the block for MimeKit, which reads on to the
            // blank line (review 30: one such line let a million continuation lines through), and
            // keeps it as a header ("Bad Field: x", review 33; a line without a colon, review
            // 34): every line but a continuation is a field here.
            if (line[0] is not ((byte)' ' or (byte)'\t'))
            {
                if (++fields > MaxHeaderFields)
                {
                    throw new IntakeException(IntakeFailure.HeaderTooLarge, $"more than {MaxHeaderFields:N0} header fields: not taken");
                }
            }

            // MimeKit's parse (HeaderList.Load below, and every runner's) copies a folded field
            // once per line: counted as MimeShape counts it, before that parse (review 36).
            if (line[0] is not ((byte)' ' or (byte)'\t'))
            {
                fieldBytes = capacity = 0;
            }

            if ((copyWork += MimeShape.CopyWork(ref fieldBytes, ref capacity, ref sinceRead, line.Length)) > MimeShape.MaxHeaderCopyWork)
            {
                throw new IntakeException(IntakeFailure.HeaderTooLarge, "header fields too long, or folded over too many lines, to be parsed in time: not taken");
            }

            at += newline < 0 ? rest.Length : newline + 1;
            if (at > MaxHeaderBytes)
            {
                throw new IntakeException(IntakeFailure.HeaderTooLarge, $"a header block larger than {MaxHeaderBytes >> 20} MiB: not taken");
            }
        }
    }
}
