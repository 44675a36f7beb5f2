// The optional rows through a real Postfix (`--postfix`): a private instance on loopback with its
// own configuration and queue under /tmp, every recipient handed to the discard transport (the
// seed's own set-up). Postfix is the ceiling here (a queue file and fsync per message); the row
// compares ours with smtp-source into the same Postfix, and DATA with BDAT, which Postfix offers.
using System.Diagnostics;
using System.Globalization;
using Mailman.TestSupport;

namespace Mailman.Benchmarks;

public sealed partial class EndToEnd
{
    /// <summary>Starts the private Postfix: loopback smtpd, everything to discard:.</summary>
    public static PostfixInstance StartPostfix()
    {
        var postfix = PostfixInstance.Create(relayPort: 9, mainCf: """
            default_transport = discard:benchmark
            relay_transport = discard:benchmark
            default_process_limit = 100
            smtpd_client_connection_count_limit = 0
            """, masterCf: "");
        postfix.Start();
        return postfix;
    }

    /// <summary>`serve --exit-when-idle` into Postfix: timed until Postfix accepted every copy (its 250).</summary>
    public Measurement OursVia(PostfixInstance postfix, Row row, string home, byte[] post, bool bdat)
    {
        var inject = Mailman("--home", home, "inject", "bench@example.org");
        Run(inject[0], inject[1..], post);
        var before = Discarded(postfix);
        var timing = Path.Combine(Work, "time.txt");
        var env = new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = postfix.Port.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Smtp__MaxRecipients"] = row.MaxRecipients.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Smtp__PreferBdat"] = bdat ? "true" : "false",
            ["Logging__Console"] = "false",
        };
        var watch = Stopwatch.StartNew();
        Run("/usr/bin/time", ["-f", "%e %U %S %M", "-o", timing, .. Mailman("--home", home, "serve", "--exit-when-idle")], null, env);
        var wall = watch.Elapsed.TotalSeconds;
        var count = WaitForDiscards(postfix, before + row.Members) - before;
        var t = File.ReadAllText(timing).Trim().Split('\n')[^1].Split(' ');
        return new Measurement(wall, D(t[1]), D(t[2]), long.Parse(t[3], CultureInfo.InvariantCulture), count);
    }

    /// <summary>`smtp-source -d -s 8` into the same Postfix, timed the same way.</summary>
    public Measurement SmtpSourceVia(PostfixInstance postfix, int size, int count)
    {
        var before = Discarded(postfix);
        var timing = Path.Combine(Work, "time-source.txt");
        var watch = Stopwatch.StartNew();
        Run("/usr/bin/time", ["-f", "%e %U %S %M", "-o", timing, SourceBinary, "-d", "-s", "8", "-m", count.ToString(CultureInfo.InvariantCulture),
            "-l", size.ToString(CultureInfo.InvariantCulture), "-f", "bench-bounces@example.org", "-t", "member@example.com", $"127.0.0.1:{postfix.Port}"], null);
        var wall = watch.Elapsed.TotalSeconds;
        var received = WaitForDiscards(postfix, before + count) - before;
        var t = File.ReadAllText(timing).Trim().Split('\n')[^1].Split(' ');
        return new Measurement(wall, D(t[1]), D(t[2]), long.Parse(t[3], CultureInfo.InvariantCulture), received);
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
