// Runs the real `mailman` executable as a separate process: the mailman.dll built beside the
// tests, or the binary MAILMAN_BINARY names (CI sets it to the Native AOT publish, as deployed).
using System.Diagnostics;

namespace Mailman.TestSupport;

public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr);

public static class MailmanProcess
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "mailman.dll");

    /// <summary>A published executable to test instead of the build output, if MAILMAN_BINARY is set.</summary>
    public static string? Binary => Environment.GetEnvironmentVariable("MAILMAN_BINARY") is { Length: > 0 } b ? b : null;

    /// <param name="runAs">A user to run as (through runuser), as an instance owned by that user requires.</param>
    public static ProcessStartInfo StartInfo(string home, IEnumerable<string> args, IDictionary<string, string>? env = null, string? runAs = null)
    {
        var psi = new ProcessStartInfo(runAs is null ? Binary ?? "dotnet" : "runuser")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (runAs is not null)
        {
            foreach (var a in new[] { "-u", runAs, "--", Binary ?? "dotnet" })
            {
                psi.ArgumentList.Add(a);
            }
        }

        if (Binary is null)
        {
            psi.ArgumentList.Add(Dll);
        }

        psi.ArgumentList.Add("--home");
        psi.ArgumentList.Add(home);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["Logging__File"] = "true";
        // A test run under systemd must not turn every line into journald's form; the tests of that form set it.
        psi.Environment.Remove("JOURNAL_STREAM");
        if (env is not null)
        {
            foreach (var (k, v) in env)
            {
                psi.Environment[k] = v;
            }
        }

        return psi;
    }

    /// <summary>Runs to completion (killed after <paramref name="timeout"/>, which fails the test).</summary>
    public static ProcessResult Run(string home, IEnumerable<string> args, byte[]? stdin = null, IDictionary<string, string>? env = null, TimeSpan? timeout = null, string? runAs = null)
    {
        using var process = Process.Start(StartInfo(home, args, env, runAs))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            if (stdin is not null)
            {
                process.StandardInput.BaseStream.Write(stdin);
            }

            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The process stopped reading (it refused the message, or failed to queue it): its
            // exit code says which, as Postfix's pipe sees it.
        }

        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"mailman {string.Join(' ', args)} did not finish; stderr: {stderr.Result}");
        }

        return new ProcessResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>`serve --exit-when-idle` with the SMTP port (and other settings) from the environment.</summary>
    public static ProcessResult ServeUntilIdle(string home, int smtpPort, IDictionary<string, string>? env = null, string? runAs = null)
    {
        var all = new Dictionary<string, string>(env ?? new Dictionary<string, string>())
        {
            ["Mailman__Smtp__Port"] = smtpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var result = Run(home, ["serve", "--exit-when-idle"], env: all, runAs: runAs);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"serve exited {result.ExitCode}: {result.Stderr}{result.Stdout}");
        }

        return result;
    }
}
