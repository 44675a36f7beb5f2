namespace Mailman.Queues;

/// <summary>
/// An entry cannot be renamed to one of its names (claimed, waiting, set aside) because something
/// no queue wrote stands there: a directory, a symbolic link, a FIFO or device (review 46: one
/// directory at NAME.bak stopped its whole queue; one at NAME.msg beside a claim stopped every
/// start). The entry is intact; it goes to shunt, and `mailman unshunt` puts it back once that
/// thing is moved away.
/// </summary>
public sealed class EntryBlockedException : IOException
{
    public EntryBlockedException(string name, string message)
        : base(message)
    {
        Name = name;
    }

    /// <summary>The entry's name.</summary>
    public string Name { get; }
}
