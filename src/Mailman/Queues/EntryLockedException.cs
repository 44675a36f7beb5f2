namespace Mailman.Queues;

/// <summary>
/// An entry another process holds locked past the instant its writer takes between rename and
/// close: a writer stopped or starved, or a tool holding the file (review 122: one such entry
/// paused its whole queue while the lock lasted). The entry is intact; the runner puts it back,
/// passes over it for a while (<see cref="Switchboard.PassOver"/>) and goes on with the others.
/// </summary>
public sealed class EntryLockedException : IOException
{
    public EntryLockedException(string message, Exception? inner)
        : base(message, inner)
    {
    }
}
