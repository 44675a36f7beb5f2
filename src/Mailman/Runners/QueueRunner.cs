// The base loop of every runner (Mailman's Runner): claim the oldest entry, process it, and
// never die. An entry that cannot be read goes to bad, one this user may not read to shunt
// (with its owner, mode and the fix in the log); an entry whose processing throws goes to shunt
// with the error beside it. A full disk or a locked database is not the entry's fault: the
// entry goes back to its queue and the runner pauses, retrying with backoff until the
// condition clears. Nothing is deleted that was not processed.
using Mailman.Instance;
using Mailman.Lists;
using Mailman.Queues;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mailman.Runners;

public abstract class QueueRunner(QueueSet queues, string queueName, Activity activity, MailmanOptions options, TimeProvider time, ILogger logger)
    : BackgroundService
{
    private static readonly TimeSpan MaxPause = TimeSpan.FromMinutes(1);
    private readonly HashSet<string> _warnedLocked = new(StringComparer.Ordinal);
    private TimeSpan _pause;
    private string? _pausedBecause;
    private readonly List<ClaimedEntry> _stranded = [];

    protected QueueSet Queues { get; } = queues;

    /// <summary>Work in progress, for --exit-when-idle.</summary>
    protected Activity Activity { get; } = activity;

    protected Switchboard Queue { get; } = queues[queueName];

    protected ILogger Log { get; } = logger;

    protected TimeProvider Time { get; } = time;

    protected MailmanOptions Options { get; } = options;

    protected string RunnerName => GetType().Name;

    /// <summary>Why the runner is paused (a full disk, a locked database), or null while it works.</summary>
    public string? PausedBecause => _pausedBecause;

    /// <summary>Processes one claimed entry; must finish, move or unclaim it.</summary>
    protected abstract void Process(LoadedEntry entry, CancellationToken stoppingToken);

    /// <summary>
    /// Looks at an entry before its message is loaded; returns true when it dealt with the entry
    /// already (a post over the size limit is held without being read into memory).
    /// </summary>
    protected virtual bool ProcessHead(EntryHead head, CancellationToken stoppingToken) => false;

    /// <summary>
    /// Entries claimed per round for <see cref="ProcessBatch"/>; 0 (the default) claims one at a
    /// time for <see cref="ProcessHead"/> and <see cref="Process"/>.
    /// </summary>
    protected virtual int BatchSize => 0;

    /// <summary>
    /// Processes claimed entries together (one database transaction for all, say); must finish or
    /// move each. When it throws, what it did not finish is processed again one entry at a
    /// time, so only the entry at fault is shunted.
    /// </summary>
    protected virtual void ProcessBatch(IReadOnlyList<EntryHead> heads, CancellationToken stoppingToken)
        => throw new NotSupportedException($"{RunnerName} does not process batches");

    /// <summary>Claims the next entry to process: the oldest eligible one, unless a runner orders them otherwise.</summary>
    protected virtual ClaimedEntry? ClaimNext() => Queue.TryClaim(IsEligible);

    /// <summary>Which waiting entries may be claimed now (retry: only those due).</summary>
    protected virtual bool IsEligible(string name) => true;

    /// <summary>
    /// Whether other processes write this queue as a matter of course (`inject` into in): the
    /// runner then watches its directory (inotify) and wakes the moment an entry is renamed
    /// into place, instead of at the next poll. Entries this process enqueues wake it anyway.
    /// </summary>
    protected virtual bool WrittenByOtherProcesses => false;

    /// <summary>
    /// True for failures of the machine, not of the entry: a full disk or quota, an I/O error, a
    /// busy, full or read-only database. The entry is put back and the runner retries later.
    /// </summary>
    public static bool IsTransient(Exception e) => e switch
    {
        IOException io when io.GetType() == typeof(IOException) && io.HResult is 28 or 122 or 5 or 30 or 24 or 23 => true, // ENOSPC, EDQUOT, EIO, EROFS, EMFILE, ENFILE
        ResourceExhaustedException => true,
        // An assembly the runtime could not open (the open-files or address-space limit reached,
        // review 102): the machine's state, not the entry's.
        FileLoadException => true,
        FileNotFoundException f when f.FileName?.Contains(", Version=", StringComparison.Ordinal) == true => true,
        SqliteException sql => sql.SqliteErrorCode is 5 or 6 or 10 or 13, // BUSY, LOCKED, IOERR, FULL
        Lists.DatabaseReadOnlyException => true, // a chmod or a read-only remount: mended by the operator, not the entry's fault
        Lists.DatabaseUnusableException => true, // missing (var/ not mounted), damaged: as above
        _ when e.InnerException is { } inner => IsTransient(inner),
        _ => false,
    };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        Queue.ScanInterval = Options.Queues.PollInterval;
        using var watcher = WrittenByOtherProcesses ? Watch() : null;
        Log.LogInformation("{Runner} started on queue {Queue}", RunnerName, Queue.Name);
        while (!stoppingToken.IsCancellationRequested)
        {
            var worked = false;
            try
            {
                worked = RunOnce(stoppingToken);
            }
            catch (Exception e) when (IsTransient(e))
            {
                Pause(e);
            }
            catch (Exception e)
            {
                // The loop must not die: an error outside any one entry (a queue directory this
                // user may not write, say) is logged and retried after a pause.
                Pause(e);
                if (e is DirectoryNotFoundException)
                {
                    RecreateMissingQueues();
                }
            }

            try
            {
                if (_pausedBecause is not null)
                {
                    await Task.Delay(_pause, Time, stoppingToken);
                }
                else if (!worked)
                {
                    await Queue.Signal!.WaitAsync(Options.Queues.PollInterval, stoppingToken);
                }
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        Log.LogInformation("{Runner} stopped", RunnerName);
    }

    // A running list server's latency per post: `inject` renames NAME.tmp to NAME.msg, and the
    // poll would find it up to PollInterval later. The poll stays the fallback: a watcher can
    // overflow, or fail to start (the machine's inotify instances are used up), which is logged.
    private FileSystemWatcher? Watch()
    {
        FileSystemWatcher? watcher = null;
        try
        {
            watcher = new FileSystemWatcher(Queue.Directory) { NotifyFilter = NotifyFilters.FileName, IncludeSubdirectories = false };
            watcher.Renamed += (_, e) =>
            {
                if (e.Name?.EndsWith(Switchboard.EntryExtension, StringComparison.Ordinal) == true)
                {
                    Queue.Signal?.Set();
                }
            };
            watcher.Error += (_, _) => Queue.Signal?.Set();
            watcher.EnableRaisingEvents = true;
            return watcher;
        }
        catch (Exception e) when (e is IOException or ArgumentException or PlatformNotSupportedException or UnauthorizedAccessException or OutOfMemoryException)
        {
            // OutOfMemoryException: its thread could not be started (review 102: under an
            // address-space limit the runner died with it, and the host stopped).
            watcher?.Dispose();
            Log.LogWarning("{Runner} cannot watch {Queue} ({Error}); entries from other processes are found by the poll, every {Interval}",
                RunnerName, Queue.Directory, e.Message, Options.Queues.PollInterval);
            return null;
        }
    }

    /// <summary>Claims and processes one entry; false when there was none.</summary>
    /// <exception cref="Exception">A transient failure (<see cref="IsTransient"/>): the entry is back in its queue.</exception>
    public bool RunOnce(CancellationToken stoppingToken)
    {
        PutBackStranded();
        if (BatchSize > 0)
        {
            return RunBatch(stoppingToken);
        }

        ClaimedEntry? claim;
        try
        {
            claim = ClaimNext();
        }
        catch (EntryBlockedException e)
        {
            SetAsideBlocked(e);
            return true;
        }

        if (claim is null)
        {
            Resume();
            Idle();
            return false;
        }

        using var busy = Activity.Begin();
        EntryHead head;
        try
        {
            head = Queue.LoadHead(claim);
        }
        catch (CorruptEntryException e)
        {
            Log.LogError("{Runner}: entry {QueueEntry} in {Queue} is unreadable, moved to bad: {Error}", RunnerName, claim.Name, Queue.Name, e.Message);
            SetAside(claim, QueueSet.Bad, e.Message);
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            SetAsideForeign(claim);
            return true;
        }
        catch (EntryLockedException e)
        {
            PassOverLocked(claim, e);
            return true;
        }
        catch (Exception)
        {
            // Transient, or nothing known: the claim goes back, and the loop pauses with the
            // error (review 102: one not known stayed claimed until the next start).
            PutBack(claim);
            throw;
        }

        ReadAgain(claim);
        Queues.SettleUpstream(claim, head.Metadata);
        try
        {
            if (!ProcessHead(head, stoppingToken))
            {
                Process(Queue.Load(claim), stoppingToken);
            }
        }
        catch (Exception e) when (IsTransient(e))
        {
            // Whatever the entry got to write before the failure is idempotent by name; the
            // claim goes back whole and is processed again once the condition clears.
            PutBack(claim);
            throw;
        }
        catch (EntryLockedException e)
        {
            PassOverLocked(claim, e);
            return true;
        }
        catch (CorruptEntryException e)
        {
            Log.LogError("{Runner}: entry {QueueEntry} in {Queue} is unreadable, moved to bad: {Error}", RunnerName, claim.Name, Queue.Name, e.Message);
            SetAside(claim, QueueSet.Bad, e.Message);
        }
        catch (Exception e)
        {
            Shunt(head, e);
        }

        Resume();
        return true;
    }

    // Claims up to BatchSize entries, then processes them together. A transient failure puts back
    // every claim not finished; any other failure replays the unfinished ones alone.
    private bool RunBatch(CancellationToken stoppingToken)
    {
        var heads = new List<EntryHead>(BatchSize);
        IDisposable? busy = null;
        try
        {
            while (heads.Count < BatchSize)
            {
                ClaimedEntry? claim;
                try
                {
                    claim = Queue.TryClaim(IsEligible);
                }
                catch (EntryBlockedException e)
                {
                    busy ??= Activity.Begin();
                    try
                    {
                        SetAsideBlocked(e);
                    }
                    catch
                    {
                        UnclaimUnfinished(heads);
                        throw;
                    }

                    continue;
                }

                if (claim is null)
                {
                    break;
                }

                busy ??= Activity.Begin();
                try
                {
                    var head = Queue.LoadHead(claim);
                    ReadAgain(claim);
                    Queues.SettleUpstream(claim, head.Metadata);
                    heads.Add(head);
                }
                catch (CorruptEntryException e)
                {
                    Log.LogError("{Runner}: entry {QueueEntry} in {Queue} is unreadable, moved to bad: {Error}", RunnerName, claim.Name, Queue.Name, e.Message);
                    SetAside(claim, QueueSet.Bad, e.Message);
                }
                catch (UnauthorizedAccessException)
                {
                    SetAsideForeign(claim);
                }
                catch (EntryLockedException e)
                {
                    try
                    {
                        PassOverLocked(claim, e);
                    }
                    catch
                    {
                        UnclaimUnfinished(heads);
                        throw;
                    }
                }
                catch (Exception)
                {
                    PutBack(claim);
                    UnclaimUnfinished(heads);
                    throw;
                }
            }

            if (busy is null)
            {
                Resume();
                Idle();
                return false;
            }

            if (heads.Count > 0)
            {
                try
                {
                    ProcessBatch(heads, stoppingToken);
                }
                catch (Exception e) when (IsTransient(e))
                {
                    UnclaimUnfinished(heads);
                    throw;
                }
                catch (Exception e) when (heads.Count > 1)
                {
                    Log.LogWarning("{Runner}: a batch of {Count} entries failed ({Error}); processing them one at a time", RunnerName, heads.Count, e.Message);
                    for (var i = 0; i < heads.Count; i++)
                    {
                        if (!File.Exists(heads[i].Claim.Path))
                        {
                            continue;
                        }

                        try
                        {
                            ProcessBatch([heads[i]], stoppingToken);
                        }
                        catch (Exception again) when (IsTransient(again))
                        {
                            UnclaimUnfinished(heads);
                            throw;
                        }
                        catch (CorruptEntryException corrupt)
                        {
                            Log.LogError("{Runner}: entry {QueueEntry} in {Queue} is unreadable, moved to bad: {Error}", RunnerName, heads[i].Claim.Name, Queue.Name, corrupt.Message);
                            SetAside(heads[i].Claim, QueueSet.Bad, corrupt.Message);
                        }
                        catch (Exception single)
                        {
                            Shunt(heads[i], single);
                        }
                    }
                }
                catch (CorruptEntryException e)
                {
                    Log.LogError("{Runner}: entry {QueueEntry} in {Queue} is unreadable, moved to bad: {Error}", RunnerName, heads[0].Claim.Name, Queue.Name, e.Message);
                    SetAside(heads[0].Claim, QueueSet.Bad, e.Message);
                }
                catch (Exception e)
                {
                    Shunt(heads[0], e);
                }
            }
        }
        finally
        {
            busy?.Dispose();
        }

        Resume();
        return true;
    }

    // Puts a claim back in its queue. When even that rename fails (a file system gone read-only
    // or failing), the claim is remembered and put back before the next claim, so a delivered or
    // half-done entry does not stay claimed until a restart (review 28).
    private void PutBack(ClaimedEntry claim)
    {
        try
        {
            UnclaimOrSetAside(claim);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _stranded.Add(claim);
            throw;
        }
    }

    // Puts a claim back; when something no queue wrote stands at its waiting name (a directory
    // at NAME.msg: review 46), sets it aside in shunt instead of leaving it claimed.
    private void UnclaimOrSetAside(ClaimedEntry claim)
    {
        try
        {
            Queue.Unclaim(claim);
        }
        catch (EntryBlockedException e)
        {
            LogBlocked(claim.Name, Queue.SetAside(claim, Queues[QueueSet.Shunt], e.Message), e.Message);
        }
    }

    // A waiting entry that cannot be claimed: to shunt, so the entries behind it go on (review 46:
    // one directory at NAME.bak paused the whole queue for good).
    private void SetAsideBlocked(EntryBlockedException e)
    {
        if (Queue.SetAsideWaiting(e.Name, Queues[QueueSet.Shunt], e.Message) is { } aside)
        {
            LogBlocked(e.Name, aside, e.Message);
        }
    }

    // Under the name it has there (review 48: the log named one no queue held when shunt's was taken).
    private void LogBlocked(string name, string aside, string why)
        => Log.LogError("{Runner}: entry {QueueEntry} in {Queue} set aside in shunt{AsName}: {Error}; move that away, then `mailman unshunt`",
            RunnerName, name, Queue.Name, aside == name ? "" : " as " + aside, why);

    private void PutBackStranded()
    {
        for (var i = _stranded.Count - 1; i >= 0; i--)
        {
            var claim = _stranded[i];
            if (File.Exists(claim.Path))
            {
                UnclaimOrSetAside(claim); // failing again: the loop pauses, as for any hop that cannot be written
                Log.LogInformation("{Runner}: entry {QueueEntry} put back in {Queue} now that the queue can be written", RunnerName, claim.Name, Queue.Name);
            }

            _stranded.RemoveAt(i);
        }
    }

    private void UnclaimUnfinished(List<EntryHead> heads)
    {
        foreach (var head in heads)
        {
            if (File.Exists(head.Claim.Path))
            {
                PutBack(head.Claim);
            }
        }
    }

    /// <summary>The list an entry names; a name that is not a safe LIST@HOST never goes further.</summary>
    /// <exception cref="InvalidOperationException">The entry names an invalid list.</exception>
    protected static Lists.ListName ListOf(EntryMetadata metadata)
        => Lists.ListName.TryParse(metadata.List, out var name, out var error)
            ? name
            : throw new InvalidOperationException($"the entry names an invalid list: {error}");

    /// <summary>
    /// The entry that brought the same message to <paramref name="list"/> as <paramref name="kind"/>
    /// before this one (ListStore.SeenBefore: by its Message-ID, or by what <paramref name="open"/>
    /// reads of it when it has no usable one), with the key; or null, this one then recorded. A
    /// database that cannot be written (a full or read-only disk) checks nothing: the mail goes
    /// on as it did before duplicates were looked for, said in a line.
    /// </summary>
    protected (SeenMessage First, SeenKey Key)? Duplicate(ListStore store, ListName list, string kind, string? messageId, Func<Stream> open, string entry)
    {
        if (SeenKey.Of(messageId, open) is not { } key)
        {
            return null;
        }

        try
        {
            return store.SeenBefore(list, kind, key, entry, Time.GetUtcNow()) is { } first ? (first, key) : null;
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 8 or 10 or 13)
        {
            Log.LogWarning("{Runner}: entry {QueueEntry} (Message-Id {MessageId}) to {ListId} not checked for duplicates: {Error}", RunnerName, entry, key.Shown, list.Fqdn, e.Message);
            return null;
        }
    }

    /// <summary>Moves an entry to shunt with the error recorded beside it (its checkpoint goes with it).</summary>
    protected void Shunt(EntryHead entry, Exception error)
    {
        if (error is DirectoryNotFoundException && RecreateMissingQueues())
        {
            // Not the entry's fault: it goes back and is processed again now the queues are there.
            if (File.Exists(entry.Claim.Path))
            {
                PutBack(entry.Claim);
            }

            return;
        }

        if (error is NoSuchListException)
        {
            // Not a fault of ours (review 109: it read as a crash, with a stack trace): the list
            // was deleted, or the database restored from a backup taken before it was made.
            var missing = SetAside(entry.Claim, QueueSet.Shunt, error.Message);
            Log.LogError("{Runner}: entry {QueueEntry} (Message-Id {MessageId}) shunted{AsName}: {Error} (deleted, or the database restored from a backup taken before it was made): `mailman lists create {ListId}` and `mailman unshunt`, or `mailman queue delete {QueueEntry} --yes`",
                RunnerName, entry.Claim.Name, entry.Metadata.MessageIdForLog, missing == entry.Claim.Name ? "" : " as " + missing, error.Message, entry.Metadata.List, missing);
            return;
        }

        var message = error.GetType().Name + ": " + error.Message;
        var aside = SetAside(entry.Claim, QueueSet.Shunt, message);
        Log.LogError(error, "{Runner}: entry {QueueEntry} of {ListId} (Message-Id {MessageId}) shunted{AsName}: {Error}",
            RunnerName, entry.Claim.Name, entry.Metadata.List, entry.Metadata.MessageId, aside == entry.Claim.Name ? "" : " as " + aside, message);
    }

    // queues/ or a queue removed under the running daemon (review 28): every claim and hop into it
    // failed until a restart, and what inject took meanwhile waited. Made again (umask 077), with
    // one line; true when any was missing.
    private bool RecreateMissingQueues()
    {
        var made = new List<string>();
        try
        {
            foreach (var queue in Queues.All)
            {
                if (!System.IO.Directory.Exists(queue.Directory))
                {
                    System.IO.Directory.CreateDirectory(queue.Directory);
                    made.Add(queue.Name);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.LogError("{Runner}: a queue directory is missing and cannot be made again: {Error}", RunnerName, e.Message);
            return false;
        }

        if (made.Count > 0)
        {
            Log.LogWarning("{Runner}: queue directories {Queues} were missing (removed while the daemon ran?): made again", RunnerName, string.Join(", ", made));
        }

        return made.Count > 0;
    }

    private void SetAsideForeign(ClaimedEntry claim)
    {
        var owner = FileOwner.Describe(claim.Path);
        var me = FileOwner.UserName(FileOwner.EffectiveUid);
        var error = $"not readable by {me} ({owner})";
        SetAside(claim, QueueSet.Shunt, error);
        var path = Queues[QueueSet.Shunt].PathOf(claim.Name, Switchboard.EntryExtension);
        if (FileOwner.Uid(path) == FileOwner.EffectiveUid)
        {
            // Ours, but its mode keeps us out (review 28: the advice was to chown it to ourselves).
            Log.LogError("{Runner}: entry {QueueEntry} in {Queue} is {Owner} and cannot be read by {User}; set aside in shunt. Fix: chmod 600 {Path}, then `mailman unshunt`",
                RunnerName, claim.Name, Queue.Name, owner, me, path);
            return;
        }

        Log.LogError("{Runner}: entry {QueueEntry} in {Queue} is {Owner} and cannot be read by {User}; set aside in shunt. Fix: chown {User} {Path} (or run every mailman verb as {User}), then `mailman unshunt`",
            RunnerName, claim.Name, Queue.Name, owner, me, me, path, me);
    }

    // Setting aside writes a small state file; when it cannot (a full disk) the entry goes back
    // to its queue instead and the runner pauses, as for any hop that cannot be written.
    private string SetAside(ClaimedEntry claim, string target, string error)
    {
        try
        {
            return Queue.SetAside(claim, Queues[target], error);
        }
        catch
        {
            // Not set aside (its state could not be written): back in its queue, never stuck
            // claimed; the loop pauses and tries again.
            PutBack(claim);
            throw;
        }
    }

    // An entry another process holds locked is put back and passed over for a while: the queue
    // goes on with the others (review 122: it paused the whole queue while the lock lasted). Said
    // once per episode, with its id; its end is said when the entry is read again.
    private void PassOverLocked(ClaimedEntry claim, EntryLockedException e)
    {
        PutBack(claim);
        Queue.PassOver(claim.Name, Switchboard.LockedEntryWait);
        if (_warnedLocked.Add(claim.Name))
        {
            Log.LogWarning("{Runner}: entry {QueueEntry} in {Queue} cannot be read now: {Error}; the others go on, it is tried again every {Seconds:F0}s",
                RunnerName, claim.Name, Queue.Name, e.Message, Switchboard.LockedEntryWait.TotalSeconds);
        }
    }

    // The end of a locked episode (the warning above said it was passed over).
    private void ReadAgain(ClaimedEntry claim)
    {
        if (_warnedLocked.Remove(claim.Name))
        {
            Log.LogInformation("{Runner}: entry {QueueEntry} in {Queue} is no longer locked; it goes on", RunnerName, claim.Name, Queue.Name);
        }
    }

    private void Pause(Exception e)
    {
        var reason = e.Message;
        _pause = _pause == TimeSpan.Zero ? TimeSpan.FromSeconds(1) : TimeSpan.FromTicks(Math.Min(_pause.Ticks * 2, MaxPause.Ticks));
        if (_pausedBecause != reason)
        {
            // One line per episode, not one per retry.
            Log.LogError(e, "{Runner} paused on queue {Queue}: {Error}; retrying every {Seconds:F0}s at most until it clears", RunnerName, Queue.Name, reason, MaxPause.TotalSeconds);
        }

        _pausedBecause = reason;
    }

    /// <summary>Called when the queue had nothing to claim.</summary>
    protected virtual void Idle()
    {
    }

    private void Resume()
    {
        if (_pausedBecause is not null)
        {
            Log.LogInformation("{Runner} resumed on queue {Queue} after: {Error}", RunnerName, Queue.Name, _pausedBecause);
        }

        _pausedBecause = null;
        _pause = TimeSpan.Zero;
    }
}
