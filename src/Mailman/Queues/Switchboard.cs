// One file-backed queue: a directory of entry files. Enqueue writes under a temporary name,
// flushes, renames into place and syncs the directory; a runner claims an entry by renaming it
// to .bak, and finishes by deleting it once its result is durably elsewhere. Entry files are
// written once and never rewritten: what changes later (recovery counts, why an entry was set
// aside) lives in a small .state file beside it. Claims take the oldest waiting entry from an
// in-memory index, refreshed by a directory scan only now and then, so a claim costs the same
// with ten entries waiting or a million. It never decides what happens to a message: runners do.
using System.Buffers;
using System.Diagnostics;
using System.IO.Abstractions;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Mailman.Queues;

/// <summary>A claimed entry: the runner owns it until it calls Finish, Unclaim or moves it.</summary>
public sealed record ClaimedEntry(string Queue, string Name, string Path);

/// <summary>A loaded entry: metadata, message bytes, and where the recipient lines start.</summary>
public sealed record LoadedEntry(ClaimedEntry Claim, EntryMetadata Metadata, byte[] Message, long RecipientsOffset);

/// <summary>An entry's head: its metadata and where its message lies in the file; nothing of the message is read.</summary>
public sealed record EntryHead(ClaimedEntry Claim, EntryMetadata Metadata, long MessageOffset)
{
    public long RecipientsOffset => MessageOffset + Metadata.MessageLength;
}

/// <summary>A file-backed queue (Mailman's switchboard), one directory under <c>queues/</c>.</summary>
public sealed partial class Switchboard
{
    public const int FormatVersion = 1;
    public const string EntryExtension = ".msg";
    public const string ClaimedExtension = ".bak";
    public const string TempExtension = ".tmp";
    public const string CheckpointExtension = ".ckpt";
    public const string StateExtension = ".state";

    private const long LengthPlaceholder = 999_999_999_999_999;
    private const long CountPlaceholder = 999_999_999_999;

    private static readonly byte[] Magic = "MAILMAN-QUEUE/1\n"u8.ToArray();
    private static readonly byte[] Trailer = "MAILMAN-END\n"u8.ToArray();

    // How long an empty temporary file may be a writer between its open and its lock.
    private static readonly TimeSpan JustMade = TimeSpan.FromSeconds(10);

    /// <summary>How long an entry another process holds locked is passed over (<see cref="PassOver"/>).</summary>
    public static readonly TimeSpan LockedEntryWait = TimeSpan.FromSeconds(10);

    private readonly IFileSystem _fs;
    private readonly TimeProvider _time;
    private readonly QueueSignal? _signal;
    private readonly bool _realDisk;

    // The index of waiting entries. Entries this process enqueues or unclaims are added at once;
    // entries other processes write (inject, the verbs) are found by a scan, done when the index
    // has nothing to offer or ScanInterval has passed, and never more often than keeps scanning
    // under a tenth of the time (a scan of a million names takes about a second).
    private readonly object _gate = new();
    private readonly SortedSet<string> _waiting = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _seen = new(StringComparer.Ordinal);
    private long _generation;
    private readonly Dictionary<string, DateTimeOffset?> _notBefore = new(StringComparer.Ordinal);

    // Entries put back because another process held them locked, and when (a timestamp of _time)
    // they may be claimed again.
    private readonly Dictionary<string, long> _lockedUntil = new(StringComparer.Ordinal);
    private long _scannedAt;
    private TimeSpan _scanCost;
    private bool _scanned;

    /// <param name="create">Create the directory if missing; false for readers that must leave no trace (status as another user).</param>
    public Switchboard(IFileSystem fs, string directory, string name, TimeProvider time, QueueSignal? signal = null, bool create = true)
    {
        _fs = fs;
        _time = time;
        _signal = signal;
        Name = name;
        Directory = directory;
        _realDisk = fs is FileSystem;
        if (create)
        {
            // A file, FIFO or device (or a link, dangling or to one) in its place made this say
            // only "The file ... already exists" (review 44).
            if (!_fs.Directory.Exists(directory) && (_fs.File.Exists(directory) || _fs.FileInfo.New(directory).LinkTarget is not null))
            {
                throw new IOException($"{directory} is not a directory (a file, a FIFO, a device, or a link to one or to nothing?): move it away");
            }

            _fs.Directory.CreateDirectory(directory);
        }
    }

    public string Name { get; }

    public string Directory { get; }

    public QueueSignal? Signal => _signal;

    /// <summary>Entries this process has claimed and not yet finished, put back or moved.</summary>
    public int ClaimsHeld => Volatile.Read(ref _claimsHeld);

    private int _claimsHeld;

    /// <summary>Directory scans done for claims so far (the index's cost, observable).</summary>
    public int Scans { get; private set; }

    /// <summary>How stale the index may get before a claim scans the directory for entries of other processes.</summary>
    public TimeSpan ScanInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>True for names this queue could have written: <c>{17 digits}-{8 hex}</c>.</summary>
    public static bool IsValidEntryName(string name) => EntryNameRegex().IsMatch(name);

    /// <summary>
    /// The name of an entry derived from <paramref name="name"/> for <paramref name="purpose"/>
    /// (a notice caused by it, the retry entry of its deferred recipients): the same pair always
    /// gives the same name, so a repeated hop after a crash finds its own earlier result.
    /// </summary>
    public static string DerivedName(string name, string purpose)
    {
        if (!IsValidEntryName(name))
        {
            throw new ArgumentException($"invalid entry name {name}", nameof(name));
        }

        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(name + "\n" + purpose));
        return name[..17] + "-" + Convert.ToHexStringLower(hash.AsSpan(0, 4));
    }

    /// <summary>Writes an entry durably and makes it visible in one rename.</summary>
    /// <param name="name">
    /// The name to use, for a hop that forwards an entry: the post keeps its name from queue to
    /// queue. If this queue holds that name already, a run that crashed between writing here and
    /// finishing its claim did the hop: nothing is written twice.
    /// </param>
    /// <returns>The entry name.</returns>
    /// <exception cref="IOException">The entry could not be written (disk full, permissions); nothing is left behind.</exception>
    /// <param name="beforePlacing">As for the streaming overload: runs once the entry is written, before it is put in place.</param>
    public unsafe string Enqueue(EntryMetadata metadata, ReadOnlySpan<byte> message, IEnumerable<Recipient>? recipients = null, string? name = null, Action? beforePlacing = null)
    {
        // Written from where the bytes are (pinned for the call), never copied first.
        fixed (byte* bytes = message)
        {
            using var source = new UnmanagedMemoryStream(bytes, message.Length);
            var length = message.Length;
            return Write(metadata, s => Copy(source, s, length), recipients is null ? null : s => WriteRecipients(s, recipients), name, beforePlacing: beforePlacing);
        }
    }

    /// <summary>Writes an entry whose message <paramref name="writeMessage"/> streams into the file (a flattened post), with recipients.</summary>
    /// <param name="keepFree">
    /// The bytes that must stay free on the queue's file system with the entry written, from its
    /// size; less and it is not put in place (an IOException of ENOSPC, nothing left behind).
    /// Intake's, so that mail taken in leaves the daemon room to move it on.
    /// </param>
    /// <param name="beforePlacing">
    /// Runs once the entry is written in full, before it is put in place (what must happen only
    /// if the entry can be written: see <see cref="Write"/>); what it throws leaves nothing behind.
    /// </param>
    public string Enqueue(EntryMetadata metadata, Action<Stream> writeMessage, IEnumerable<Recipient>? recipients, string? name = null, Func<long, long>? keepFree = null, Action? beforePlacing = null)
        => Write(metadata, s =>
        {
            var start = s.Position;
            writeMessage(s);
            return s.Position - start;
        }, recipients is null ? null : s => WriteRecipients(s, recipients), name, keepFree, beforePlacing);

    /// <summary>
    /// Writes a copy of a claimed entry into <paramref name="target"/> under the same name with
    /// <paramref name="metadata"/>, streaming its message and recipient lines: a post of any
    /// size moves without being loaded. The claim is left for the caller to finish.
    /// </summary>
    public string Forward(EntryHead head, Switchboard target, EntryMetadata metadata, Action? beforePlacing = null)
    {
        using var source = OpenEntry(head.Claim.Path);
        metadata.MessageLength = head.Metadata.MessageLength;
        metadata.RecipientCount = head.Metadata.RecipientCount;
        var hasRecipients = head.Metadata.HasRecipients;
        source.Position = head.MessageOffset;
        return target.Write(metadata, s => Copy(source, s, head.Metadata.MessageLength), hasRecipients
            ? s =>
            {
                // The recipient lines, as they are, up to (not including) the trailer.
                var length = source.Length - Trailer.Length - head.RecipientsOffset;
                source.Position = head.RecipientsOffset;
                Copy(source, s, length);
                return head.Metadata.RecipientCount;
            }
        : null, head.Claim.Name, beforePlacing: beforePlacing);
    }

    // A FIFO or a device under an entry's name (made or dropped there by hand) blocked open(2)
    // for good: the runner that claimed it, start-up recovery and the verbs that list a queue
    // hung (review 42). It is no entry: unreadable, so it goes to bad like one.
    // A symbolic link is no entry either (every entry is a file this queue renamed into place):
    // a dangling one under a claimed name stopped every start (review 44), and one in a queue
    // stayed claimed for good, the runner pausing on it.
    //
    // A writer keeps its file locked until just after the rename that gives it its name (see
    // WriteEntry): a reader that comes in that instant (woken by the rename) waits for the close,
    // a tenth of a second at most, instead of pausing its queue with an error (review 120).
    // Locked longer, it is EntryLockedException.
    private System.IO.Abstractions.FileSystemStream OpenEntry(string path)
    {
        if (NotWrittenHere(_fs, path) is { } what)
        {
            throw new CorruptEntryException($"{_fs.Path.GetFileName(path)} {what}: no entry");
        }

        return WaitingForWriter(path, () => _fs.File.OpenRead(path), WaitedForWriter);
    }

    /// <summary>
    /// <paramref name="read"/> of a queue file, waiting a tenth of a second at most while another
    /// process holds it locked (its writer between rename and close); locked longer, <see cref="EntryLockedException"/>.
    /// </summary>
    internal static T WaitingForWriter<T>(string path, Func<T> read, Action<string>? waited = null)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return read();
            }
            catch (IOException e) when (IsLockedByWriter(e))
            {
                if (attempt == 100)
                {
                    throw new EntryLockedException($"{Path.GetFileName(path)} is locked by another process (a writer stopped before it closed the file, or a tool holding it)", e);
                }

                waited?.Invoke(path);
                Thread.Sleep(1);
            }
        }
    }

    // EWOULDBLOCK from .NET's flock(LOCK_SH | LOCK_NB) of the file (review 120).
    private static bool IsLockedByWriter(IOException e) => e.GetType() == typeof(IOException) && e.HResult == 11;

    /// <summary>Told each time a reader finds an entry still locked by its writer (tests).</summary>
    internal Action<string>? WaitedForWriter { get; set; }

    /// <summary>
    /// What is at <paramref name="path"/> that no queue writes, or null: a symbolic link
    /// (dangling, looping, to a device or to a file outside the instance) or a FIFO or device.
    /// Entries and their checkpoints are files a queue made; opening anything else blocked, ran
    /// out of memory or wrote outside the instance (reviews 42, 44, 45).
    /// </summary>
    internal static string? NotWrittenHere(IFileSystem fs, string path)
    {
        if (fs.FileInfo.New(path).LinkTarget is { } target)
        {
            return $"is a symbolic link (to {target})";
        }

        return fs is FileSystem && Instance.FileOwner.IsRegularFile(path) == false && !fs.Directory.Exists(path)
            ? "is not a regular file (a FIFO, a device?)"
            : null;
    }

    // What stands at path that no queue wrote and no rename may go over: a directory, a link, a
    // FIFO or device; null for nothing there or a regular file.
    private string? Blocker(string path)
        => _fs.Directory.Exists(path) && _fs.FileInfo.New(path).LinkTarget is null ? "is a directory" : NotWrittenHere(_fs, path);

    /// <summary>
    /// What stands here at one of entry <paramref name="name"/>'s names (waiting, claimed,
    /// checkpoint, state) that no queue wrote, said for an operator, or null: an entry cannot
    /// be renamed to or beside it (review 46).
    /// </summary>
    /// <param name="name">The entry's name.</param>
    /// <param name="withState">Its state file's names too (where a set-aside writes one).</param>
    public string? Blocked(string name, bool withState = true)
    {
        foreach (var extension in withState
            ? (ReadOnlySpan<string>)[EntryExtension, ClaimedExtension, CheckpointExtension, StateExtension, StateExtension + TempExtension]
            : [EntryExtension, ClaimedExtension, CheckpointExtension])
        {
            if (Blocker(PathOf(name, extension)) is { } what)
            {
                return $"queues/{Name}/{name}{extension} {what}";
            }
        }

        return null;
    }

    /// <summary>Whether an entry of this name is waiting or claimed here.</summary>
    /// <remarks>
    /// Only a file an entry could be: a link or FIFO at its name made start-up recovery take a
    /// claimed entry elsewhere for forwarded or done and delete it (review 47).
    /// </remarks>
    public bool Holds(string name)
        => IsEntryFile(PathOf(name, EntryExtension)) || IsEntryFile(PathOf(name, ClaimedExtension));

    private bool IsEntryFile(string path) => _fs.File.Exists(path) && NotWrittenHere(_fs, path) is null;

    /// <summary>Entry names waiting (not claimed), oldest first: a directory listing, for operators and tests.</summary>
    public IReadOnlyList<string> Pending() => List(EntryExtension);

    /// <summary>Entry names currently claimed by a runner (or left claimed by a crash).</summary>
    public IReadOnlyList<string> Claimed() => List(ClaimedExtension);

    /// <summary>
    /// What is in the directory that this queue never wrote and never reads: a directory, or a
    /// file whose name is not an entry's name and an extension. For operators (status): a
    /// directory under an entry's name is passed over for good (review 44), and other strays
    /// (review 42) were seen by nothing. A file system's lost+found (a queue on its own mount) is none.
    /// </summary>
    public IReadOnlyList<string> Strays()
    {
        var strays = new List<string>();
        if (!_fs.Directory.Exists(Directory))
        {
            return strays;
        }

        // Directories and files listed apart (the kind comes with the listing): no stat per
        // entry, status --watch on a queue of a million entries.
        foreach (var path in _fs.Directory.EnumerateDirectories(Directory))
        {
            if (_fs.Path.GetFileName(path) is var name && name != "lost+found")
            {
                strays.Add(name);
            }
        }

        foreach (var path in _fs.Directory.EnumerateFiles(Directory))
        {
            // The checkout's own .gitkeep (queues/ ships in the repository) is no stray: a
            // newcomer's first status listed one per queue.
            var file = _fs.Path.GetFileName(path);
            var dot = file.IndexOf('.', StringComparison.Ordinal);
            if (file != ".gitkeep" && (dot < 0 || !IsValidEntryName(file[..dot])))
            {
                strays.Add(file);
            }
        }

        strays.Sort(StringComparer.Ordinal);
        return strays;
    }

    /// <summary>Whether any entry waits that may be claimed now (cheap: the index, refreshed as claims refresh it).</summary>
    public bool HasWaiting()
    {
        lock (_gate)
        {
            RefreshIfDue(force: _waiting.Count == 0);
            if (_lockedUntil.Count == 0)
            {
                return _waiting.Count > 0;
            }

            // One passed over while another process holds it locked is no work to do now.
            foreach (var name in _waiting)
            {
                if (!StillLocked(name))
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>
    /// Entry names waiting, oldest first, as the index holds them (refreshed as claims refresh
    /// it): what <see cref="TryClaim(Func{string, bool})"/> chooses from, without a directory read.
    /// </summary>
    public string[] Waiting()
    {
        lock (_gate)
        {
            RefreshIfDue(force: _waiting.Count == 0);
            return [.. _waiting];
        }
    }

    /// <summary>Claims the oldest waiting entry; safe against other workers claiming the same one.</summary>
    public ClaimedEntry? TryClaim() => TryClaim(static _ => true);

    /// <summary>Claims the oldest waiting entry that <paramref name="eligible"/> accepts (by name).</summary>
    public ClaimedEntry? TryClaim(Func<string, bool> eligible)
    {
        lock (_gate)
        {
            RefreshIfDue(force: _waiting.Count == 0);
            while (true)
            {
                string? candidate = null;
                foreach (var name in _waiting)
                {
                    if (!StillLocked(name) && eligible(name))
                    {
                        candidate = name;
                        break;
                    }
                }

                if (candidate is null)
                {
                    return null;
                }

                IndexRemove(candidate);
                var claimed = Claim(candidate);
                if (claimed is not null)
                {
                    return claimed;
                }

                // Claimed or removed by another process since the scan: go on with the next.
            }
        }
    }

    // Under the gate.
    private bool StillLocked(string name)
    {
        if (_lockedUntil.Count == 0 || !_lockedUntil.TryGetValue(name, out var until))
        {
            return false;
        }

        if (_time.GetTimestamp() < until)
        {
            return true;
        }

        _lockedUntil.Remove(name);
        return false;
    }

    /// <summary>Claims one named entry; null when another worker got it first.</summary>
    public ClaimedEntry? Claim(string name)
    {
        var claimedPath = PathOf(name, ClaimedExtension);
        try
        {
            // rename(2) is atomic: of two workers renaming the same file, exactly one succeeds.
            _fs.File.Move(PathOf(name, EntryExtension), claimedPath);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (IOException) when (Blocker(claimedPath) is { } what)
        {
            throw new EntryBlockedException(name, $"queues/{Name}/{name}{ClaimedExtension} {what}, where the entry's claim must go");
        }

        lock (_gate)
        {
            IndexRemove(name);
        }

        Interlocked.Increment(ref _claimsHeld);
        return new ClaimedEntry(Name, name, claimedPath);
    }

    /// <summary>Reads a claimed entry's metadata and message bytes.</summary>
    /// <exception cref="CorruptEntryException">Torn, truncated or unknown format.</exception>
    /// <exception cref="UnauthorizedAccessException">The file is not readable by this user.</exception>
    /// <remarks>A message over 2 GB is reported as <see cref="CorruptEntryException"/>: read it with <see cref="OpenMessage"/>.</remarks>
    public LoadedEntry Load(ClaimedEntry entry)
    {
        using var stream = OpenEntry(entry.Path);
        var head = ReadHead(stream, entry);
        if (head.Metadata.MessageLength > Array.MaxLength)
        {
            // Only streaming readers (LoadHead, OpenMessage) can take it; it is kept, not read.
            throw new CorruptEntryException($"{entry.Name}: the message ({head.Metadata.MessageLength} bytes) is too large to be read whole");
        }

        stream.Position = head.MessageOffset;
        var message = new byte[head.Metadata.MessageLength];
        stream.ReadExactly(message);
        return new LoadedEntry(entry, head.Metadata, message, head.RecipientsOffset);
    }

    /// <summary>Reads a claimed entry's head (metadata, checked against the file's length and trailer) without its message.</summary>
    /// <exception cref="CorruptEntryException">Torn, truncated or unknown format.</exception>
    public EntryHead LoadHead(ClaimedEntry entry)
    {
        using var stream = OpenEntry(entry.Path);
        return ReadHead(stream, entry);
    }

    /// <summary>A read-only stream over the message bytes of a claimed entry (for parsing large posts in place).</summary>
    public Stream OpenMessage(EntryHead head)
    {
        var stream = OpenEntry(head.Claim.Path);
        return new MimeKit.IO.BoundStream(stream, head.MessageOffset, head.RecipientsOffset, leaveOpen: false);
    }

    /// <summary>Reads only the metadata of an entry (status, retry scheduling), with its state applied.</summary>
    /// <exception cref="CorruptEntryException">The head cannot be read.</exception>
    public EntryMetadata ReadMetadata(string name, string extension = EntryExtension)
    {
        using var stream = OpenEntry(PathOf(name, extension));
        var (metadata, _) = ReadMetadataLine(stream, name);
        ApplyState(name, metadata);
        return metadata;
    }

    /// <summary>When a waiting entry may be claimed (retry backoff), cached: entry files never change.</summary>
    /// <exception cref="EntryLockedException">Another process holds it (now, or when last looked at: it is passed over a while).</exception>
    public DateTimeOffset? NotBefore(string name)
    {
        lock (_gate)
        {
            if (_notBefore.TryGetValue(name, out var cached))
            {
                return cached;
            }

            if (StillLocked(name))
            {
                throw new EntryLockedException($"{name}{EntryExtension} was locked by another process a moment ago", null);
            }
        }

        DateTimeOffset? value;
        try
        {
            value = ReadMetadata(name).NotBefore;
        }
        catch (EntryLockedException)
        {
            // Not read again at every look while another process holds it (review 123: the retry
            // queue paused, and `serve --exit-when-idle` stopped with 70).
            PassOver(name, LockedEntryWait);
            throw;
        }

        lock (_gate)
        {
            if (_waiting.Contains(name))
            {
                _notBefore[name] = value;
            }
        }

        return value;
    }

    /// <summary>Streams the recipient lines of a loaded entry, skipping the first <paramref name="skip"/>.</summary>
    public IEnumerable<Recipient> Recipients(LoadedEntry entry, long skip = 0)
        => entry.Metadata.HasRecipients ? ReadRecipients(entry.Claim, entry.RecipientsOffset, skip) : [];

    /// <summary>Streams the recipient lines of an entry read by its head.</summary>
    public IEnumerable<Recipient> Recipients(EntryHead head, long skip = 0)
        => head.Metadata.HasRecipients ? ReadRecipients(head.Claim, head.RecipientsOffset, skip) : [];

    /// <summary>Deletes a claimed entry (and its checkpoint and state): its result is durably elsewhere.</summary>
    public void Finish(ClaimedEntry entry)
    {
        _fs.File.Delete(entry.Path);
        Released();
        TryDelete(CheckpointPath(entry.Name));
        TryDelete(PathOf(entry.Name, StateExtension));
    }

    /// <summary>Deletes a claim of <paramref name="name"/> here, with its checkpoint and state, when there is one (see QueueSet.SettleUpstream).</summary>
    public void DropStaleClaim(string name)
    {
        var path = PathOf(name, ClaimedExtension);
        if (_fs.File.Exists(path))
        {
            TryDelete(path);
            TryDelete(CheckpointPath(name));
            TryDelete(PathOf(name, StateExtension));
        }
    }

    /// <summary>
    /// Puts back one entry that a process which died left claimed here, as start-up recovery
    /// does for it (a rewrite cut short keeps the complete NAME.msg; its temporary goes). Only
    /// for a caller that knows no live process holds the claim (hold's moderation lock; serve's
    /// lock, taken by `lists delete` and `lists create` when no daemon runs).
    /// </summary>
    /// <returns>False when <paramref name="name"/> is not claimed here.</returns>
    /// <exception cref="EntryBlockedException">Something no queue wrote stands at its waiting name: it stays claimed.</exception>
    public bool PutBackAbandoned(string name)
    {
        var claimed = PathOf(name, ClaimedExtension);
        if (!_fs.File.Exists(claimed))
        {
            return false;
        }

        TryDelete(PathOf(name, TempExtension));
        if (IsEntryFile(PathOf(name, EntryExtension)))
        {
            TryDelete(claimed);
            Added(name);
        }
        else
        {
            MoveBack(name, claimed);
        }

        SyncDirectory();
        return true;
    }

    /// <summary>Where the delivery checkpoint of entry <paramref name="name"/> lives.</summary>
    public string CheckpointPath(string name) => PathOf(name, CheckpointExtension);

    /// <summary>
    /// Passes over waiting entry <paramref name="name"/> when claiming, for <paramref name="wait"/>:
    /// one that <see cref="EntryLockedException"/> kept from being read, put back; the others go
    /// on meanwhile.
    /// </summary>
    public void PassOver(string name, TimeSpan wait)
    {
        lock (_gate)
        {
            _lockedUntil[name] = _time.GetTimestamp() + (long)(wait.TotalSeconds * _time.TimestampFrequency);
        }
    }

    /// <summary>Puts a claimed entry back, untouched (graceful shutdown; a hop that could not be written now).</summary>
    /// <exception cref="EntryBlockedException">Something no queue wrote stands at its waiting name: it stays claimed.</exception>
    public void Unclaim(ClaimedEntry entry)
    {
        MoveBack(entry.Name, entry.Path);
        Released();
    }

    // A claim renamed back to its waiting name, and known to the index and the runners.
    private void MoveBack(string name, string claimed)
    {
        var back = PathOf(name, EntryExtension);
        try
        {
            _fs.File.Move(claimed, back);
        }
        catch (IOException e) when (e is not FileNotFoundException && Blocker(back) is { } what)
        {
            throw new EntryBlockedException(name, $"queues/{Name}/{name}{EntryExtension} {what}, where the entry must go back");
        }

        Added(name);
    }

    /// <summary>
    /// Sets a claimed entry aside into <paramref name="target"/> (shunt, bad) under its name, by
    /// renames only, so it works on a full disk and on files this user cannot read: the entry
    /// file as it is, its delivery checkpoint (so a later unshunt resumes where delivery
    /// stopped), and a state file saying where it came from and why.
    /// </summary>
    /// <returns>Its name in <paramref name="target"/>: its own, or one of its time when that is taken there.</returns>
    /// <exception cref="IOException">The state file cannot be written (a full disk): nothing moved.</exception>
    public string SetAside(ClaimedEntry entry, Switchboard target, string error)
        => MoveAside(entry.Name, entry.Path, claimed: true, target, error);

    /// <summary>
    /// Sets aside a waiting entry that cannot be claimed (<see cref="EntryBlockedException"/>),
    /// as <see cref="SetAside"/> does a claimed one: its name in <paramref name="target"/>, or
    /// null when it is gone (taken by another).
    /// </summary>
    public string? SetAsideWaiting(string name, Switchboard target, string error)
    {
        try
        {
            return MoveAside(name, PathOf(name, EntryExtension), claimed: false, target, error);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    private string MoveAside(string entryName, string entryPath, bool claimed, Switchboard target, string error)
    {
        var state = ReadStateOrNew(entryName);
        state.FromQueue = Name;
        state.Error = error;
        var name = entryName;
        if (target.Holds(name) || target.Blocked(name) is not null)
        {
            // Never over another entry, nor onto a directory or link left at its names (review
            // 46): this one takes a name of its own, the same time and a random part, until one
            // is free (review 47: a derived name taken too stopped every start).
            var tries = 0;
            do
            {
                name = name[..17] + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
                if (++tries > 100)
                {
                    throw new EntryBlockedException(entryName, $"its name and 100 others of its time are taken in queues/{target.Name}");
                }
            }
            while (target.Holds(name) || target.Blocked(name) is not null);

            state.Error += $" (its name {entryName} was taken in {target.Name})";
        }

        // Where it came from must go with it (unshunt puts it back there): on a full disk this
        // throws and the entry stays claimed for the caller to put back.
        target.WriteState(name, state);
        TryDelete(PathOf(entryName, StateExtension));

        // The entry first, then its checkpoint: a crash between leaves the checkpoint without
        // its entry, and start-up recovery moves it after the entry (never the other way round,
        // which would resume a delivery from its start).
        _fs.File.Move(entryPath, target.PathOf(name, EntryExtension));
        if (claimed)
        {
            Released();
        }
        else
        {
            lock (_gate)
            {
                IndexRemove(entryName);
            }
        }

        if (_fs.File.Exists(CheckpointPath(entryName)))
        {
            _fs.File.Move(CheckpointPath(entryName), target.CheckpointPath(name), overwrite: true);
        }

        target.SyncDirectory();
        SyncDirectory();
        target.Added(name);
        return name;
    }

    /// <summary>
    /// Moves a waiting entry set aside here back to <paramref name="target"/> under its name,
    /// with its checkpoint, forgetting why it was set aside (unshunt).
    /// </summary>
    /// <returns>False when the entry is gone or claimed by someone else.</returns>
    /// <exception cref="CorruptEntryException">A link, FIFO or device under the entry's name here: no entry, left where it is.</exception>
    /// <exception cref="EntryBlockedException">Something no queue wrote stands at its names in <paramref name="target"/>: nothing moved.</exception>
    public bool Restore(string name, Switchboard target)
    {
        if (NotWrittenHere(_fs, PathOf(name, EntryExtension)) is { } what)
        {
            throw new CorruptEntryException($"{name} {what}: no entry");
        }

        if (target.Blocked(name, withState: false) is { } blocked)
        {
            throw new EntryBlockedException(name, blocked);
        }

        var claim = Claim(name);
        if (claim is null)
        {
            return false;
        }

        // The checkpoint first, then the entry: the target's runner may claim the entry the
        // moment it appears, and must find its checkpoint there or it would start from the first
        // member. A crash between leaves the checkpoint without its entry: start-up recovery
        // takes it back to the entry.
        var checkpointMoved = false;
        try
        {
            if (_fs.File.Exists(CheckpointPath(name)))
            {
                _fs.File.Move(CheckpointPath(name), target.CheckpointPath(name), overwrite: true);
                checkpointMoved = true;
                target.SyncDirectory();
            }

            _fs.File.Move(claim.Path, target.PathOf(name, EntryExtension));
        }
        catch
        {
            // Back as it was, waiting here: a failed move left it claimed until the next start (review 46).
            if (checkpointMoved)
            {
                try
                {
                    _fs.File.Move(target.CheckpointPath(name), CheckpointPath(name));
                }
                catch (IOException)
                {
                    // Left beside where the entry goes: start-up recovery takes it back to the entry.
                }
            }

            Unclaim(claim);
            throw;
        }

        Released();
        TryDelete(PathOf(name, StateExtension));
        target.SyncDirectory();
        target.Added(name);
        return true;
    }

    /// <summary>Replaces a claimed entry's metadata and puts it back under the same name, durably (tests, tools).</summary>
    public void Rewrite(ClaimedEntry entry, EntryMetadata metadata)
    {
        var head = LoadHead(entry);
        var temp = PathOf(entry.Name, TempExtension);
        TryDelete(temp);
        using (var source = OpenEntry(entry.Path))
        {
            metadata.MessageLength = head.Metadata.MessageLength;
            metadata.RecipientCount = head.Metadata.RecipientCount;
            source.Position = head.MessageOffset;
            using var written = WriteEntry(temp, metadata, s => Copy(source, s, head.Metadata.MessageLength), head.Metadata.HasRecipients
                ? s =>
                {
                    Copy(source, s, source.Length - Trailer.Length - head.RecipientsOffset);
                    return head.Metadata.RecipientCount;
                }
            : null);

            // The new file replaces the claim in two renames-worth of steps; a crash between leaves
            // NAME.msg and NAME.bak, which recovery settles in favour of the complete NAME.msg.
            // Renamed while still locked (see WriteEntry).
            _fs.File.Move(temp, PathOf(entry.Name, EntryExtension));
        }

        _fs.File.Delete(entry.Path);
        Released();
        SyncDirectory();
        Added(entry.Name);
    }

    /// <summary>
    /// Start-up recovery, idempotent at every step (a kill anywhere in it and a second run end
    /// consistent): temporary files no live writer holds are removed; a claim beside a complete
    /// entry of the same name (a rewrite cut short) is dropped; state files of gone entries are
    /// removed. Each entry left claimed by a crash is then, in this order: finished when
    /// <paramref name="done"/> says its work is durably elsewhere; dropped when another queue
    /// holds its name and it has no checkpoint (<paramref name="forwarded"/>: the hop was done);
    /// set aside into <paramref name="bad"/> when unreadable, into <paramref name="shunt"/>
    /// (<paramref name="bad"/> when none) when it was recovered more than
    /// <paramref name="maxRecoveries"/> times without its checkpoint growing in between, or when something no queue wrote stands where it must go
    /// back (<see cref="EntryBlockedException"/>: one stopped every start, review 46); else put
    /// back to be processed again. <paramref name="setAside"/> is told the name, why and where of
    /// each set aside (its log line with the entry's id).
    /// </summary>
    /// <returns>(recovered, set aside).</returns>
    public (int Recovered, int SetAside) Recover(Switchboard bad, int maxRecoveries, Func<string, bool>? forwarded = null, Func<string, bool>? done = null, Action<string, string, string>? setAside = null, Switchboard? shunt = null)
    {
        shunt ??= bad;
        RemoveStaleTemporaries();
        foreach (var name in Claimed())
        {
            // A rewrite cut short: the complete entry is NAME.msg. Not a link or FIFO there (review
            // 47: the claimed post was deleted for one).
            if (IsEntryFile(PathOf(name, EntryExtension)))
            {
                TryDelete(PathOf(name, ClaimedExtension));
            }
        }

        foreach (var path in _fs.Directory.EnumerateFiles(Directory, "*" + StateExtension))
        {
            var name = _fs.Path.GetFileNameWithoutExtension(path);
            if (IsValidEntryName(name) && !Holds(name))
            {
                TryDelete(path);
            }
        }

        int recovered = 0, toBad = 0;
        foreach (var name in Claimed())
        {
            var entry = new ClaimedEntry(Name, name, PathOf(name, ClaimedExtension));
            var hasCheckpoint = _fs.File.Exists(CheckpointPath(name));
            if (done?.Invoke(name) == true || (forwarded?.Invoke(name) == true && !hasCheckpoint))
            {
                Finish(entry);
                recovered++;
                continue;
            }

            string? unusable = null;
            try
            {
                LoadHead(entry);
            }
            catch (CorruptEntryException e)
            {
                unusable = e.Message;
            }
            catch (UnauthorizedAccessException e)
            {
                unusable = e.Message;
            }
            catch (EntryLockedException)
            {
                // Another process holds it: intact, put back like the others (review 123: every
                // start stopped, 73); its runner passes over it while the lock lasts.
            }

            var state = ReadStateOrNew(name);
            var progress = hasCheckpoint ? CheckpointProgress(name) : 0;
            state.Recoveries = progress > state.Progress ? 0 : state.Recoveries + 1;
            state.Progress = progress;
            if (unusable is not null || state.Recoveries > maxRecoveries)
            {
                try
                {
                    // Unreadable: bad. Crashed on too often: shunt, whence `unshunt` puts it back
                    // after a fix (review 59: a post killed four times while the relay hung went
                    // to bad, and no verb brought it back).
                    var why = unusable ?? $"left claimed by {state.Recoveries} crashed runs in a row that made no progress";
                    var target = unusable is null ? shunt : bad;
                    var toName = SetAside(entry, target, why);
                    setAside?.Invoke(name, why, toName == name ? target.Name : $"{target.Name} as {toName}");
                    toBad++;
                    continue;
                }
                catch (IOException)
                {
                    // A full disk: it waits in its queue like the others; the next start counts again.
                }
            }

            // Back first, counted second: a kill between under-counts one crash, never loses the
            // entry or counts a crash twice. On a full disk the count is not raised.
            try
            {
                Unclaim(entry);
            }
            catch (EntryBlockedException e)
            {
                var aside = SetAside(entry, shunt, e.Message);
                setAside?.Invoke(name, e.Message, aside == name ? shunt.Name : $"{shunt.Name} as {aside}");
                toBad++;
                continue;
            }

            try
            {
                WriteState(name, state);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }

            recovered++;
        }

        return (recovered, toBad);
    }

    // What a checkpoint records past the delivery's cut; its length when it cannot be read
    // (LoadHead above named anything worse).
    private long CheckpointProgress(string name)
    {
        var path = CheckpointPath(name);
        try
        {
            return DeliveryCheckpoint.Progress(_fs, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return _fs.FileInfo.New(path).Length;
        }
    }

    /// <summary>Names of delivery checkpoints here whose entry is not here (finished, or moved by a crashed run).</summary>
    public IReadOnlyList<string> OrphanCheckpoints()
        => _fs.Directory.EnumerateFiles(Directory, "*" + CheckpointExtension)
            .Select(p => _fs.Path.GetFileNameWithoutExtension(p))
            .Where(n => IsValidEntryName(n) && !Holds(n))
            .ToList();

    /// <summary>Moves the orphan checkpoint <paramref name="name"/> to its entry in <paramref name="target"/>, or deletes it when null.</summary>
    public void SettleOrphanCheckpoint(string name, Switchboard? target)
    {
        if (target is not null && !_fs.File.Exists(target.CheckpointPath(name)))
        {
            _fs.File.Move(CheckpointPath(name), target.CheckpointPath(name));
            target.SyncDirectory();
        }
        else
        {
            TryDelete(CheckpointPath(name));
        }
    }

    // The state to write anew: what was recorded, or a fresh one when none can be read.
    private EntryState ReadStateOrNew(string name)
    {
        try
        {
            return ReadState(name) ?? new EntryState();
        }
        catch (EntryLockedException)
        {
            return new EntryState();
        }
    }

    /// <summary>The state beside an entry (recovery count, why it was set aside), or null.</summary>
    /// <exception cref="EntryLockedException">Another process holds the state file locked: where it came from is not known now (review 123: unshunt guessed, and a post went back through the list).</exception>
    public EntryState? ReadState(string name)
    {
        var path = PathOf(name, StateExtension);
        if (Instance.FileOwner.IsRegularFile(path) == false)
        {
            return null; // a FIFO blocked the read for good (review 43); the entry itself is intact
        }

        try
        {
            return _fs.File.Exists(path) ? JsonSerializer.Deserialize(WaitingForWriter(path, () => _fs.File.ReadAllBytes(path), WaitedForWriter), EntryMetadataJson.Default.EntryState) : null;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException && e is not EntryLockedException)
        {
            return null; // a torn state file: the entry itself is intact
        }
    }

    internal string PathOf(string name, string extension)
    {
        if (!IsValidEntryName(name))
        {
            throw new ArgumentException($"invalid queue entry name '{name}'", nameof(name));
        }

        return _fs.Path.Combine(Directory, name + extension);
    }

    private void WriteState(string name, EntryState state)
    {
        var path = PathOf(name, StateExtension);
        var temp = path + TempExtension;
        try
        {
            _fs.File.Delete(temp); // made anew, never opened through a link or a FIFO left there (review 45)
            using (var stream = _fs.FileStream.New(temp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                stream.Write(JsonSerializer.SerializeToUtf8Bytes(state, EntryMetadataJson.Default.EntryState));
                Flush(stream);
                _fs.File.Move(temp, path, overwrite: true); // still locked, as an entry's (see WriteEntry)
            }
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private void ApplyState(string name, EntryMetadata metadata)
    {
        if (ReadState(name) is { } state)
        {
            metadata.Recoveries = state.Recoveries;
            metadata.FromQueue = state.FromQueue ?? metadata.FromQueue;
            metadata.Error = state.Error ?? metadata.Error;
        }
    }

    /// <summary>
    /// Removes the temporary files of writers that died (start-up, and the incoming runner when
    /// idle: an inject killed by the MTA's time limit leaves one). A writer holds an exclusive
    /// lock on its temporary file from creation to rename (.NET takes flock(2) for
    /// FileShare.None), so a file nobody can lock is being written right now by a live inject,
    /// and stays. The lock dies with its process: a crashed writer's file goes. But a writer
    /// opens its file an instant before it locks it, and writes nothing before the lock: an
    /// empty file made in the last seconds may be a writer in that instant, and stays.
    /// </summary>
    /// <param name="olderThan">Only files last written longer ago than this.</param>
    public void RemoveStaleTemporaries(TimeSpan olderThan = default)
    {
        var cutoff = _time.GetUtcNow().UtcDateTime - olderThan;
        foreach (var temp in _fs.Directory.EnumerateFiles(Directory, "*" + TempExtension))
        {
            var file = _fs.Path.GetFileName(temp);
            var dot = file.IndexOf('.', StringComparison.Ordinal);
            if (dot < 0 || !IsValidEntryName(file[..dot]))
            {
                continue;
            }

            if (olderThan > TimeSpan.Zero && _fs.File.GetLastWriteTimeUtc(temp) > cutoff)
            {
                continue;
            }

            if (HeldByNoWriter(temp, sweep: true))
            {
                TryDelete(temp);
            }
        }
    }

    // A temporary file no live writer holds: its writer died (see RemoveStaleTemporaries).
    private bool HeldByNoWriter(string temp, bool sweep)
    {
        // A link, FIFO or device is no writer's (a writer makes its file anew), and opening a FIFO
        // blocked start-up recovery for good, before its first line (review 43): stale.
        var info = _fs.FileInfo.New(temp);
        if (!_realDisk || info.LinkTarget is not null || Instance.FileOwner.IsRegularFile(temp) == false)
        {
            return true;
        }

        // A sweep leaves an empty file made in the last seconds (either way: a clock stepped back
        // does not keep it for the hour) to a writer between its open and its lock, and does not
        // even probe it (the probe's lock would fail the writer's). A write under a name of its
        // own (a hop, a notice) has no writer beside it, the name being claimed: an empty file
        // there is a killed writer's (review 120: taken for a live one, it shunted the post of a
        // daemon killed mid-hop and started again at once, a small entry's file being empty until
        // its last flush).
        if (sweep && info.Exists && info.Length == 0 && (info.LastWriteTimeUtc - _time.GetUtcNow().UtcDateTime).Duration() < JustMade)
        {
            return false;
        }

        try
        {
            using var probe = new FileStream(temp, FileMode.Open, FileAccess.Read, FileShare.None);
            return true;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
        catch (IOException)
        {
            return false; // locked: a live writer
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private void Added(string name)
    {
        lock (_gate)
        {
            IndexAdd(name);
        }

        _signal?.Set();
    }

    private void RefreshIfDue(bool force)
    {
        var now = Stopwatch.GetTimestamp();
        var interval = ScanInterval > _scanCost * 10 ? ScanInterval : _scanCost * 10;
        if (_scanned && Stopwatch.GetElapsedTime(_scannedAt, now) < (force ? _scanCost * 10 : interval))
        {
            return;
        }

        if (_realDisk)
        {
            ScanIncrementally();
        }
        else
        {
            _waiting.Clear();
            _seen.Clear();
            foreach (var name in List(EntryExtension))
            {
                IndexAdd(name);
            }
        }

        if (_notBefore.Count > 0)
        {
            foreach (var gone in _notBefore.Keys.Where(k => !_waiting.Contains(k)).ToList())
            {
                _notBefore.Remove(gone);
            }
        }

        if (_lockedUntil.Count > 0)
        {
            foreach (var gone in _lockedUntil.Keys.Where(k => !_waiting.Contains(k)).ToList())
            {
                _lockedUntil.Remove(gone);
            }
        }

        _scanCost = Stopwatch.GetElapsedTime(now);
        _scannedAt = Stopwatch.GetTimestamp();
        _scanned = true;
        Scans++;
    }

    // A scan that allocates only for names it has not seen before: at a million entries, a
    // rebuild would make a million strings and set nodes of garbage every scan.
    private void ScanIncrementally()
    {
        var generation = ++_generation;
        var lookup = _seen.GetAlternateLookup<ReadOnlySpan<char>>();
        var scan = new System.IO.Enumeration.FileSystemEnumerable<bool>(Directory, (ref System.IO.Enumeration.FileSystemEntry entry) =>
        {
            var file = entry.FileName;
            if (!file.EndsWith(EntryExtension, StringComparison.Ordinal) || entry.IsDirectory)
            {
                return false; // a directory under an entry's name cannot be claimed (review 44: it kept the queue busy for good)
            }

            var name = file[..^EntryExtension.Length];
            if (!EntryNameRegex().IsMatch(name))
            {
                return false;
            }

            if (lookup.ContainsKey(name))
            {
                lookup[name] = generation;
            }
            else
            {
                var s = name.ToString();
                _seen[s] = generation;
                _waiting.Add(s);
            }

            return true;
        });
        foreach (var _ in scan)
        {
        }

        List<string>? gone = null;
        foreach (var (name, seenAt) in _seen)
        {
            if (seenAt != generation)
            {
                (gone ??= []).Add(name);
            }
        }

        foreach (var name in gone ?? [])
        {
            _seen.Remove(name);
            _waiting.Remove(name);
        }

    }

    // Never below zero: recovery releases claims that a crashed run made, not this one.
    private void Released()
    {
        if (Interlocked.Decrement(ref _claimsHeld) < 0)
        {
            Interlocked.Exchange(ref _claimsHeld, 0);
        }
    }

    private void IndexAdd(string name)
    {
        _waiting.Add(name);
        _seen[name] = _generation;
    }

    private void IndexRemove(string name)
    {
        _waiting.Remove(name);
        _seen.Remove(name);
        _notBefore.Remove(name);
    }

    private List<string> List(string extension)
    {
        var names = new List<string>();
        if (!_fs.Directory.Exists(Directory))
        {
            return names;
        }

        foreach (var path in _fs.Directory.EnumerateFiles(Directory, "*" + extension))
        {
            var name = _fs.Path.GetFileNameWithoutExtension(path);
            if (IsValidEntryName(name))
            {
                names.Add(name);
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    // beforePlacing runs between the write and the rename: a hop that tells someone of the
    // entry (a held post's notices) tells them only once its bytes are on disk (review 137: on a
    // full disk the hold hop failed after queuing the poster's notice, and each retry of the
    // paused runner sent it again: six notices for two posts in fifteen seconds). Entries
    // chained this way (each the next one's beforePlacing) are placed all or none: every one is
    // written before the first is renamed (review 138: the owner's notice fitted, the next did
    // not, and the owner was told at every retry). It runs also when the entry is here already
    // (an earlier run wrote it): what it chains is not skipped.
    private string Write(EntryMetadata metadata, Func<Stream, long> writeMessage, Func<Stream, long>? writeRecipients, string? name, Func<long, long>? keepFree = null, Action? beforePlacing = null)
    {
        if (name is not null)
        {
            if (!IsValidEntryName(name))
            {
                throw new ArgumentException($"invalid entry name {name}", nameof(name));
            }

            if (Holds(name))
            {
                beforePlacing?.Invoke();
                return name;
            }
        }

        var named = name is not null;
        name ??= NewName();
        var final = PathOf(name, EntryExtension);
        var temp = PathOf(name, TempExtension);

        // A name chosen by the caller (a notice's, made from what it answers) may have been
        // written by a process killed half-way: its temporary file is in the way until the next
        // sweep, and the write failed on it with "already exists" (review 88). One a live writer
        // holds is left to it (the failed write below would have removed it).
        if (named && _fs.File.Exists(temp))
        {
            if (!HeldByNoWriter(temp, sweep: false))
            {
                throw new IOException($"queues/{Name}/{name}{TempExtension} is being written by another process");
            }

            TryDelete(temp);
        }

        try
        {
            metadata.Recoveries = 0;
            using (var written = WriteEntry(temp, metadata, writeMessage, writeRecipients))
            {
                if (keepFree is not null && _realDisk)
                {
                    var size = written.Length;
                    var need = keepFree(size);
                    var free = new DriveInfo(Directory).AvailableFreeSpace;
                    if (free < need)
                    {
                        throw new IOException($"{free:N0} bytes are free on the file system of {Directory}, and a post of {size:N0} bytes is taken only with {need:N0} left free (room for the daemon to move it on)", 28);
                    }
                }

                beforePlacing?.Invoke();

                try
                {
                    _fs.File.Move(temp, final);
                }
                catch (IOException e) when (e is not EntryBlockedException && Blocker(final) is { } what)
                {
                    throw new EntryBlockedException(name, $"queues/{Name}/{name}{EntryExtension} {what}, where the entry must go");
                }
            }

            SyncDirectory();
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        Added(name);
        return name;
    }

    // Magic line, one JSON metadata line, the message, the recipient lines, the trailer. The
    // message length and recipient count are not known until they have streamed by: they are
    // patched in place in fixed-width fields, so neither a large post nor a million members is
    // ever held in memory. The file is returned still open, flushed to disk: the caller renames
    // it before closing it, so the writer's lock (see RemoveStaleTemporaries) covers the file
    // from the instant after it is made until it has its final name (closed before the rename,
    // a start-up sweep in between took a complete post from under its inject: CI).
    private FileSystemStream WriteEntry(string path, EntryMetadata metadata, Func<Stream, long> writeMessage, Func<Stream, long>? writeRecipients)
    {
        metadata.Version = FormatVersion;
        metadata.HasRecipients = writeRecipients is not null;
        metadata.MessageLength = LengthPlaceholder;
        metadata.RecipientCount = writeRecipients is null ? 0 : CountPlaceholder;
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.None,
            BufferSize = 1 << 16,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        var stream = _fs.FileStream.New(path, options);
        try
        {
            WriteEntry(stream, metadata, writeMessage, writeRecipients);
            return stream;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private static void WriteEntry(FileSystemStream stream, EntryMetadata metadata, Func<Stream, long> writeMessage, Func<Stream, long>? writeRecipients)
    {
        stream.Write(Magic);
        var json = JsonSerializer.SerializeToUtf8Bytes(metadata, EntryMetadataJson.Default.EntryMetadata);
        var lengthAt = Magic.Length + Field(json, "\"MessageLength\":"u8, LengthPlaceholder);
        var countAt = writeRecipients is null ? -1 : Magic.Length + Field(json, "\"RecipientCount\":"u8, CountPlaceholder);
        stream.Write(json);
        stream.WriteByte((byte)'\n');
        var length = writeMessage(stream);
        var count = writeRecipients?.Invoke(stream) ?? 0;
        stream.Write(Trailer);

        // JSON allows whitespace after a number, not leading zeros: pad on the right.
        stream.Position = lengthAt;
        stream.Write(Encoding.ASCII.GetBytes(length.ToString(System.Globalization.CultureInfo.InvariantCulture).PadRight(15)));
        if (countAt >= 0)
        {
            stream.Position = countAt;
            stream.Write(Encoding.ASCII.GetBytes(count.ToString(System.Globalization.CultureInfo.InvariantCulture).PadRight(12)));
        }

        Flush(stream);
        metadata.MessageLength = length;
        metadata.RecipientCount = count;
    }

    private static int Field(byte[] json, ReadOnlySpan<byte> key, long placeholder)
    {
        var at = json.AsSpan().IndexOf(key);
        if (at < 0 || !json.AsSpan(at + key.Length).StartsWith(Encoding.ASCII.GetBytes(placeholder.ToString(System.Globalization.CultureInfo.InvariantCulture))))
        {
            throw new InvalidOperationException("metadata serialization lost a placeholder");
        }

        return at + key.Length;
    }

    private static long WriteRecipients(Stream stream, IEnumerable<Recipient> recipients)
    {
        long count = 0;
        var buffer = new ArrayBufferWriter<byte>(1 << 16);
        foreach (var r in recipients)
        {
            WriteRecipient(buffer, r);
            count++;
            if (buffer.WrittenCount > (1 << 16) - 1024)
            {
                stream.Write(buffer.WrittenSpan);
                buffer.ResetWrittenCount();
            }
        }

        stream.Write(buffer.WrittenSpan);
        return count;
    }

    private static void WriteRecipient(ArrayBufferWriter<byte> buffer, Recipient r)
    {
        // Addresses and names never contain TAB or LF here: the store sanitizes names and
        // validates addresses; this is the last line of defence for the record format (Recipient.ToLine).
        var line = r.ToLine();
        var span = buffer.GetSpan(Encoding.UTF8.GetMaxByteCount(line.Length));
        buffer.Advance(Encoding.UTF8.GetBytes(line, span));
    }

    private IEnumerable<Recipient> ReadRecipients(ClaimedEntry claim, long offset, long skip)
    {
        using var stream = OpenEntry(claim.Path);
        stream.Position = offset;
        using var reader = new StreamReader(stream, Encoding.UTF8, false, 1 << 16);
        long index = 0;
        while (reader.ReadLine() is { } line)
        {
            if (line == "MAILMAN-END")
            {
                yield break;
            }

            if (index++ < skip)
            {
                continue;
            }

            yield return Recipient.Parse(line);
        }

        throw new CorruptEntryException($"entry {claim.Name}: recipient list has no end marker");
    }

    private EntryHead ReadHead(Stream stream, ClaimedEntry entry)
    {
        var (metadata, messageOffset) = ReadMetadataLine(stream, entry.Name);
        if (stream.Length < messageOffset + metadata.MessageLength + Trailer.Length)
        {
            throw new CorruptEntryException($"entry {entry.Name} is truncated: {stream.Length} bytes, message needs {metadata.MessageLength}");
        }

        Span<byte> tail = stackalloc byte[12];
        stream.Position = stream.Length - tail.Length;
        stream.ReadExactly(tail);
        if (!tail.SequenceEqual(Trailer))
        {
            throw new CorruptEntryException($"entry {entry.Name} is truncated (no end marker)");
        }

        ApplyState(entry.Name, metadata);
        return new EntryHead(entry, metadata, messageOffset);
    }

    private static (EntryMetadata Metadata, long MessageOffset) ReadMetadataLine(Stream stream, string name)
    {
        Span<byte> magic = stackalloc byte[16];
        if (stream.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false) != magic.Length || !magic.SequenceEqual(Magic))
        {
            throw new CorruptEntryException($"entry {name} does not start with the queue format marker");
        }

        var line = new ArrayBufferWriter<byte>(512);
        int b;
        while ((b = stream.ReadByte()) != '\n')
        {
            if (b < 0 || line.WrittenCount > 1 << 20)
            {
                throw new CorruptEntryException($"entry {name} has no complete metadata line");
            }

            line.GetSpan(1)[0] = (byte)b;
            line.Advance(1);
        }

        EntryMetadata? metadata;
        try
        {
            metadata = JsonSerializer.Deserialize(line.WrittenSpan, EntryMetadataJson.Default.EntryMetadata);
        }
        catch (JsonException e)
        {
            throw new CorruptEntryException($"entry {name} has unreadable metadata: {e.Message}", e);
        }

        if (metadata is null || metadata.Version != FormatVersion || metadata.MessageLength is < 0 or >= LengthPlaceholder)
        {
            throw new CorruptEntryException($"entry {name} has metadata of an unknown version");
        }

        return (metadata, Magic.Length + line.WrittenCount + 1);
    }

    private static long Copy(Stream source, Stream destination, long limit)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            long total = 0;
            while (total < limit)
            {
                var n = source.Read(buffer, 0, (int)Math.Min(buffer.Length, limit - total));
                if (n == 0)
                {
                    if (limit != long.MaxValue)
                    {
                        throw new CorruptEntryException($"source ended after {total} of {limit} bytes");
                    }

                    break;
                }

                destination.Write(buffer, 0, n);
                total += n;
            }

            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void Flush(Stream stream)
    {
        if (stream is FileSystemStream fss)
        {
            fss.Flush(flushToDisk: true);
        }
        else
        {
            stream.Flush();
        }
    }

    private string NewName()
    {
        var micros = (_time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / 10;
        Span<byte> random = stackalloc byte[4];
        RandomNumberGenerator.Fill(random);
        return micros.ToString("D17", System.Globalization.CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(random);
    }

    private void SyncDirectory()
    {
        if (_realDisk)
        {
            DirectorySync.Sync(Directory);
        }
    }

    private void TryDelete(string path)
    {
        try
        {
            _fs.File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A directory at the name (review 46: held approve said 77 after approving): left, status names it.
        }
    }

    [GeneratedRegex("^[0-9]{17}-[0-9a-f]{8}$")]
    private static partial Regex EntryNameRegex();
}
