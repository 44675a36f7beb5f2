// The optional rows through a real Postfix (`--postfix`): a private instance on loopback with its
// own configuration and queue under /tmp, every recipient handed to the discard transport (the
// seed's own set-up). Postfix is the ceiling here (a queue file and fsync per message); the row
// compares ours with smtp-source into the same Postfix, and DATA with BDAT, which Postfix offers.
using System.Diagnostics;
using Mailman.TestSupport;

namespace Mailman.Benchmarks;

public sealed partial class EndToEnd
{
    /// <summary>Starts the private Postfix: loopback smtpd, everything to discard:.</summary>
    public static PostfixInstance StartPostfix(TestCertificates? tls = null)
    {
        var tlsCf = tls is null ? "" : $"""
            smtpd_tls_security_level = may
            smtpd_tls_cert_file = {tls.ServerCertFile}
            smtpd_tls_key_file = {tls.ServerKeyFile}
            """;
        var postfix = PostfixInstance.Create(relayPort: 9, mainCf: $"""
            default_transport = discard:benchmark
            relay_transport = discard:benchmark
            default_process_limit = 100
            smtpd_client_connection_count_limit = 0
            {tlsCf}
            """, masterCf: tls is null ? "" : "tlsmgr    unix  -       -       n       1000?   1       tlsmgr");
        postfix.Start();
        return postfix;
    }

    /// <summary>The CPU of the private Postfix's processes (master and every worker it forks), where a cgroup can be made.</summary>
    public static ProcessTreeCpu? TrackCpu(PostfixInstance postfix)
    {
        // master.pid is flock'ed by the master, which .NET's own advisory locking refuses to read
        // beside; the master is the process named "master" working in this instance's queue directory.
        var spool = Path.Combine(postfix.Root, "spool");
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                if (int.TryParse(Path.GetFileName(dir), out var pid) && File.ReadAllText(Path.Combine(dir, "comm")).Trim() == "master"
                    && new DirectoryInfo(Path.Combine(dir, "cwd")).LinkTarget == spool)
                {
                    return ProcessTreeCpu.Track(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A process that exited, or not ours to look into.
            }
        }

        return null;
    }

    /// <summary>
    /// `serve --exit-when-idle` into Postfix: timed until Postfix accepted every copy (its 250);
    /// Postfix's CPU counted until it discarded them all.
    /// </summary>
    public Measurement OursVia(PostfixInstance postfix, ProcessTreeCpu? postfixCpu, Row row, string home, byte[] post, bool bdat, IDictionary<string, string>? extra = null)
    {
        var before = Discarded(postfix);
        var cpuBefore = postfixCpu?.Seconds();
        var timed = InjectAndServe(row, home, post, postfix.Port, bdat, extra);
        return timed with { Count = WaitForDiscards(postfix, before + row.Members) - before, ServerCpu = postfixCpu?.Seconds() - cpuBefore };
    }

    /// <summary>
    /// `smtp-source -d -s 8` into the same Postfix, timed and counted the same way; with
    /// <paramref name="distinct"/> (`-N`) every message to its own recipient, as every copy of ours
    /// is, so Postfix resolves and rewrites each one instead of answering from its one-entry caches.
    /// </summary>
    public Measurement SmtpSourceVia(PostfixInstance postfix, ProcessTreeCpu? postfixCpu, int size, int count, bool distinct)
    {
        var before = Discarded(postfix);
        var cpuBefore = postfixCpu?.Seconds();
        var timed = SourceInto(postfix.Port, size, count, distinct ? ["-N"] : []);
        return timed with { Count = WaitForDiscards(postfix, before + count) - before, ServerCpu = postfixCpu?.Seconds() - cpuBefore };
    }

    // Each recipient the discard agent took: "status=sent (benchmark)" in Postfix's log.
    private static long Discarded(PostfixInstance postfix)
    {
        if (!File.Exists(postfix.MailLog))
        {
            return 0;
        }

        using var reader = new StreamReader(new FileStream(postfix.MailLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        long count = 0;
        while (reader.ReadLine() is { } line)
        {
            if (line.Contains("status=sent (benchmark)", StringComparison.Ordinal))
            {
                count++;
            }
        }

        return count;
    }

    // Postfix drains its queue after the 250s: the next run starts on an empty queue.
    private static long WaitForDiscards(PostfixInstance postfix, long total)
    {
        var deadline = Stopwatch.StartNew();
        long now;
        while ((now = Discarded(postfix)) < total && deadline.Elapsed < TimeSpan.FromMinutes(10))
        {
            Thread.Sleep(500);
        }

        return now;
    }
}
