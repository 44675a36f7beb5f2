// A log file several processes append to: each event is one write(2) to a file opened with
// O_APPEND, which the kernel makes atomic against the other writers, so the daemon and the
// `held` verbs can both write vette-DATE.log while the daemon runs. (Serilog's file sink writes
// at its own offset and would overwrite the other's lines; its shared mode needs a named mutex,
// which Native AOT on Linux keeps within one process.) Named and rolled daily like the file
// sink (vette-20261128.log), the last `retained` files kept.
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;

namespace Mailman.Hosting;

internal sealed partial class AppendFileSink(string directory, string prefix, ITextFormatter formatter, int retained) : ILogEventSink, IDisposable
{
    private const int OWrOnly = 0x1;
    private const int OCreat = 0x40;
    private const int OAppend = 0x400;
    private const int OCloExec = 0x80000;
    private const int Mode0640 = 0x1a0;

    private readonly Lock _gate = new();
    private int _fd = -1;
    private DateOnly _day;

    public void Emit(LogEvent logEvent)
    {
        var text = new StringWriter(CultureInfo.InvariantCulture);
        formatter.Format(logEvent, text);
        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        lock (_gate)
        {
            var day = DateOnly.FromDateTime(logEvent.Timestamp.LocalDateTime);
            if (_fd < 0 || day != _day)
            {
                Open(day);
            }

            if (_fd >= 0)
            {
                Write(_fd, bytes);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_fd >= 0)
            {
                _ = Close(_fd);
                _fd = -1;
            }
        }
    }

    private void Open(DateOnly day)
    {
        if (_fd >= 0)
        {
            _ = Close(_fd);
            _fd = -1;
        }

        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, $"{prefix}{day:yyyyMMdd}.log");
        _fd = OpenFile(path, OWrOnly | OCreat | OAppend | OCloExec, Mode0640);
        _day = day;
        if (_fd < 0)
        {
            Serilog.Debugging.SelfLog.WriteLine("cannot open {0}: errno {1}", path, Marshal.GetLastPInvokeError());
            return;
        }

        foreach (var old in Directory.GetFiles(directory, prefix + "*.log").Order(StringComparer.Ordinal).Reverse().Skip(retained))
        {
            try
            {
                File.Delete(old);
            }
            catch (IOException)
            {
            }
        }
    }

    private static unsafe void Write(int fd, byte[] bytes)
    {
        fixed (byte* start = bytes)
        {
            var done = 0;
            while (done < bytes.Length)
            {
                var n = WriteFile(fd, start + done, bytes.Length - done);
                if (n <= 0)
                {
                    Serilog.Debugging.SelfLog.WriteLine("log write failed: errno {0}", Marshal.GetLastPInvokeError());
                    return;
                }

                done += (int)n;
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenFile(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint WriteFile(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
