// `lists delete` under a delivery: the command leaves var/deleted-lists/LIST; a mark newer than
// the delivery's entry means the list was deleted after the post was queued. The watch looks
// once a second on the system clock (as the relay backoff: a test's fake clock never moves) and
// at once, and cancels its token on the first sighting: the delivery stops as at a shutdown.
// A list made again removes the mark (`lists create`), so its own posts are never stopped.
using System.IO.Abstractions;

namespace Mailman.Runners;

internal sealed class ListDeletionWatch : IDisposable
{
    /// <summary>How often a delivery under way looks for its list's deletion mark.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly IFileSystem _fs;
    private readonly string _mark;
    private readonly DateTime _written;
    private readonly CancellationTokenSource _cancel;
    private readonly Timer _timer;
    private int _seen;

    public ListDeletionWatch(IFileSystem fs, string mark, string entryPath, CancellationToken stopping)
    {
        _fs = fs;
        _mark = mark;
        _written = fs.File.GetLastWriteTimeUtc(entryPath);
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        _timer = new Timer(_ => Look(), null, TimeSpan.Zero, Interval);
    }

    /// <summary>Cancelled when the daemon stops or the list is seen deleted.</summary>
    public CancellationToken Token => _cancel.Token;

    /// <summary>Whether the list was deleted after the entry was written: seen by the watch, or by a look now.</summary>
    public bool Deleted => Volatile.Read(ref _seen) == 1 || Marked();

    public void Dispose()
    {
        _timer.Dispose();
        _cancel.Dispose();
    }

    private void Look()
    {
        try
        {
            if (Marked() && Interlocked.Exchange(ref _seen, 1) == 0)
            {
                _cancel.Cancel();
            }
        }
        catch (ObjectDisposedException)
        {
            // The delivery is over: nothing to stop.
        }
    }

    private bool Marked()
    {
        try
        {
            return _fs.File.Exists(_mark) && _fs.File.GetLastWriteTimeUtc(_mark) >= _written;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // unreadable mark: the next look
        }
    }
}
