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

    /// <summary>`serve --exit-when-idle` into Postfix: timed until Postfix accepted every copy (its 250).</summary>
    public Measurement OursVia(PostfixInstance postfix, Row row, string home, byte[] post, bool bdat, IDictionary<string, string>? extra = null)
    {
        var before = Discarded(postfix);
        var timed = InjectAndServe(row, home, post, postfix.Port, bdat, extra);
        return timed with { Count = WaitForDiscards(postfix, before + row.Members) - before };
    }

    /// <summary>`smtp-source -d -s 8` into the same Postfix, timed the same way.</summary>
    public Measurement SmtpSourceVia(PostfixInstance postfix, int size, int count)
    {
        var before = Discarded(postfix);
        var timed = SourceInto(postfix.Port, size, count);
        return timed with { Count = WaitForDiscards(postfix, before + count) - before };
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
