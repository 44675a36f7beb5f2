namespace Mailman.Queues;

/// <summary>An entry file that cannot be read back (torn write, unknown version, bad metadata).</summary>
public sealed class CorruptEntryException : Exception
{
    public CorruptEntryException(string message)
        : base(message)
    {
    }

    public CorruptEntryException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
