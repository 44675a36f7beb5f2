// Real faults at real system calls: runs `mailman` under strace with a fault injected at the
// Nth call of some system calls (a SIGKILL, as a crash or an OOM kill would land there, or an
// errno such as EACCES), optionally only for calls on one path.
using System.Diagnostics;

namespace Mailman.TestSupport;

public static class Strace
{
    public const string Binary = "/usr/bin/strace";

    public static bool IsInstalled => File.Exists(Binary);

    /// <summary>The mutations of a queue directory: renames and deletes.</summary>
    public const string FileMutations = "rename,renameat,renameat2,unlink,unlinkat";

    /// <summary>Runs `mailman ARGS` with <paramref name="fault"/> (strace's inject=...:FAULT) at call <paramref name="when"/> of <paramref name="calls"/>.</summary>
    /// <returns>The process result; exit code 137 means the injected SIGKILL landed.</returns>
    public static ProcessResult Run(string home, IEnumerable<string> args, string calls, string fault, int when, IDictionary<string, string>? env = null, string? path = null, TimeSpan? timeout = null)
    {
        var inner = MailmanProcess.StartInfo(home, args, env);
        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var straceArgs = new List<string> { "-f", "-q", "-o", "/dev/null", "-e", "trace=" + calls, "-e", $"inject={calls}:{fault}:when={when}" };
        if (path is not null)
        {
            straceArgs.AddRange(["-P", path]);
        }

        foreach (var a in straceArgs.Append(inner.FileName).Concat(inner.ArgumentList))
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in inner.Environment)
        {
            psi.Environment[k] = v;
        }

        // The runtime's diagnostics socket is a file too; keep the counted calls the program's own.
        psi.Environment["DOTNET_EnableDiagnostics"] = "0";
        using var process = Process.Start(psi)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"mailman {string.Join(' ', args)} under strace did not finish");
        }

        return new ProcessResult(process.ExitCode, stdout.Result, stderr.Result);
    }
}
