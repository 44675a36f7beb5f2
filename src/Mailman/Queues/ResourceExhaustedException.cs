namespace Mailman.Queues;

/// <summary>
/// The process ran out of something the machine sets a limit on, not the entry's fault: no thread
/// could be started (a thread or address-space limit, memory short), say. The entry goes back to
/// its queue and the runner pauses until it can go on (review 102: under a low limit every
/// delivery was shunted, and a shunted delivery's workers already started kept sending).
/// </summary>
public sealed class ResourceExhaustedException(string message, Exception inner) : IOException(message, inner);
