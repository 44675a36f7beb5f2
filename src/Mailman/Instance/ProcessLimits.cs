// The limits the machine puts on this process that the daemon runs into under load: open files
// (an LMTP session, an SMTP connection, a queue file each, and the runtime's own). .NET raises the
// soft limit to the hard one at start; what is left is what the operator or the unit set.
using System.Runtime.InteropServices;

namespace Mailman.Instance;

public static partial class ProcessLimits
{
    /// <summary>Below this many open files, a busy daemon runs out (review 102: at 256, LMTP bursts shunted posts and the runtime died).</summary>
    public const int RecommendedOpenFiles = 1024;

    /// <summary>The soft limit on open files (RLIMIT_NOFILE), or null when it cannot be read. Needs no file descriptor.</summary>
    public static long? OpenFiles()
    {
        try
        {
            return GetRLimit(RlimitNoFile, out var limit) == 0 ? (long)Math.Min(limit.Current, long.MaxValue) : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>" (the open-files limit is N: ...)" when it is below <see cref="RecommendedOpenFiles"/>; "" otherwise.</summary>
    public static string LowOpenFilesHint()
        => OpenFiles() is { } n && n < RecommendedOpenFiles
            ? $" (the open-files limit is {n}: raise it to {RecommendedOpenFiles} or more, ulimit -n or systemd's LimitNOFILE=)"
            : "";

    private const int RlimitNoFile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit")]
    private static partial int GetRLimit(int resource, out RLimit limit);
}
