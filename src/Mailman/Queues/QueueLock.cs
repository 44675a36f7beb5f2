// Keeps start-up recovery and the operator verbs that claim queue entries apart. Recovery puts
// every claimed entry back, assuming only a crashed run could have left it claimed; but `held
// approve`, `queue delete`, `lists delete` and `unshunt` claim entries too, and may run while the
// daemon starts. Such a verb holds var/queues.lock shared while it acts, recovery holds it
// exclusively (flock(2) through FileShare; the kernel drops it when a process dies, so a killed
// verb never blocks a start).
using Mailman.Instance;

namespace Mailman.Queues;

public static class QueueLock
{
    /// <summary>For a verb: shared with other verbs, excluded from recovery.</summary>
    /// <exception cref="IOException">Recovery held it for longer than <paramref name="wait"/>.</exception>
    public static IDisposable Shared(InstancePaths paths, TimeSpan wait) => Take(paths, "queues.lock", exclusive: false, wait, "a starting daemon recovering the queues");

    /// <summary>For start-up recovery: waits for the verbs acting now to finish.</summary>
    /// <exception cref="IOException">A verb held it for longer than <paramref name="wait"/>.</exception>
    public static IDisposable Exclusive(InstancePaths paths, TimeSpan wait) => Take(paths, "queues.lock", exclusive: true, wait, "an operator verb acting on the queues");

    /// <summary>
    /// For a moderation action (the `held` verbs, a moderator's reply, the expiry sweep): one at
    /// a time on the instance, each holding var/hold.lock exclusively from its claim of the post
    /// to its end. Whoever holds it knows that a post claimed in hold was left so by an action
    /// that died (review 66: a killed `held approve` left it claimed, and refused, until the next
    /// start).
    /// </summary>
    /// <exception cref="IOException">Another action held it for longer than <paramref name="wait"/>.</exception>
    public static IDisposable Moderation(InstancePaths paths, TimeSpan wait) => Take(paths, "hold.lock", exclusive: true, wait, "another moderation action");

    // heldBy: who holds it the other way when it cannot be had, for the message.
    private static FileStream Take(InstancePaths paths, string file, bool exclusive, TimeSpan wait, string heldBy)
    {
        paths.EnsureCreated();
        var path = Path.Combine(paths.VarDirectory, file);

        // A directory, a link or a FIFO there is no lock of ours: said at once (review 68: a
        // directory was taken for another action holding it, a dangling link waited 30 s).
        var info = new FileInfo(path);
        if (info.LinkTarget is not null || Directory.Exists(path) || (info.Exists && FileOwner.IsRegularFile(path) == false))
        {
            throw new IOException($"{path} is not a regular file (a directory, a link or a FIFO?): remove it, and it is made again");
        }

        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            try
            {
                // .NET on Linux: FileShare.None takes flock(LOCK_EX), a read-only open with sharing LOCK_SH.
                return exclusive
                    ? new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
                    : new FileStream(path, FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite);
            }
            catch (IOException) when (DateTime.UtcNow < deadline && File.Exists(path))
            {
                // Held the other way: a verb is acting, or recovery is running. Poll, it is short.
                Thread.Sleep(50);
            }
            catch (IOException e) when (File.Exists(path))
            {
                throw new IOException($"{path} is held by {heldBy}; try again ({e.Message})", e);
            }
        }
    }
}
