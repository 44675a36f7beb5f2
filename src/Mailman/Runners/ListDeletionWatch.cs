// `lists delete` under a delivery: the command leaves var/deleted-lists/LIST; a mark newer than
// the delivery's entry means the list was deleted after the post was queued, and so does an older
// one while the list is not in the database (review 42: with the clock stepped back between the
// post and the delete, the mark looked older and the whole list got the post). The watch looks
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
    private readonly Func<bool> _listGone;
    private readonly DateTime _written;
    private readonly CancellationTokenSource _cancel;
    private readonly Timer _timer;
    private int _seen;

    /// <param name="listGone">Whether the list is not in the database now (asked only while a mark older than the entry is there).</param>
    public ListDeletionWatch(IFileSystem fs, string mark, string entryPath, Func<bool> listGone, CancellationToken stopping)
    {
        _fs = fs;
        _mark = mark;
        _listGone = listGone;
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
            return _fs.File.Exists(_mark) && (_fs.File.GetLastWriteTimeUtc(_mark) >= _written || _listGone());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException or Lists.DatabaseUnusableException)
        {
            return false; // unreadable mark: the next look
        }
    }
}
