// Wakes a runner the moment something is enqueued in its queue by this process, so queue hops
// cost no polling delay. Entries written by other processes (inject) are found by the poll.
namespace Mailman.Queues;

/// <summary>An auto-reset signal: many Set calls before one wait wake it once.</summary>
public sealed class QueueSignal : IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(0, 1);

    public void Dispose() => _semaphore.Dispose();

    public void Set()
    {
        try
        {
            _semaphore.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled.
        }
    }

    /// <returns>True when signalled, false on timeout.</returns>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
        => _semaphore.WaitAsync(timeout, cancellationToken);
}
