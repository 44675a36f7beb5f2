// `mailman serve` as a separate process that a test can SIGKILL or SIGTERM.
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Mailman.TestSupport;

public sealed partial class DaemonProcess : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stdout;
    private readonly Task<string> _stderr;

    private DaemonProcess(Process process)
    {
        _process = process;
        _stdout = process.StandardOutput.ReadToEndAsync();
        _stderr = process.StandardError.ReadToEndAsync();
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output => _process.HasExited ? _stdout.Result + _stderr.Result : "";

    public static DaemonProcess Start(string home, IDictionary<string, string> env, bool exitWhenIdle = false)
    {
        var args = exitWhenIdle ? new[] { "serve", "--exit-when-idle" } : ["serve"];
        var process = Process.Start(MailmanProcess.StartInfo(home, args, env))!;
        process.StandardInput.Close();
        return new DaemonProcess(process);
    }

    /// <summary>SIGKILL: no chance to clean up, as in a crash or an OOM kill.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    /// <summary>SIGTERM, as systemd stops a service.</summary>
    public void Terminate()
    {
        if (SysKill(_process.Id, 15) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);
}
