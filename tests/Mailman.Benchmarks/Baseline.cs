// The Mailman 2.1 way, for the table's baseline column: for every recipient, copy the parsed
// message (re-parse the post), set To:, append the footer, and send it through MailKit on one
// connection (with TCP_NODELAY, so the column measures the copying, not Nagle).
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MailKit.Net.Smtp;
using MimeKit;

namespace Mailman.Benchmarks;

public static class Baseline
{
    public static (TimeSpan Wall, TimeSpan Cpu) Run(byte[] post, IReadOnlyList<string> recipients, int port)
    {
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        using var client = new SmtpClient();
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Connect(new IPEndPoint(IPAddress.Loopback, port));
        client.Connect(socket, "127.0.0.1", port, MailKit.Security.SecureSocketOptions.None);
        foreach (var rcpt in recipients)
        {
            var copy = MimeMessage.Load(new MemoryStream(post, writable: false));
            copy.To.Clear();
            copy.To.Add(MailboxAddress.Parse(rcpt));
            var footer = "_______________________________________________\nbench mailing list\nsent to " + rcpt + "\n";
            if (copy.Body is TextPart text)
            {
                text.Text += footer;
            }
            else
            {
                copy.Body = new Multipart("mixed") { copy.Body!, new TextPart("plain") { Text = footer } };
            }

            var at = rcpt.IndexOf('@', StringComparison.Ordinal);
            var verp = $"bench-bounces+{rcpt[..at]}={rcpt[(at + 1)..]}@example.org";
            client.Send(copy, MailboxAddress.Parse(verp), [MailboxAddress.Parse(rcpt)]);
        }

        client.Disconnect(true);
        process.Refresh();
        return (watch.Elapsed, process.TotalProcessorTime - cpu);
    }
}
