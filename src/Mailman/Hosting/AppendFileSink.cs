// A log file several processes append to: each event is one write(2) to a file opened with
// O_APPEND, which the kernel makes atomic against the other writers, so the daemon and the
// `held` verbs can both write vette-DATE.log while the daemon runs. (Serilog's file sink writes
// at its own offset and would overwrite the other's lines; its shared mode needs a named mutex,
// which Native AOT on Linux keeps within one process.) Named and rolled daily like the file
// sink (vette-20261128.log), and past `sizeLimit` bytes to the next of the day
// (vette-20261128_001.log, as Serilog's rollOnFileSizeLimit names them): every writer looks at the
// size of the file it appends to before each line and, past the limit, moves on to the day's
// newest file, or the one after it when that is full too, so the processes meet in the same
// file. The last `retained` files are kept.
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;

namespace Mailman.Hosting;

internal sealed partial class AppendFileSink(string directory, string prefix, ITextFormatter formatter, int retained, long sizeLimit) : ILogEventSink, IDisposable
{
    private const int OWrOnly = 0x1;
    private const int OCreat = 0x40;
    private const int OAppend = 0x400;
    private const int OCloExec = 0x80000;
    private const int Mode0640 = 0x1a0;

    private readonly Lock _gate = new();
    private int _fd = -1;
    private DateOnly _day;
    private string _path = "";
    private string _openError = ""; // why the file last failed to open (the errno of that open, not a later call's)
    private bool _torn; // the last line written was cut short

    /// <summary>Events that could not be written (the file could not be opened, or a write failed), and why the last one was not.</summary>
    public (int Count, string Why) Lost { get; private set; } = (0, "");

    public void Emit(LogEvent logEvent)
    {
        var text = new StringWriter(CultureInfo.InvariantCulture);
        formatter.Format(logEvent, text);
        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        lock (_gate)
        {
            var day = DateOnly.FromDateTime(logEvent.Timestamp.LocalDateTime);
            try
            {
                if (_fd < 0 || day != _day || Full(_path))
                {
                    Open(day);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Lost = (Lost.Count + 1, e.Message);
                return;
            }

            if (_fd < 0)
            {
                Lost = (Lost.Count + 1, _openError);
            }
            else
            {
                // A line cut short (the disk filled in the middle of it) is ended before the next
                // one, so that one is not glued to the fragment (review 101).
                var torn = _torn;
                if (Write(_fd, torn ? [(byte)'\n', .. bytes] : bytes, out var partial))
                {
                    _torn = false;
                }
                else
                {
                    _torn = torn || partial;
                    Lost = (Lost.Count + 1, $"{_path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
                }
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
        _torn = false; // the fragment stays in the file it was cut short in
        if (_fd >= 0)
        {
            _ = Close(_fd);
            _fd = -1;
        }

        Directory.CreateDirectory(directory);
        // The day's newest file, or the next one when it is full (older ones may have been deleted).
        var stem = $"{prefix}{day:yyyyMMdd}";
        var sequence = Directory.GetFiles(directory, stem + "*.log")
            .Select(f => Path.GetFileNameWithoutExtension(f)[stem.Length..])
            .Select(s => s.Length == 0 ? 0 : s.Length == 4 && s[0] == '_' && int.TryParse(s.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : -1)
            .DefaultIfEmpty(0).Max();
        string Named(int n) => Path.Combine(directory, n == 0 ? stem + ".log" : $"{stem}_{n:000}.log");
        var path = Named(Math.Max(sequence, 0));
        if (Full(path) && sequence < 999)
        {
            path = Named(sequence + 1);
        }

        _path = path;
        _fd = OpenFile(path, OWrOnly | OCreat | OAppend | OCloExec, Mode0640);
        _day = day;
        if (_fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            _openError = $"{path}: {Marshal.GetPInvokeErrorMessage(errno)}";
            Serilog.Debugging.SelfLog.WriteLine("cannot open {0}: errno {1}", path, errno);
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

    private bool Full(string path)
    {
        try
        {
            return new FileInfo(path) is { Exists: true } file && file.Length >= sizeLimit;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    // partial: some of the bytes were written before the failure.
    private static unsafe bool Write(int fd, byte[] bytes, out bool partial)
    {
        const int EIntr = 4;
        partial = false;
        fixed (byte* start = bytes)
        {
            var done = 0;
            while (done < bytes.Length)
            {
                var n = WriteFile(fd, start + done, bytes.Length - done);
                if (n < 0 && Marshal.GetLastPInvokeError() == EIntr)
                {
                    continue;
                }

                if (n <= 0)
                {
                    Serilog.Debugging.SelfLog.WriteLine("log write failed: errno {0}", Marshal.GetLastPInvokeError());
                    partial = done > 0;
                    return false;
                }

                done += (int)n;
            }
        }

        return true;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenFile(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint WriteFile(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
