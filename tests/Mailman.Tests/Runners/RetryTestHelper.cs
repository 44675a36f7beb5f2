using System.IO.Abstractions;
using Mailman.Queues;
using Mailman.TestSupport;

namespace Mailman.Tests.Runners;

internal static class RetryTestHelper
{
    /// <summary>Rewrites every retry entry with NotBefore in the past, as the passing of time would.</summary>
    public static void MakeDue(TempInstance instance) => SetNotBefore(instance, DateTimeOffset.UnixEpoch);

    /// <summary>Sets every waiting retry entry's next attempt to <paramref name="at"/>.</summary>
    public static void SetNotBefore(TempInstance instance, DateTimeOffset at) => Rewrite(instance, m => m.NotBefore = at);

    /// <summary>Changes the metadata of every waiting retry entry.</summary>
    public static void Rewrite(TempInstance instance, Action<EntryMetadata> change)
    {
        var retry = new Switchboard(new FileSystem(), instance.QueueDir(QueueSet.Retry), QueueSet.Retry, TimeProvider.System);
        foreach (var name in retry.Pending())
        {
            var claim = retry.Claim(name)!;
            var metadata = retry.LoadHead(claim).Metadata.Clone();
            change(metadata);
            retry.Rewrite(claim, metadata);
        }
    }
}
