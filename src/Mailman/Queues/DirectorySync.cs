// fsync(2) on a directory, so a rename survives a power cut (Postfix does the same after a
// queue file rename). .NET cannot open a directory as a FileStream, hence libc.
using System.Runtime.InteropServices;

namespace Mailman.Queues;

internal static partial class DirectorySync
{
    private const int ORdOnly = 0;
    private const int ODirectory = 0x10000;

    /// <exception cref="IOException">The directory could not be synced.</exception>
    public static void Sync(string directory)
    {
        var fd = Open(directory, ORdOnly | ODirectory);
        if (fd < 0)
        {
            // The errno as HResult, as .NET's own IOExceptions carry it: EMFILE, EIO are transient.
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"open({directory}) failed: errno {errno}", errno);
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync({directory}) failed: errno {errno}", errno);
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
