// A private, real Postfix on loopback: its own configuration, queue and data directories under
// a temp folder, a non-standard port, mail for other domains relayed to a test SMTP server.
// Started with `postfix -c DIR start`, stopped on dispose; never the system MTA.
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Mailman.TestSupport;

public sealed class PostfixInstance : IDisposable
{
    private PostfixInstance(string root, int port)
    {
        Root = root;
        Port = port;
    }

    public string Root { get; }

    public string ConfigDirectory => Path.Combine(Root, "etc");

    public string MailLog => Path.Combine(Root, "maillog");

    public int Port { get; }

    public static bool IsInstalled => File.Exists("/usr/sbin/postfix");

    /// <summary>Configures Postfix; <paramref name="mainCf"/> and <paramref name="masterCf"/> are appended (mailman's snippets). Call <see cref="Start"/> next.</summary>
    /// <param name="implicitTls">smtpd speaks TLS from the first byte (smtpd_tls_wrappermode, as on port 465).</param>
    public static PostfixInstance Create(int relayPort, string mainCf, string masterCf, bool implicitTls = false)
    {
        var root = Path.Combine(Path.GetTempPath(), "mailman-postfix-" + Guid.NewGuid().ToString("N")[..10]);
        foreach (var d in new[] { "etc", "spool", "data" })
        {
            Directory.CreateDirectory(Path.Combine(root, d));
        }

        var port = Net.FreePort();
        var instance = new PostfixInstance(root, port);
        File.WriteAllText(Path.Combine(root, "etc", "main.cf"), $"""
            compatibility_level = 3.6
            queue_directory = {root}/spool
            data_directory = {root}/data
            mail_owner = postfix
            setgid_group = postdrop
            inet_interfaces = 127.0.0.1
            inet_protocols = ipv4
            myhostname = postfix-test.localdomain
            mydestination =
            mynetworks = 127.0.0.0/8
            local_recipient_maps =
            alias_maps =
            alias_database =
            relayhost = [127.0.0.1]:{relayPort}
            smtp_tls_security_level = none
            smtpd_tls_security_level = none
            maillog_file = {root}/maillog
            maillog_file_prefixes = {root}
            delay_warning_time = 0
            queue_run_delay = 1s
            minimal_backoff_time = 1s
            maximal_backoff_time = 2s
            {mainCf}
            """);
        File.WriteAllText(Path.Combine(root, "etc", "master.cf"), $"""
            127.0.0.1:{port} inet n - n - - smtpd{(implicitTls ? " -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt" : "")}
            pickup    unix  n       -       n       60      1       pickup
            cleanup   unix  n       -       n       -       0       cleanup
            qmgr      unix  n       -       n       300     1       qmgr
            rewrite   unix  -       -       n       -       -       trivial-rewrite
            bounce    unix  -       -       n       -       0       bounce
            defer     unix  -       -       n       -       0       bounce
            trace     unix  -       -       n       -       0       bounce
            verify    unix  -       -       n       -       1       verify
            flush     unix  n       -       n       1000?   0       flush
            proxymap  unix  -       -       n       -       -       proxymap
            smtp      unix  -       -       n       -       -       smtp
            relay     unix  -       -       n       -       -       smtp
            lmtp      unix  -       -       n       -       -       lmtp
            showq     unix  n       -       n       -       -       showq
            error     unix  -       -       n       -       -       error
            retry     unix  -       -       n       -       -       error
            discard   unix  -       -       n       -       -       discard
            anvil     unix  -       -       n       -       1       anvil
            scache    unix  -       -       n       -       1       scache
            postlog   unix-dgram n  -       n       -       1       postlogd
            {masterCf}
            """);
        Run("chown", "postfix", Path.Combine(root, "data"));
        return instance;
    }

    public void Start()
    {
        Postfix("start");
        Wait.Until(() => Net.CanConnect(Port), TimeSpan.FromSeconds(30), "Postfix to listen");
    }

    /// <summary>Runs postmap -c on a map file.</summary>
    public void Postmap(string file) => Check(Run("postmap", "-c", ConfigDirectory, "hash:" + file), "postmap");

    /// <summary>The queue as `postqueue -j` reports it: one JSON object a line.</summary>
    public string Queue() => RunOutput("postqueue", "-c", ConfigDirectory, "-j");

    public string Log() => File.Exists(MailLog) ? File.ReadAllText(MailLog) : "";

    /// <summary>
    /// Sends <paramref name="message"/> to this Postfix's smtpd. A failure (once in CI the reply
    /// to DATA never came, and MailKit waited its 2 minutes) is thrown with what the instance was
    /// doing: its processes and their wait channels, its queue and its log's tail.
    /// </summary>
    public void Submit(MimeKit.MimeMessage message)
    {
        using var client = new MailKit.Net.Smtp.SmtpClient { Timeout = 60_000 };
        try
        {
            client.Connect("127.0.0.1", Port, MailKit.Security.SecureSocketOptions.None);
            client.Send(message);
            client.Disconnect(true);
        }
        catch (Exception e) when (e is IOException or MailKit.ProtocolException or MailKit.Net.Smtp.SmtpCommandException or SocketException or TimeoutException or OperationCanceledException)
        {
            throw new InvalidOperationException($"{this} did not take {message.MessageId}: {e.Message}\n{Diagnostics()}", e);
        }
    }

    /// <summary>The instance's processes (state, wait channel, command), its queue and the last 80 lines of its log.</summary>
    public string Diagnostics()
    {
        var lines = new List<string> { "processes (pid state wchan command):" };
        var master = MasterPid();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || master is null || (pid != master && ParentOf(dir) != master))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
                var wchan = File.ReadAllText(Path.Combine(dir, "wchan"));
                var cmd = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim();
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"  {pid} {state} {wchan} {cmd}"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone meanwhile
            }
        }

        lines.Add("queue: " + RunOutput("postqueue", "-c", ConfigDirectory, "-p").Trim());
        var log = Log().Split('\n');
        lines.Add("log tail:");
        lines.AddRange(log[Math.Max(0, log.Length - 80)..]);
        return string.Join('\n', lines);
    }

    public void Dispose()
    {
        // Stopped within a bound: once postlogd wedged on its own full socket (a send to
        // public/postlog from postlogd itself, seen once on this machine) and `postfix stop`
        // waited on it for good. Then the stop and the instance's processes are killed.
        if (Run("postfix", TimeSpan.FromSeconds(30), "-c", ConfigDirectory, "stop") is null)
        {
            KillInstance();
        }

        try
        {
            Directory.Delete(Root, true);
        }
        catch (IOException)
        {
        }
    }

    private void Postfix(string verb)
    {
        var code = Run("postfix", "-c", ConfigDirectory, verb);
        Check(code, $"postfix {verb} (log: {Log()})");
    }

    private static void Check(int code, string what)
    {
        if (code != 0)
        {
            throw new InvalidOperationException($"{what} failed with exit code {code}");
        }
    }

    public static int Run(string file, params string[] args) => Run(file, Timeout.InfiniteTimeSpan, args)!.Value;

    /// <summary>Runs <paramref name="file"/>; null when it did not end within <paramref name="limit"/> (it and its children are killed).</summary>
    public static int? Run(string file, TimeSpan limit, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return null;
        }

        p.WaitForExit();
        Task.WaitAll(output, error);
        return p.ExitCode;
    }

    // Every process of this instance: its master (whose pid file names it) and the master's
    // children, by SIGKILL. The pid file is read by cat: a live master holds flock(2) LOCK_EX on
    // it, and .NET's own open takes LOCK_SH and fails ("being used by another process"), which
    // left the instance running and, thrown from Dispose, hid the test's own failure (CI).
    private void KillInstance()
    {
        if (MasterPid() is not { } master)
        {
            return;
        }

        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && (pid == master || ParentOf(dir) == master))
            {
                Run("kill", "-9", pid.ToString(CultureInfo.InvariantCulture));
            }
        }
    }

    private int? MasterPid()
    {
        var pidFile = Path.Combine(Root, "spool", "pid", "master.pid");
        return File.Exists(pidFile) && int.TryParse(RunOutput("cat", pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var master) ? master : null;
    }

    private static int? ParentOf(string procDir)
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(procDir, "stat"));
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[1], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    private static string RunOutput(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // Within a bound: a wedged instance (Diagnostics' very case) can keep postqueue waiting.
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(20)))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return $"({file} did not end within 20 s)";
        }

        return output.GetAwaiter().GetResult();
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"postfix on 127.0.0.1:{Port} ({Root})");
}
