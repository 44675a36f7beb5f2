// `dotnet run -c Release --project tests/Mailman.Benchmarks` prints the seed's table measured on
// this machine; `-- micro` runs the BenchmarkDotNet micro-benchmarks. Needs Postfix's smtp-sink
// and smtp-source and /usr/bin/time.
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Running;
using Mailman.Benchmarks;

if (args.Length > 0 && args[0] == "micro")
{
    BenchmarkSwitcher.FromTypes([typeof(RenderPerRecipient), typeof(SwitchboardEnqueueClaim)]).Run(args[1..]);
    return 0;
}

string Arg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

EndToEnd.CheckTools();
if (args.Length > 0 && args[0] == "bounces")
{
    var benchWork = Path.Combine(Path.GetTempPath(), "mailman-benchmark");
    Directory.CreateDirectory(benchWork);
    var binary = Arg("--mailman", "") is { Length: > 0 } given ? given : Publish.Deployed(benchWork, out _) ?? Path.Combine(AppContext.BaseDirectory, "mailman.dll");
    Console.Error.WriteLine($"mailman: {binary}");
    Console.WriteLine(BounceRows.Run(binary, benchWork, Arg("--counts", "1000,10000").Split(',').Select(int.Parse).ToList(), int.Parse(Arg("--members", "200000"), CultureInfo.InvariantCulture),
        args.Contains("--direct"), args.Contains("--keep")));
    return 0;
}

if (args.Length > 0 && args[0] is "queue-depth" or "large-posts")
{
    var benchWork = Path.Combine(Path.GetTempPath(), "mailman-benchmark");
    Directory.CreateDirectory(benchWork);
    var binary = Arg("--mailman", "") is { Length: > 0 } given ? given : Publish.Deployed(benchWork, out _) ?? Path.Combine(AppContext.BaseDirectory, "mailman.dll");
    Console.WriteLine(args[0] == "queue-depth"
        ? Hardening.QueueDepth(binary, benchWork, Arg("--depths", "1000,10000,100000").Split(',').Select(int.Parse).ToList(), args.Contains("--disk"))
        : Hardening.LargePosts(binary, benchWork, Arg("--sizes", "10,100,1000").Split(',').Select(int.Parse).ToList()));
    return 0;
}

if (args.Length > 0 && args[0] == "intake")
{
    var intakeWork = Path.Combine(Path.GetTempPath(), "mailman-benchmark");
    Directory.CreateDirectory(intakeWork);
    var binary = Arg("--mailman", "") is { Length: > 0 } given ? given : Publish.Deployed(intakeWork, out _) ?? Path.Combine(AppContext.BaseDirectory, "mailman.dll");
    Console.WriteLine(IntakeRows.Run(binary, intakeWork, int.Parse(Arg("--posts", "2000"), CultureInfo.InvariantCulture), int.Parse(Arg("--size", "10240"), CultureInfo.InvariantCulture)));
    return 0;
}

var pairs = int.Parse(Arg("--pairs", "3"), CultureInfo.InvariantCulture);
var members = int.Parse(Arg("--members", "8000"), CultureInfo.InvariantCulture);
var scale = int.Parse(Arg("--scale", "200000"), CultureInfo.InvariantCulture);
var baseline = Arg("--baseline", "on") == "on";
var only = Arg("--rows", "");
if (only == "none")
{
    only = "0";
}

var work = Path.Combine(Path.GetTempPath(), "mailman-benchmark");
Directory.CreateDirectory(work);

// Measure what is deployed: the Native AOT publish (README, Run it behind Postfix), else
// ReadyToRun; --mailman names a mailman executable or mailman.dll instead.
var dll = Arg("--mailman", "");
var kind = "given binary";
if (dll.Length == 0)
{
    dll = Publish.Deployed(work, out kind) ?? Path.Combine(AppContext.BaseDirectory, "mailman.dll");
}

Console.Error.WriteLine($"mailman: {dll}");

Row[] rows =
[
    new("10 KB text/plain", 10 * 1024, false, 500, 6, members),
    new("50 KB text/plain (MaxRecipients 5)", 50 * 1024, false, 5, 9.5, members),
    new("220 KB text/plain", 220 * 1024, false, 500, 24, members),
    new("1 MB text/plain", 1024 * 1024, false, 500, 105, members),
    new("220 KB multipart/related", 220 * 1024, true, 500, 44, members),
    new("220 KB multipart/related (MaxRecipients 5)", 220 * 1024, true, 5, 41, members),
    new($"10 KB text/plain, {scale:N0} members", 10 * 1024, false, 500, 0, scale),
];
if (only.Length > 0)
{
    var wanted = only.Split(',').Select(int.Parse).ToHashSet();
    rows = rows.Where((_, i) => wanted.Contains(i + 1)).ToArray();
}

if (scale == 0)
{
    rows = rows.Where(r => r.Members == members).ToArray();
}

// --dmarc: each pair also runs the row with munge_from on, the poster's domain (example.com)
// publishing p=reject in a private dnsmasq (one lookup per post, then the cache), interleaved
// with the plain run so both see the same machine; its line follows the row's.
using var dmarcDns = args.Contains("--dmarc")
    ? Mailman.TestSupport.DnsServer.Start([("_dmarc.example.com", "v=DMARC1; p=reject")], ["example.com"])
    : null;

// --one-click: the instance has a public URL, so every copy carries its member's RFC 8058 link.
var e2e = new EndToEnd(dll, work, args.Contains("--one-click"));
var table = new StringBuilder();
table.AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {Environment.ProcessorCount} cores; {pairs} alternating pairs per row; median ratio; {kind}{(args.Contains("--one-click") ? "; one-click links on" : "")}.");
table.AppendLine();
table.AppendLine("| row | copies | 2003 Mailman 2.1 | ours cold (s) | ours warm (s) | msg/hour warm | smtp-source -d -s 8 (s) | ratio cold | ratio warm | CPU ms/copy cold | warm | peak RSS MB | Mailman 2.1 way, MailKit (s, CPU ms/copy) | sample check |");
table.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
foreach (var row in rows)
{
    Console.Error.WriteLine($"== {row.Name}");
    var list = Workloads.Members(row.Members).ToList();
    var post = Workloads.Post(row);
    var check = e2e.Verify(row, list.Take(50).ToList(), post);
    var runs = row.Members > members ? 1 : pairs;
    var ours = new List<Measurement>();
    var warm = new List<Measurement>();
    var theirs = new List<Measurement>();
    var dmarcRow = dmarcDns is null ? null : row with { Name = row.Name + ", munge_from (From: p=reject)", Dns = dmarcDns.Endpoint };
    var dmarcCheck = dmarcRow is null ? "" : e2e.Verify(dmarcRow, list.Take(50).ToList(), post);
    var dmarcRuns = new List<Measurement>();
    for (var i = 0; i < runs; i++)
    {
        // smtp-source between our two; every other pair in reverse order (no run always first).
        var order = new Action[]
        {
            () => ours.Add(e2e.Ours(row, e2e.Instance(row, list, "row"), post, row.Members)),
            () => theirs.Add(e2e.SmtpSource(post.Length, row.Members)),
            () => warm.Add(e2e.Warm(row, e2e.Instance(row, list, "row"), post, row.Members)),
        };
        foreach (var run in i % 2 == 0 ? order : Enumerable.Reverse(order))
        {
            run();
        }

        Console.Error.WriteLine($"   pair {i + 1}: ours cold {ours[^1].Wall:F2}s ({ours[^1].Cpu:F2}s CPU, {ours[^1].MaxRssKb / 1024} MB), warm {warm[^1].Wall:F2}s ({warm[^1].Cpu:F2}s CPU), smtp-source {theirs[^1].Wall:F2}s");
        if (dmarcRow is not null)
        {
            dmarcRuns.Add(e2e.Ours(dmarcRow, e2e.Instance(dmarcRow, list, "row"), post, row.Members));
            Console.Error.WriteLine($"           munge_from {dmarcRuns[^1].Wall:F2}s ({dmarcRuns[^1].Cpu:F2}s CPU)");
        }
    }

    static double Med(IEnumerable<double> xs) => xs.Order().ElementAt(xs.Count() / 2);
    var ratio = Med(ours.Zip(theirs, (a, b) => a.Wall / b.Wall));
    var ratioWarm = Med(warm.Zip(theirs, (a, b) => a.Wall / b.Wall));
    var wall = Med(ours.Select(m => m.Wall));
    var wallWarm = Med(warm.Select(m => m.Wall));
    var source = Med(theirs.Select(m => m.Wall));
    var cpu = Med(ours.Select(m => m.Cpu)) / row.Members * 1000;
    var cpuWarm = Med(warm.Select(m => m.Cpu)) / row.Members * 1000;
    var rss = Math.Max(ours.Max(m => m.MaxRssKb), warm.Max(m => m.MaxRssKb)) / 1024;
    var baselineText = "-";
    if (baseline && row.Members == members && row.Dns is null)
    {
        var sink = new TcpSinkForBaseline();
        var (bWall, bCpu) = sink.Run(post, list);
        baselineText = string.Create(CultureInfo.InvariantCulture, $"{bWall.TotalSeconds:F1} s, {bCpu.TotalMilliseconds / list.Count:F2} ms");
    }

    var y2003 = row.Minutes2003 > 0 ? string.Create(CultureInfo.InvariantCulture, $"{row.Minutes2003} min") : "-";
    table.AppendLine(CultureInfo.InvariantCulture,
        $"| {row.Name} | {row.Members:N0} | {y2003} | {wall:F2} | {wallWarm:F2} | {row.Members / wallWarm * 3600:N0} | {source:F2} | {ratio:F2} | {ratioWarm:F2} | {cpu:F3} | {cpuWarm:F3} | {rss} | {baselineText} | {check} |");
    if (dmarcRow is not null)
    {
        var dWall = dmarcRuns.Select(m => m.Wall).Order().ElementAt(dmarcRuns.Count / 2);
        var dRatio = dmarcRuns.Zip(theirs, (a, b) => a.Wall / b.Wall).Order().ElementAt(dmarcRuns.Count / 2);
        var dCpu = dmarcRuns.Select(m => m.Cpu).Order().ElementAt(dmarcRuns.Count / 2) / row.Members * 1000;
        table.AppendLine(CultureInfo.InvariantCulture,
            $"| {dmarcRow.Name} | {row.Members:N0} | - | {dWall:F2} | - | {row.Members / dWall * 3600:N0} | {source:F2} | {dRatio:F2} | - | {dCpu:F3} | - | {dmarcRuns.Max(m => m.MaxRssKb) / 1024} | - | {dmarcCheck} |");
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"   CPU ms/copy, median (min): plain {cpu:F3} ({ours.Min(m => m.Cpu) / row.Members * 1000:F3}), munge_from {dCpu:F3} ({dmarcRuns.Min(m => m.Cpu) / row.Members * 1000:F3})"));
    }

    Console.Error.WriteLine(table.ToString().Split('\n')[^2]);
}

if (args.Contains("--outbound"))
{
    table.AppendLine();
    table.Append(OutboundTable(e2e, pairs, members));
}

if (args.Contains("--throttled"))
{
    table.AppendLine();
    table.Append(ThrottledTable(e2e, pairs, scale > 0 ? scale : 200_000));
}

if (args.Contains("--postfix"))
{
    table.AppendLine();
    table.Append(PostfixTable(e2e, pairs));
}

Console.WriteLine(table);
return 0;

// Ours (DATA at the default 8 connections × 25 and at 4 × 50, warm, BDAT) and smtp-source, with
// distinct recipients (-N, as our copies have) and with its one repeated recipient, alternating into one private Postfix that discards everything;
// Postfix's own CPU per message beside each, where a cgroup can count it. The post has
// smtp-source's line shape: with the prose post's shorter lines Postfix spent 4-10% more CPU on a
// 1 MB copy than on smtp-source's message of the same size (2026-12-02), work the row is not about.
static string PostfixTable(EndToEnd e2e, int pairs)
{
    var sb = new StringBuilder();
    sb.AppendLine("Through a private Postfix (loopback smtpd, discard: transport), the post's body in smtp-source's lines (78 characters, no leading dots), timed until Postfix accepted every message; Postfix's CPU (all its processes, until it discarded them) per message:");
    sb.AppendLine();
    sb.AppendLine("| row | copies | ours cold DATA (s) | ours warm DATA (s) | ours cold BDAT (s) | ours cold 4 × 50 (s) | smtp-source -N (s) | smtp-source (s) | ratio cold DATA / -N | warm DATA / -N | cold BDAT / -N | cold 4 × 50 / -N | cold DATA / plain | Postfix CPU ms/msg: ours cold DATA | warm DATA | BDAT | 4 × 50 | -N | plain | client CPU ms/msg: ours cold DATA | warm DATA | BDAT | smtp-source -N |");
    sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    using var certs = Mailman.TestSupport.TestCertificates.Create();
    var rows = new (Row Row, bool Tls)[]
    {
        (new("10 KB text/plain", 10 * 1024, false, 500, 0, 8000), false),
        (new("1 MB text/plain", 1024 * 1024, false, 500, 0, 1000), false),
        (new("10 KB text/plain, STARTTLS (smtp-source plain: it has no TLS)", 10 * 1024, false, 500, 0, 8000), true),
    };
    foreach (var (row, tls) in rows)
    {
        using var postfix = EndToEnd.StartPostfix(tls ? certs : null);
        using var postfixCpu = EndToEnd.TrackCpu(postfix);
        Console.Error.WriteLine($"== Postfix: {row.Name}, {row.Members} members{(postfixCpu is null ? " (Postfix's CPU not counted: no cgroup could be made)" : "")}");
        var list = Workloads.Members(row.Members).ToList();
        var post = Workloads.PlainLikeSmtpSource(row.Bytes);
        var extra = tls ? new Dictionary<string, string> { ["Mailman__Smtp__Security"] = "starttls", ["Mailman__Smtp__CaFile"] = certs.CaFile } : null;
        var runs = new Dictionary<string, List<Measurement>> { ["DATA"] = [], ["4x50"] = [], ["warm"] = [], ["BDAT"] = [], ["-N"] = [], ["plain"] = [] };
        var variants = new List<(string Key, Func<Measurement> Run)>
        {
            ("DATA", () => e2e.OursVia(postfix, postfixCpu, row, e2e.Instance(row, list, "row"), post, bdat: false, extra)),
            ("4x50", () => e2e.OursVia(postfix, postfixCpu, row, e2e.Instance(row, list, "row"), post, bdat: false, FourByFifty().Concat(extra ?? []).ToDictionary())),
            ("warm", () => e2e.Warm(row, e2e.Instance(row, list, "row"), post, row.Members, extra, via: postfix, viaCpu: postfixCpu)),
            ("-N", () => e2e.SmtpSourceVia(postfix, postfixCpu, post.Length, row.Members, distinct: true)),
            ("plain", () => e2e.SmtpSourceVia(postfix, postfixCpu, post.Length, row.Members, distinct: false)),
        };
        if (!tls)
        {
            variants.Insert(3, ("BDAT", () => e2e.OursVia(postfix, postfixCpu, row, e2e.Instance(row, list, "row"), post, bdat: true)));
        }

        for (var i = 0; i < pairs; i++)
        {
            // Every other round in reverse order, so that no variant always runs first or last
            // (a drift over the round, or what the run before leaves Postfix, falls on all alike).
            foreach (var (key, run) in i % 2 == 0 ? variants : Enumerable.Reverse(variants))
            {
                runs[key].Add(run());
            }

            Console.Error.WriteLine($"   run {i + 1}: " + string.Join(", ", runs.Where(r => r.Value.Count > i).Select(r => $"{r.Key} {r.Value[i].Wall:F2}s")));
            foreach (var m in runs.Values.Where(r => r.Count > i).Select(r => r[i]))
            {
                if (m.Count != row.Members)
                {
                    throw new InvalidOperationException($"Postfix discarded {m.Count} of {row.Members}");
                }
            }
        }

        static double Median(IEnumerable<double> xs) => xs.Order().ElementAt(xs.Count() / 2);
        string Seconds(string key) => runs[key].Count == 0 ? "-" : Median(runs[key].Select(m => m.Wall)).ToString("F2", CultureInfo.InvariantCulture);
        string Ratio(string ours, string source) => runs[ours].Count == 0 ? "-"
            : Median(runs[ours].Zip(runs[source], (a, b) => a.Wall / b.Wall)).ToString("F2", CultureInfo.InvariantCulture);
        string ServerMs(string key) => runs[key].Count == 0 || runs[key].Any(m => m.ServerCpu is null) ? "-"
            : (Median(runs[key].Select(m => m.ServerCpu!.Value)) / row.Members * 1000).ToString("F2", CultureInfo.InvariantCulture);
        string ClientMs(string key) => runs[key].Count == 0 ? "-" : (Median(runs[key].Select(m => m.Cpu)) / row.Members * 1000).ToString("F3", CultureInfo.InvariantCulture);
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"| {row.Name} | {row.Members:N0} | {Seconds("DATA")} | {Seconds("warm")} | {Seconds("BDAT")} | {Seconds("4x50")} | {Seconds("-N")} | {Seconds("plain")} | {Ratio("DATA", "-N")} | {Ratio("warm", "-N")} | {Ratio("BDAT", "-N")} | {Ratio("4x50", "-N")} | {Ratio("DATA", "plain")} | {ServerMs("DATA")} | {ServerMs("warm")} | {ServerMs("BDAT")} | {ServerMs("4x50")} | {ServerMs("-N")} | {ServerMs("plain")} | {ClientMs("DATA")} | {ClientMs("warm")} | {ClientMs("BDAT")} | {ClientMs("-N")} |");
        Console.Error.WriteLine(sb.ToString().Split('\n')[^2]);
    }

    return sb.ToString();
}

// The default until 2026-12-02: four connections, chunks of 50 (the same 200-copy crash bound).
static Dictionary<string, string> FourByFifty() => new() { ["Mailman__Smtp__Connections"] = "4", ["Mailman__Smtp__CheckpointRecipients"] = "50" };

// The outbound choices at 10 KB, warm, each against smtp-source in the same pair: the default
// (pipelined, 8 connections × 25-recipient chunks), pipelining off (MailKit's three round trips
// a copy), 4 connections × 50 (the same 200-copy crash bound; the default until 2026-12-02), and
// a pool of two smtp-sinks of four connections each.
static string OutboundTable(EndToEnd e2e, int pairs, int members)
{
    var row = new Row("10 KB text/plain", 10 * 1024, false, 500, 0, members);
    (string Name, Dictionary<string, string> Env, int Relays)[] variants =
    [
        ("pipelined, 8 connections × 25 (default)", [], 1),
        ("not pipelined (Pipelining false), 8 × 25", new() { ["Mailman__Smtp__Pipelining"] = "false" }, 1),
        ("pipelined, 4 connections × 50", FourByFifty(), 1),
        ("pool of two smtp-sinks, 4 connections each × 25", [], 2),
    ];
    var list = Workloads.Members(row.Members).ToList();
    var post = Workloads.Post(row);
    var source = new List<Measurement>();
    var ours = variants.Select(_ => new List<Measurement>()).ToArray();
    Console.Error.WriteLine("== outbound variants, 10 KB warm");
    for (var i = 0; i < pairs; i++)
    {
        source.Add(e2e.SmtpSource(post.Length, row.Members));
        for (var v = 0; v < variants.Length; v++)
        {
            ours[v].Add(e2e.Warm(row, e2e.Instance(row, list, "row"), post, row.Members, variants[v].Env, relays: variants[v].Relays));
        }

        Console.Error.WriteLine($"   pair {i + 1}: smtp-source {source[^1].Wall:F2}s, " + string.Join(", ", ours.Select((m, v) => $"{variants[v].Name} {m[^1].Wall:F2}s")));
    }

    static double Med(IEnumerable<double> xs) => xs.Order().ElementAt(xs.Count() / 2);
    var sb = new StringBuilder();
    sb.AppendLine(CultureInfo.InvariantCulture, $"Outbound choices, {row.Name}, {row.Members:N0} copies, warm:");
    sb.AppendLine();
    sb.AppendLine("| variant | ours warm (s) | smtp-source -d -s 8 (s) | ratio | CPU ms/copy |");
    sb.AppendLine("|---|---|---|---|---|");
    for (var v = 0; v < variants.Length; v++)
    {
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"| {variants[v].Name} | {Med(ours[v].Select(m => m.Wall)):F2} | {Med(source.Select(m => m.Wall)):F2} | {Med(ours[v].Zip(source, (a, b) => a.Wall / b.Wall)):F2} | {Med(ours[v].Select(m => m.Cpu)) / row.Members * 1000:F3} |");
    }

    return sb.ToString();
}

// A post to a list with 30% of its members at one destination paced to 60 copies a minute (as a
// provider's throttle would hold it): warm, timed until the other 70% are at the sink, against
// smtp-source sending that many. The daemon is then stopped; the paced rest stays queued.
static string ThrottledTable(EndToEnd e2e, int pairs, int members)
{
    var sb = new StringBuilder();
    sb.AppendLine("| row | copies timed | ours warm (s) | smtp-source -d -s 8 (s) | ratio | CPU ms/copy |");
    sb.AppendLine("|---|---|---|---|---|---|");
    var row = new Row($"10 KB, {members:N0} members, 30% at one destination paced to 60/min", 10 * 1024, false, 500, 0, members);
    var others = members - members * 3 / 10;
    var list = Workloads.Members(others).Concat(Workloads.Members(members * 3 / 10).Select(m => m.Replace("@example.com", "@throttled.example", StringComparison.Ordinal)))
        .OrderBy(m => m.GetHashCode(StringComparison.Ordinal)).ToList();
    var post = Workloads.Post(row);
    var extra = new Dictionary<string, string> { ["Mailman__Smtp__Destinations__throttled.example__MaxPerMinute"] = "60" };
    var ours = new List<Measurement>();
    var theirs = new List<Measurement>();
    for (var i = 0; i < pairs; i++)
    {
        ours.Add(e2e.Warm(row, e2e.Instance(row, list, "row"), post, others, extra, stopAtExpected: true));
        theirs.Add(e2e.SmtpSource(post.Length, others));
        Console.Error.WriteLine($"   throttled pair {i + 1}: ours {ours[^1].Wall:F2}s, smtp-source {theirs[^1].Wall:F2}s");
    }

    static double Med(IEnumerable<double> xs) => xs.Order().ElementAt(xs.Count() / 2);
    sb.AppendLine(CultureInfo.InvariantCulture,
        $"| {row.Name} | {others:N0} | {Med(ours.Select(m => m.Wall)):F2} | {Med(theirs.Select(m => m.Wall)):F2} | {Med(ours.Zip(theirs, (a, b) => a.Wall / b.Wall)):F2} | {Med(ours.Select(m => m.Cpu)) / others * 1000:F3} |");
    return sb.ToString();
}

/// <summary>Runs the baseline against its own smtp-sink.</summary>
internal sealed class TcpSinkForBaseline
{
    public (TimeSpan, TimeSpan) Run(byte[] post, IReadOnlyList<string> recipients)
    {
        var port = Mailman.TestSupport.Net.FreePort();
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/sbin/smtp-sink") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-u", "root", $"127.0.0.1:{port}", "1024" })
        {
            psi.ArgumentList.Add(a);
        }

        using var sink = System.Diagnostics.Process.Start(psi)!;
        try
        {
            for (var tries = 0; ; tries++)
            {
                try
                {
                    return Baseline.Run(post, recipients, port);
                }
                catch (System.Net.Sockets.SocketException) when (tries < 50)
                {
                    Thread.Sleep(20);
                }
            }
        }
        finally
        {
            sink.Kill();
        }
    }
}

/// <summary>Publishes src/Mailman as a list server deploys it: Native AOT (needs clang), else ReadyToRun.</summary>
internal static class Publish
{
    public static string? Deployed(string work, out string kind)
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Mailman.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        kind = "build output";
        if (dir is null)
        {
            return null;
        }

        var project = Path.Combine(dir, "src", "Mailman");
        var aot = Path.Combine(work, "publish-aot");
        if (Run(["publish", project, "-c", "Release", "-r", "linux-x64", "-o", aot]))
        {
            kind = "Native AOT publish";
            return Path.Combine(aot, "mailman");
        }

        var r2r = Path.Combine(work, "publish");
        if (Run(["publish", project, "-c", "Release", "-r", "linux-x64", "--self-contained", "false", "-p:PublishAot=false", "-p:PublishReadyToRun=true", "-o", r2r]))
        {
            kind = "ReadyToRun publish";
            return Path.Combine(r2r, "mailman.dll");
        }

        return null;
    }

    private static bool Run(string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = System.Diagnostics.Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var log = p.StandardOutput.ReadToEnd() + stderr.Result;
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            Console.Error.WriteLine($"dotnet {string.Join(' ', args)} failed:\n{log}");
        }

        return p.ExitCode == 0;
    }
}
