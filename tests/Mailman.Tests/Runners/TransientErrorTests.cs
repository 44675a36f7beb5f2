// What a queue runner waits out (the entry goes back, the runner pauses) rather than shunting
// the entry: the machine's state, not the entry's (review 102: under a low open-files limit 221
// posts were shunted, and under an address-space limit every delivery).
using Mailman.Queues;
using Mailman.Runners;

namespace Mailman.Tests.Runners;

#pragma warning disable CA2201 // the exceptions the runtime throws, made here to be classified

public sealed class TransientErrorTests
{
    public static TheoryData<string, Exception, bool> Cases() => new()
    {
        { "ENOSPC", new IOException("No space left on device", 28), true },
        { "EMFILE", new IOException("Too many open files", 24), true },
        { "ENFILE", new IOException("Too many open files in system", 23), true },
        { "no thread", new ResourceExhaustedException("no thread could be started", new OutOfMemoryException()), true },
        { "an assembly not opened", new FileNotFoundException("Could not load file or assembly 'System.Diagnostics.Process, Version=10.0.0.0, Culture=neutral'", "System.Diagnostics.Process, Version=10.0.0.0, Culture=neutral"), true },
        { "an assembly not loaded", new FileLoadException("Could not load file or assembly"), true },
        { "wrapped, as a failed delivery is", new InvalidOperationException("delivery stopped by an unexpected error", new ResourceExhaustedException("no thread", new OutOfMemoryException())), true },
        { "a file of the entry gone", new FileNotFoundException("Could not find file", "/var/lib/mailman/queues/out/x.msg"), false },
        { "EACCES-like", new IOException("Permission denied", 13), false },
        { "memory", new OutOfMemoryException(), false },
        { "a bug", new InvalidOperationException("the bug"), false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Conditions_of_the_machine_are_waited_out_and_faults_of_the_entry_are_not(string what, Exception e, bool transient)
        => Assert.True(QueueRunner.IsTransient(e) == transient, what);
}
