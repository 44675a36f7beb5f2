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

    /// <summary>
    /// Runs `mailman ARGS` with <paramref name="fault"/> (strace's inject=...:FAULT) at call
    /// <paramref name="when"/> of <paramref name="calls"/> (strace counts each system call on its
    /// own), and with the further injection <paramref name="alsoInject"/> (CALLS:FAULT:when=N) if given.
    /// </summary>
    /// <returns>The process result; exit code 137 means the injected SIGKILL landed.</returns>
    public static ProcessResult Run(string home, IEnumerable<string> args, string calls, string fault, int when, IDictionary<string, string>? env = null, string? path = null, TimeSpan? timeout = null, string? alsoInject = null)
    {
        using var process = Start(home, args, calls, fault, when, env, path, alsoInject);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"mailman {string.Join(' ', args)} under strace did not finish");
        }

        return new ProcessResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Starts `mailman ARGS` under strace and returns at once (stdout and stderr redirected; read or drain them).</summary>
    public static Process Start(string home, IEnumerable<string> args, string calls, string fault, int when, IDictionary<string, string>? env = null, string? path = null, string? alsoInject = null)
    {
        var inner = MailmanProcess.StartInfo(home, args, env);
        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Only traced calls are injected: the further injection's calls are traced too.
        var traced = alsoInject is null ? calls : calls + "," + alsoInject[..alsoInject.IndexOf(':', StringComparison.Ordinal)];
        var straceArgs = new List<string> { "-f", "-q", "-o", "/dev/null", "-e", "trace=" + traced, "-e", $"inject={calls}:{fault}:when={when}" };
        if (alsoInject is not null)
        {
            straceArgs.AddRange(["-e", "inject=" + alsoInject]);
        }

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
        var process = Process.Start(psi)!;
        process.StandardInput.Close();
        return process;
    }

    /// <summary>
    /// SIGKILLs strace and the program it traces, and returns once both are gone: the traced
    /// one, reparented when strace dies, may still be exiting (holding its locks) after strace
    /// was reaped; a serve started then found the instance taken.
    /// </summary>
    public static void Kill(Process traced)
    {
        var pids = Descendants(traced.Id).ToList();
        traced.Kill(entireProcessTree: true);
        traced.WaitForExit();
        Wait.Until(() => pids.TrueForAll(Gone), TimeSpan.FromSeconds(30), "the traced processes to exit", () => string.Join(", ", pids.Where(p => !Gone(p))));
    }

    private static IEnumerable<int> Descendants(int pid)
    {
        string[] tasks;
        try
        {
            tasks = Directory.GetDirectories($"/proc/{pid}/task");
        }
        catch (IOException)
        {
            yield break;
        }

        foreach (var task in tasks)
        {
            string children;
            try
            {
                children = File.ReadAllText(Path.Combine(task, "children"));
            }
            catch (IOException)
            {
                continue;
            }

            foreach (var child in children.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var id = int.Parse(child, System.Globalization.CultureInfo.InvariantCulture);
                yield return id;
                foreach (var d in Descendants(id))
                {
                    yield return d;
                }
            }
        }
    }

    // Exited: no longer in /proc, or every thread a zombie (its files, and so its locks, are
    // closed only when the last thread is gone: a zombie leader alone says nothing).
    private static bool Gone(int pid)
    {
        try
        {
            return Directory.GetDirectories($"/proc/{pid}/task").All(task =>
            {
                try
                {
                    var stat = File.ReadAllText(Path.Combine(task, "stat"));
                    return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
                }
                catch (IOException)
                {
                    return true;
                }
            });
        }
        catch (IOException)
        {
            return true;
        }
    }
}
