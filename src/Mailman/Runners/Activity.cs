// Counts work in progress across runners, so --exit-when-idle can tell "nothing to do" from
// "between two hops".
namespace Mailman.Runners;

public sealed class Activity
{
    private int _busy;
    private long _generation;

    public bool IsBusy => Volatile.Read(ref _busy) > 0;

    /// <summary>Changes whenever any runner starts or finishes work.</summary>
    public long Generation => Interlocked.Read(ref _generation);

    public IDisposable Begin()
    {
        Interlocked.Increment(ref _busy);
        Interlocked.Increment(ref _generation);
        return new Scope(this);
    }

    private sealed class Scope(Activity owner) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                Interlocked.Increment(ref owner._generation);
                Interlocked.Decrement(ref owner._busy);
            }
        }
    }
}
