// Postfix's smtp-sink on an ephemeral loopback port, with its -D dump parsed into transactions.
// Fault options (-r/-f/-q/-Q/-w) pass through, so tests can make the server misbehave for real.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Mailman.TestSupport;

/// <summary>One transaction as smtp-sink recorded it.</summary>
public sealed record SinkMessage(string MailFrom, IReadOnlyList<string> Recipients, byte[] Content)
{
    public string Text => Encoding.UTF8.GetString(Content);

    /// <summary>The header block of the message as received (without smtp-sink's own records).</summary>
    public string Headers => Text[..Math.Max(0, Text.IndexOf("\n\n", StringComparison.Ordinal))];

    // (The last transaction of a dump being written may have no blank line yet: no body.)
    public string Body => Text.IndexOf("\n\n", StringComparison.Ordinal) is >= 0 and var blank ? Text[(blank + 2)..] : "";

    public string? Header(string name)
    {
        foreach (var line in Unfold(Headers))
        {
            if (line.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))
            {
                return line[(name.Length + 1)..].Trim();
            }
        }

        return null;
    }

    private static IEnumerable<string> Unfold(string headers)
    {
        var current = new StringBuilder();
        foreach (var line in headers.Split('\n'))
        {
            if (line.Length > 0 && (line[0] == ' ' || line[0] == '\t'))
            {
                current.Append(' ').Append(line.Trim());
                continue;
            }

            if (current.Length > 0)
            {
                yield return current.ToString();
            }

            current.Clear().Append(line);
        }

        if (current.Length > 0)
        {
            yield return current.ToString();
        }
    }
}

public sealed class SmtpSink : IDisposable
{
    public const string Binary = "/usr/sbin/smtp-sink";
    private const string Marker = "=====MAILMAN-SINK-MESSAGE=====";
    private readonly Process _process;
    private readonly string _dir;

    private SmtpSink(Process process, string dir, int port)
    {
        _process = process;
        _dir = dir;
        Port = port;
    }

    public int Port { get; }

    public string DumpFile => Path.Combine(_dir, "dump");

    public static bool IsInstalled => File.Exists(Binary);

    /// <summary>Starts smtp-sink; <paramref name="faults"/> are extra options such as "-r", "RCPT".</summary>
    public static SmtpSink Start(params string[] faults) => StartOn(Net.FreePort(), faults);

    /// <summary>Starts smtp-sink on a given loopback port.</summary>
    public static SmtpSink StartOn(int port, params string[] faults)
    {
        if (!IsInstalled)
        {
            throw new InvalidOperationException($"{Binary} is missing: apt-get install postfix (see .ci/run)");
        }

        var dir = Path.Combine(Path.GetTempPath(), "mailman-sink-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        var psi = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-u", "root", "-D", Path.Combine(dir, "dump"), "-S", "\\n" + Marker + "\\n" }.Concat(faults))
        {
            psi.ArgumentList.Add(a);
        }

        psi.ArgumentList.Add($"127.0.0.1:{port}");
        psi.ArgumentList.Add("256");
        var process = Process.Start(psi)!;
        var sink = new SmtpSink(process, dir, port);
        Wait.Until(() => process.HasExited || Net.CanConnect(port), TimeSpan.FromSeconds(20), "smtp-sink to listen");
        if (process.HasExited)
        {
            throw new InvalidOperationException("smtp-sink exited: " + process.StandardError.ReadToEnd());
        }

        return sink;
    }

    /// <summary>Every complete transaction in the dump so far.</summary>
    public IReadOnlyList<SinkMessage> Messages()
    {
        if (!File.Exists(DumpFile))
        {
            return [];
        }

        byte[] bytes;
        using (var f = new FileStream(DumpFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            bytes = new byte[f.Length];
            f.ReadExactly(bytes);
        }

        var marker = Encoding.ASCII.GetBytes("\n" + Marker + "\n");
        var result = new List<SinkMessage>();
        var starts = new List<int>();
        var span = bytes.AsSpan();
        for (var at = 0; ;)
        {
            var i = span[at..].IndexOf(marker);
            if (i < 0)
            {
                break;
            }

            starts.Add(at + i + marker.Length);
            at += i + marker.Length;
        }

        for (var n = 0; n < starts.Count; n++)
        {
            var end = n + 1 < starts.Count ? starts[n + 1] - marker.Length : bytes.Length;
            result.Add(Parse(bytes.AsSpan(starts[n], end - starts[n])));
        }

        return result;
    }

    /// <summary>Waits until the dump holds at least <paramref name="count"/> transactions.</summary>
    public IReadOnlyList<SinkMessage> WaitFor(int count, TimeSpan? timeout = null)
    {
        IReadOnlyList<SinkMessage> messages = [];
        Wait.Until(() => (messages = Messages()).Count >= count, timeout ?? TimeSpan.FromSeconds(60), $"{count} messages at the sink");
        return messages;
    }

    /// <summary>SIGKILL, as a relay that dies: what it dumped stays readable until Dispose.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
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
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }

    private static SinkMessage Parse(ReadOnlySpan<byte> raw)
    {
        // smtp-sink's own records come first, then a Received: header, then the message as sent.
        var text = Encoding.UTF8.GetString(raw);
        var mailFrom = "";
        var rcpts = new List<string>();
        var offset = 0;
        while (offset < text.Length)
        {
            var nl = text.IndexOf('\n', offset);
            if (nl < 0)
            {
                break;
            }

            var line = text[offset..nl];
            if (line.StartsWith("X-Mail-Args: ", StringComparison.Ordinal))
            {
                mailFrom = line[13..].Split(' ')[0].Trim('<', '>');
            }
            else if (line.StartsWith("X-Rcpt-Args: ", StringComparison.Ordinal))
            {
                rcpts.Add(line[13..].Split(' ')[0].Trim('<', '>'));
            }
            else if (!line.StartsWith("X-", StringComparison.Ordinal))
            {
                break;
            }

            offset = nl + 1;
        }

        // Skip the Received: header smtp-sink adds (with its continuation lines).
        if (text.AsSpan(offset).StartsWith("Received:"))
        {
            var nl = text.IndexOf('\n', offset);
            while (nl >= 0 && nl + 1 < text.Length && (text[nl + 1] == ' ' || text[nl + 1] == '\t'))
            {
                nl = text.IndexOf('\n', nl + 1);
            }

            offset = nl + 1;
        }

        var byteOffset = Encoding.UTF8.GetByteCount(text.AsSpan(0, offset));
        var content = raw[byteOffset..].ToArray();
        return new SinkMessage(mailFrom, rcpts, content);
    }


}
