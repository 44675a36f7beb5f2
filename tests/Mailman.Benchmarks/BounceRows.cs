// The bounce issue's row (`-- bounces`): N VERP bounces of a 200,000-member list, half RFC 3464
// DSNs and half other formats (Exim, qmail, old Postfix), each injected by its own `mailman
// inject` process as Postfix's pipe would, then processed by one `serve --exit-when-idle` under
// /usr/bin/time: bounces per second, CPU per bounce, peak RSS, for growing N.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mailman.Bounces;
using Mailman.Delivery;
using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Benchmarks;

internal static class BounceRows
{
    private static readonly ListName List = ListName.Parse("bench@example.org");

    /// <param name="direct">Write the entries as inject does, in this process (fast, for profiling) instead of one inject process each.</param>
    public static string Run(string mailman, string work, IReadOnlyList<int> counts, int members, bool direct = false, bool keep = false)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"Bounces: N VERP bounces of a {members:N0}-member list (half DSN, half Exim/qmail/old Postfix), each through its own `inject` as Postfix pipes them, then one `serve --exit-when-idle`:");
        sb.AppendLine();
        sb.AppendLine("| bounces | inject, 4 at a time (s) | serve wall (s) | bounces/s (wall) | bounces/s (runner start to last bounce) | CPU ms/bounce | peak RSS MB | check |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        var addresses = Workloads.Members(members).ToList();
        foreach (var count in counts)
        {
            var home = Path.Combine(work, "bounces");
            var paths = Workloads.FreshInstance(home);
            using (var store = new ListStore(paths.Database, create: true))
            {
                store.CreateList(new MailingList { Name = List, NonMemberAction = NonMemberAction.Accept });
                store.AddMembers(List, addresses.Select(a => new Member(a, "")));
            }

            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            var stride = members / count;
            var bounced = Enumerable.Range(0, count).Select(i => addresses[i * stride]).ToList();
            var inject = Stopwatch.StartNew();
            if (direct)
            {
                var queue = new Mailman.Queues.Switchboard(new System.IO.Abstractions.FileSystem(), paths.Queue("bounces"), "bounces", TimeProvider.System);
                for (var i = 0; i < count; i++)
                {
                    queue.Enqueue(new Mailman.Queues.EntryMetadata { List = List.Fqdn, Sender = "MAILER-DAEMON", Received = DateTimeOffset.UtcNow, Destination = Verp.Encode(List, bounced[i]) }, Message(i, bounced[i]));
                }
            }
            else
            {
                Parallel.ForEach(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => Inject(mailman, home, bounced[i], Message(i, bounced[i])));
            }

            var injectSeconds = inject.Elapsed.TotalSeconds;
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   {count} bounces injected in {injectSeconds:F1}s"));

            if (keep)
            {
                // For profiling: the instance is left as it is, ready for a serve.
                Console.Error.WriteLine($"   instance ready: {home}");
                return "";
            }

            using var sink = SmtpSink.Start();
            var (wall, cpu, rss) = Hardening.Timed(mailman, home, ["serve", "--exit-when-idle"], new Dictionary<string, string>
            {
                ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
                ["Logging__Console"] = "false",
            });

            // Processing time: from the bounce runner's start (after start-up recovery and the
            // first sweep) to the last bounce's log line; the wall time adds the process start,
            // the scan of the queue and the idle exit.
            var log = Directory.GetFiles(paths.LogsDirectory, "mailman-*.log").SelectMany(File.ReadLines).ToList();
            var lines = log.Where(l => l.Contains("] Mailman.Bounces.BounceProcessor: Bounce: ", StringComparison.Ordinal)).ToList();
            var first = Stamp(log.First(l => l.Contains("BounceRunner started on queue bounces", StringComparison.Ordinal)));
            var last = Stamp(lines[^1]);
            long scored;
            using (var store = new ListStore(paths.Database, create: true))
            {
                scored = store.MemberRecords(List).LongCount(m => m.BounceScore == 1);
            }

            var left = Directory.GetFiles(paths.QueuesDirectory, "*.msg", SearchOption.AllDirectories).Length;
            var check = scored == count && left == 0 && lines.Count == count ? "ok" : $"FAILED: {scored} scored, {lines.Count} log lines, {left} entries left";
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {count:N0} | {injectSeconds:F1} | {wall:F2} | {count / wall:F0} | {count / Math.Max(0.001, (last - first).TotalSeconds):F0} | {cpu * 1000 / count:F3} | {rss / 1024} | {check} |");
            Console.Error.WriteLine(sb.ToString().Split('\n')[^2]);
        }

        return sb.ToString();
    }

    // Log lines start with an ISO 8601 timestamp (2026-12-01T21:49:27.415+00:00).
    private static DateTime Stamp(string line) => DateTime.ParseExact(line[..23], "yyyy-MM-dd'T'HH:mm:ss.fff", CultureInfo.InvariantCulture);

    private static void Inject(string mailman, string home, string member, byte[] message)
    {
        string[] args = ["--home", home, "inject", Verp.Encode(List, member), "--sender", "MAILER-DAEMON"];
        var psi = new ProcessStartInfo(mailman.EndsWith(".dll", StringComparison.Ordinal) ? "dotnet" : mailman)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (mailman.EndsWith(".dll", StringComparison.Ordinal))
        {
            psi.ArgumentList.Add(mailman);
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.BaseStream.Write(message);
        p.StandardInput.Close();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"inject exited {p.ExitCode}: {stderr.Result}");
        }
    }

    /// <summary>Bounce i for <paramref name="member"/>: even i a DSN, odd i Exim, qmail or old Postfix in turn; checked with the classifier.</summary>
    internal static byte[] Message(int i, string member)
    {
        var original = $"From: poster@example.net\nTo: {member}\nSubject: [bench] post {i}\nMessage-Id: <post{i}@example.net>\nList-Id: <bench.example.org>\n\nHello list\n";
        var (text, detector) = (i % 2, i / 2 % 3) switch
        {
            (0, _) => (Encoding.ASCII.GetString(BounceMessages.Dsn([BounceMessages.Recipient(member)], original, "B" + i.ToString(CultureInfo.InvariantCulture))), "DSN"),
            (_, 0) => ($"""
                From: Mail Delivery System <Mailer-Daemon@mx.example.net>
                To: bench-bounces@example.org
                Subject: Mail delivery failed: returning message to sender
                X-Failed-Recipients: {member}
                Auto-Submitted: auto-replied
                Message-Id: <exim{i}@mx.example.net>

                This message was created automatically by mail delivery software.

                A message that you sent could not be delivered to one or more of its
                recipients. This is a permanent error. The following address(es) failed:

                  {member}
                    SMTP error from remote mail server after RCPT TO:<{member}>:
                    550 5.1.1 User unknown

                ------ This is a copy of the message, including all the headers. ------

                {original}
                """, "Exim"),
            (_, 1) => ($"""
                From: MAILER-DAEMON@mx.example.net
                To: bench-bounces@example.org
                Subject: failure notice
                Message-Id: <qmail{i}@mx.example.net>

                Hi. This is the qmail-send program at mx.example.net.
                I'm afraid I wasn't able to deliver your message to the following addresses.
                This is a permanent error; I've given up. Sorry it didn't work out.

                <{member}>:
                192.0.2.1 does not like recipient.
                Remote host said: 550 5.1.1 <{member}>: unknown user
                Giving up on 192.0.2.1.

                --- Below this line is a copy of the message.

                {original}
                """, "Qmail"),
            _ => ($"""
                From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
                To: bench-bounces@example.org
                Subject: Undelivered Mail Returned to Sender
                Message-Id: <postfix{i}@mx.example.net>
                MIME-Version: 1.0
                Content-Type: multipart/mixed; boundary="PF{i}"

                --PF{i}
                Content-Description: Notification
                Content-Type: text/plain

                This is the Postfix program at host mx.example.net.

                I'm sorry to have to inform you that the message returned
                below could not be delivered to one or more destinations.

                			The Postfix program

                <{member}>: host mx.example.com[192.0.2.2] said: 550 5.1.1 unknown user

                --PF{i}
                Content-Description: Undelivered Message
                Content-Type: message/rfc822

                {original}
                --PF{i}--
                """, "Postfix"),
        };

        var bytes = Encoding.ASCII.GetBytes(text.ReplaceLineEndings("\n"));
        var analysis = BounceClassifier.Classify(new MemoryStream(bytes));
        if (analysis.Kind != BounceKind.Permanent || analysis.Detector != detector || !analysis.Addresses.Select(a => a.Address).SequenceEqual([member]))
        {
            throw new InvalidOperationException($"bounce {i} ({detector}) classified as {analysis.KindName} by {analysis.Detector}: {string.Join(' ', analysis.Addresses.Select(a => a.Address))}");
        }

        return bytes;
    }
}
