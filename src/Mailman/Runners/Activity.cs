// Counts work in progress across runners, so --exit-when-idle can tell "nothing to do" from
// "between two hops", and can sleep while work runs instead of checking on a timer.
namespace Mailman.Runners;

public sealed class Activity
{
    private int _busy;
    private long _generation;
    private TaskCompletionSource _quiet = NewQuiet();

    public bool IsBusy => Volatile.Read(ref _busy) > 0;

    /// <summary>Changes whenever any runner starts or finishes work.</summary>
    public long Generation => Interlocked.Read(ref _generation);

    public IDisposable Begin()
    {
        Interlocked.Increment(ref _busy);
        Interlocked.Increment(ref _generation);
        return new Scope(this);
    }

    /// <summary>Completes when no work is in progress (at once if none is now).</summary>
    public Task WhenQuietAsync(CancellationToken cancellationToken)
    {
        // The source first, then the count: work that ends in between has completed this source
        // or left the count at zero.
        var quiet = Volatile.Read(ref _quiet);
        return IsBusy ? quiet.Task.WaitAsync(cancellationToken) : Task.CompletedTask;
    }

    // Continuations run elsewhere: never on the delivery thread that ended the work.
    private static TaskCompletionSource NewQuiet() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class Scope(Activity owner) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                Interlocked.Increment(ref owner._generation);
                if (Interlocked.Decrement(ref owner._busy) == 0)
                {
                    Interlocked.Exchange(ref owner._quiet, NewQuiet()).TrySetResult();
                }
            }
        }
    }
}
