// dnsmasq as a private authoritative server on a loopback port: TXT records from the test, its
// own configuration only (no resolv.conf, no hosts file), NXDOMAIN for anything else under the
// given zones, every query logged so tests can count lookups. Killed on dispose. In the
// foreground with -k, not -d: in debug mode dnsmasq serves TCP in its one process, and a client
// that keeps its TCP connection open (DnsClient pools them) would starve every UDP query.
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Mailman.TestSupport;

public sealed class DnsServer : IDisposable
{
    public const string Binary = "/usr/sbin/dnsmasq";
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private DnsServer(Process process, int port)
    {
        _process = process;
        Port = port;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_log)
                {
                    _log.AppendLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
    }

    public int Port { get; }

    /// <summary>For Mailman:Dns:Servers.</summary>
    public string Endpoint => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    public static bool IsInstalled => File.Exists(Binary);

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>How many TXT queries for <paramref name="name"/> reached the server.</summary>
    public int QueriesFor(string name)
        => Log.Split('\n').Count(l => l.Contains("query[TXT] " + name + " ", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Starts dnsmasq serving <paramref name="txt"/> (name, text; any length: dnsmasq splits it into
    /// 255-byte strings) with <paramref name="ttl"/>, authoritative (NXDOMAIN) under <paramref name="zones"/>.
    /// </summary>
    /// <param name="mx">MX records: (domain, exchange host, preference).</param>
    public static DnsServer Start(IEnumerable<(string Name, string Text)> txt, IEnumerable<string> zones, int ttl = 300, IEnumerable<(string Domain, string Host, int Preference)>? mx = null)
    {
        if (!IsInstalled)
        {
            throw new InvalidOperationException($"{Binary} is missing: apt-get install dnsmasq-base (see .ci/run)");
        }

        var records = txt.ToList();
        if (records.FirstOrDefault(r => r.Text.Contains(',', StringComparison.Ordinal) || r.Text.Contains('"', StringComparison.Ordinal)) is { Name: not null } bad)
        {
            // On its command line dnsmasq splits a value at commas and keeps quotes; its
            // configuration file unquotes, but cannot hold a line of 60 KB.
            throw new ArgumentException($"TXT record for {bad.Name}: no commas or quotes on dnsmasq's command line");
        }

        for (var attempt = 0; ; attempt++)
        {
            var port = Net.FreePort();
            var psi = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[]
            {
                "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--listen-address=127.0.0.1", "--bind-interfaces",
                $"--port={port}", $"--user={Environment.UserName}", "--log-queries", "--log-facility=-", "--cache-size=0",
                string.Create(CultureInfo.InvariantCulture, $"--local-ttl={ttl}"), "--pid-file=",
            })
            {
                psi.ArgumentList.Add(a);
            }

            foreach (var zone in zones)
            {
                psi.ArgumentList.Add($"--local=/{zone}/");
            }

            foreach (var (name, text) in records)
            {
                psi.ArgumentList.Add($"--txt-record={name},{text}");
            }

            foreach (var (domain, host, preference) in mx ?? [])
            {
                psi.ArgumentList.Add(string.Create(CultureInfo.InvariantCulture, $"--mx-host={domain},{host},{preference}"));
            }

            var process = Process.Start(psi)!;
            var server = new DnsServer(process, port);
            try
            {
                Wait.Until(() => process.HasExited || server.Log.Contains("started", StringComparison.Ordinal) && Net.CanConnect(port), TimeSpan.FromSeconds(20), "dnsmasq to listen");
            }
            catch (TimeoutException)
            {
                server.Dispose();
                throw;
            }

            if (!process.HasExited)
            {
                return server;
            }

            var log = server.Log;
            server.Dispose();
            if (attempt >= 4 || !log.Contains("in use", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException("dnsmasq exited: " + log);
            }
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }
}
