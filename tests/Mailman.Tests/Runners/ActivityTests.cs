// Activity lets `serve --exit-when-idle` sleep while work runs (no 10 ms timer through a long
// delivery) and wake when the last piece of work ends.
using Mailman.Runners;

namespace Mailman.Tests.Runners;

public sealed class ActivityTests
{
    [Fact]
    public void Quiet_at_once_when_nothing_runs()
    {
        Assert.True(new Activity().WhenQuietAsync(CancellationToken.None).IsCompleted);
    }

    [Fact]
    public async Task Quiet_only_when_the_last_of_several_pieces_of_work_ends()
    {
        var activity = new Activity();
        var first = activity.Begin();
        var second = activity.Begin();
        var quiet = activity.WhenQuietAsync(CancellationToken.None);

        first.Dispose();
        first.Dispose(); // twice counts once
        Assert.False(quiet.IsCompleted);
        Assert.True(activity.IsBusy);

        second.Dispose();
        await quiet.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(activity.IsBusy);
    }

    [Fact]
    public async Task Work_that_starts_again_is_waited_for_again()
    {
        var activity = new Activity();
        activity.Begin().Dispose();
        using var again = activity.Begin();
        var quiet = activity.WhenQuietAsync(CancellationToken.None);
        Assert.False(quiet.IsCompleted);

        using var stop = new CancellationTokenSource();
        var cancelled = activity.WhenQuietAsync(stop.Token);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.False(quiet.IsCompleted);
    }
}
