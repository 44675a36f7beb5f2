// The connection to a relay secured and authenticated for real: STARTTLS and implicit TLS with a
// certificate the test makes, trusted through a pinned CA file or fingerprint and refused when it
// chains elsewhere or has expired (a private Postfix with smtpd_tls_security_level = encrypt), AUTH
// against a server that requires it (SmtpServer in-process); the socket stays blocking under TLS
// and the body of a copy goes through the TLS session, never beside it.
using System.Globalization;
using System.Text;
using Mailman.Delivery;
using Mailman.Delivery.Smtp;
using Mailman.Instance;
using Mailman.Queues;
using Mailman.TestSupport;

namespace Mailman.Tests.Delivery;

public sealed class SmtpSecurityTests : IDisposable
{
    private readonly TestCertificates _certs = TestCertificates.Create();

    public void Dispose() => _certs.Dispose();

    private static Relay RelayFor(int port, string security, string caFile = "", string fingerprint = "", string user = "", string passwordFile = "")
    {
        var options = new SmtpOptions
        {
            Host = "127.0.0.1",
            Port = port,
            Security = security,
            CaFile = caFile,
            Fingerprint = fingerprint,
            User = user,
            PasswordFile = passwordFile,
            TimeoutSeconds = 20,
        };
        new MailmanOptions { Smtp = options, Pipeline = { Handlers = ["member-recipients"] }, Moderation = { Chain = ["approved"] } }.Validate();
        return Assert.Single(Relay.Resolve(options));
    }

    // A pool entry without a port: implicit TLS means 465 (its own or the inherited Security), anything else 25.
    [Theory]
    [InlineData("tls", "none", 465)]
    [InlineData("", "tls", 465)]
    [InlineData("starttls", "none", 25)]
    [InlineData("", "none", 25)]
    public void A_relay_address_without_a_port_takes_the_port_of_its_security(string relaySecurity, string smtpSecurity, int expected)
    {
        var options = new SmtpOptions { Security = smtpSecurity, Relays = [new RelayOptions { Address = "mx.example.org", Security = relaySecurity }] };
        new MailmanOptions { Smtp = options, Pipeline = { Handlers = ["member-recipients"] }, Moderation = { Chain = ["approved"] } }.Validate();
        Assert.Equal(expected, Assert.Single(Relay.Resolve(options)).Port);

        // The start line names the port it took (review 53: "SMTP mx.example.org").
        Assert.Equal($"mx.example.org:{expected}", Assert.Single(options.RelayNames()));
    }

    // How a pool entry trusts the certificate comes whole: its own pin is not also held to a
    // CaFile from above (which it would then silently ignore), and an entry without either inherits both.
    [Fact]
    public void A_pool_entrys_own_pin_or_CA_replaces_the_inherited_trust_as_a_whole()
    {
        var pin = new string('a', 64);
        var options = new SmtpOptions
        {
            Security = "starttls",
            CaFile = "/etc/ssl/ca.pem",
            Relays = [new RelayOptions { Address = "a.example:25", Fingerprint = pin }, new RelayOptions { Address = "b.example:25" }],
        };
        new MailmanOptions { Smtp = options, Pipeline = { Handlers = ["member-recipients"] }, Moderation = { Chain = ["approved"] } }.Validate();
        var effective = options.EffectiveRelays();
        Assert.Equal(("", pin), (effective[0].CaFile, effective[0].Fingerprint));
        Assert.Equal(("/etc/ssl/ca.pem", ""), (effective[1].CaFile, effective[1].Fingerprint));

        // Both on one entry: refused, naming the entry.
        options.Relays[1].CaFile = "/etc/ssl/other.pem";
        options.Relays[1].Fingerprint = pin;
        var e = Assert.Throws<InvalidOperationException>(() => new MailmanOptions { Smtp = options, Pipeline = { Handlers = ["member-recipients"] }, Moderation = { Chain = ["approved"] } }.Validate());
        Assert.Contains("Mailman:Smtp:Relays:1:CaFile and Mailman:Smtp:Relays:1:Fingerprint are both set", e.Message, StringComparison.Ordinal);

        // Both above the pool, or a malformed pin there, are refused even when every entry has its own.
        options.Relays[1].Fingerprint = "";
        options.Fingerprint = pin;
        e = Assert.Throws<InvalidOperationException>(() => new MailmanOptions { Smtp = options, Pipeline = { Handlers = ["member-recipients"] }, Moderation = { Chain = ["approved"] } }.Validate());
        Assert.Contains("Mailman:Smtp:CaFile and Mailman:Smtp:Fingerprint are both set", e.Message, StringComparison.Ordinal);
        options.CaFile = "";
        options.Fingerprint = "zz";
        e = Assert.Throws<InvalidOperationException>(() => new MailmanOptions { Smtp = options, Pipeline = { Handlers = ["member-recipients"] }, Moderation = { Chain = ["approved"] } }.Validate());
        Assert.Contains("Mailman:Smtp:Fingerprint must be a SHA-256 fingerprint", e.Message, StringComparison.Ordinal);

        // An inherited CA with an entry's own Security none: the message names where each came from.
        options.Fingerprint = "";
        options.CaFile = "/etc/ssl/ca.pem";
        options.Relays[1].CaFile = "";
        options.Relays[1].Security = "none";
        e = Assert.Throws<InvalidOperationException>(() => new MailmanOptions { Smtp = options, Pipeline = { Handlers = ["member-recipients"] }, Moderation = { Chain = ["approved"] } }.Validate());
        Assert.Contains("Mailman:Smtp:CaFile is set with Mailman:Smtp:Relays:1:Security none (for b.example:25)", e.Message, StringComparison.Ordinal);
    }

    private static (bool Delivered, string? Error) SendOne(Relay relay, byte[] message, out SmtpConnection connection)
    {
        var post = PreparedPost.Create(message, null);
        connection = new SmtpConnection(relay, new SmtpOptions { TimeoutSeconds = 60 });
        var carrier = new Carrier(post);
        carrier.SetRecipient(null);
        var result = new TransactionResult();
        try
        {
            connection.Send(carrier.Message, "dev-bounces@example.org", [new Recipient("ann@example.com", "")], result);
            connection.Complete(); // pipelined: the reply to the end of data comes with the next copy, or now
            return (result.Delivered.Count == 1, result.Deferred.Select(d => d.Response).FirstOrDefault());
        }
        catch (SmtpConnectException e)
        {
            return (false, e.Message);
        }
    }

    // Twice in CI (ci32, ci41) this Postfix's smtpd did not answer MAIL FROM for a minute and
    // `postfix stop` then hung: what each of its processes waits on says where it stuck.
    private static void AssertDelivered(bool delivered, string? error, PostfixInstance postfix)
    {
        if (!delivered)
        {
            Assert.Fail(error + "\n" + postfix.Diagnostics());
        }
    }

    private PostfixInstance StartTlsPostfix(int relayPort, string certFile, string keyFile, string level = "encrypt")
    {
        var postfix = PostfixInstance.Create(relayPort, $"""
            smtpd_tls_security_level = {level}
            smtpd_tls_cert_file = {certFile}
            smtpd_tls_key_file = {keyFile}
            smtpd_tls_loglevel = 1
            """, "tlsmgr    unix  -       -       n       1000?   1       tlsmgr");
        postfix.Start();
        return postfix;
    }

    private static byte[] Message(string body = "hello over TLS\r\n")
        => Encoding.ASCII.GetBytes("From: a@example.com\r\nTo: dev@example.org\r\nSubject: tls\r\n\r\n" + body);

    [Fact]
    public void STARTTLS_to_Postfix_with_the_pinned_CA_delivers_through_the_TLS_session_and_the_socket_stays_blocking()
    {
        using var sink = SmtpSink.Start();
        using var postfix = StartTlsPostfix(sink.Port, _certs.ServerCertFile, _certs.ServerKeyFile);
        var (delivered, error) = SendOne(RelayFor(postfix.Port, "starttls", _certs.CaFile), Message(), out var connection);
        using (connection)
        {
            AssertDelivered(delivered, error, postfix);
            Assert.True(connection.IsSecure);
            Assert.True(connection.BodyOnTlsStream);
            Assert.Equal(0, SmtpConnectTests.FileStatusFlags(connection.Socket!) & 0x800);
        }

        Assert.Contains("hello over TLS", Assert.Single(sink.WaitFor(1)).Body, StringComparison.Ordinal);
        Assert.Contains("TLS connection established from", postfix.Log(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("other CA", "does not chain to CaFile")]
    [InlineData("expired", "not valid now")]
    [InlineData("wrong fingerprint", "not the pinned one")]
    [InlineData("wrong name", "does not name the relay host")]
    [InlineData("wrong name, system store", "does not name the relay host, and is not trusted by the system store")] // review 67: only the name was said
    public void A_certificate_that_fails_its_check_is_refused_and_nothing_is_sent_in_clear(string kind, string why)
    {
        using var sink = SmtpSink.Start();
        var (cert, key) = kind switch
        {
            "expired" => (_certs.ExpiredCertFile, _certs.ExpiredKeyFile),
            "wrong name" or "wrong name, system store" => (_certs.WrongNameCertFile, _certs.WrongNameKeyFile),
            _ => (_certs.ServerCertFile, _certs.ServerKeyFile),
        };
        using var postfix = StartTlsPostfix(sink.Port, cert, key, level: "may");
        var relay = kind switch
        {
            "other CA" => RelayFor(postfix.Port, "starttls", _certs.OtherCaFile),
            "expired" or "wrong name" => RelayFor(postfix.Port, "starttls", _certs.CaFile),
            "wrong name, system store" => RelayFor(postfix.Port, "starttls"),
            _ => RelayFor(postfix.Port, "starttls", fingerprint: new string('a', 64)),
        };

        var (delivered, error) = SendOne(relay, Message(), out var connection);
        connection.Dispose();

        Assert.False(delivered);
        Assert.Contains(why, error, StringComparison.Ordinal);
        Assert.Empty(sink.Messages());
        Assert.DoesNotContain("MAIL FROM", postfix.Log(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void A_pinned_fingerprint_is_trusted_without_a_CA_and_required_STARTTLS_refuses_a_server_without_it()
    {
        using var sink = SmtpSink.Start();
        using (var postfix = StartTlsPostfix(sink.Port, _certs.ServerCertFile, _certs.ServerKeyFile))
        {
            var fingerprint = string.Join(':', RelayTrust.FingerprintOf(_certs.Server).Chunk(2).Select(c => new string(c)));
            var (delivered, error) = SendOne(RelayFor(postfix.Port, "starttls", fingerprint: fingerprint), Message(), out var connection);
            connection.Dispose();
            AssertDelivered(delivered, error, postfix);
        }

        // The pin is the identity (Postfix's fingerprint level): a certificate for another name is
        // accepted when it is the pinned one, as a relay reached by its address has.
        using (var postfix = StartTlsPostfix(sink.Port, _certs.WrongNameCertFile, _certs.WrongNameKeyFile))
        {
            var (delivered, error) = SendOne(RelayFor(postfix.Port, "starttls", fingerprint: RelayTrust.FingerprintOf(_certs.WrongName)), Message(), out var connection);
            connection.Dispose();
            AssertDelivered(delivered, error, postfix);
        }

        // smtp-sink offers no STARTTLS: required refuses, opportunistic goes plain.
        var (refused, why) = SendOne(RelayFor(sink.Port, "starttls", _certs.CaFile), Message(), out var c1);
        c1.Dispose();
        Assert.False(refused);
        Assert.Contains("offers no STARTTLS", why, StringComparison.Ordinal);
        var (plain, _) = SendOne(RelayFor(sink.Port, "opportunistic"), Message(), out var c2);
        c2.Dispose();
        Assert.True(plain);

        // Implicit TLS to a server that speaks plain text: said as that, not as a certificate problem.
        var (implicitTls, whyTls) = SendOne(RelayFor(sink.Port, "tls", _certs.CaFile), Message(), out var c3);
        c3.Dispose();
        Assert.False(implicitTls);
        Assert.Contains("TLS handshake failed (", whyTls, StringComparison.Ordinal);
        Assert.Contains("a server that greets in plain text and offers STARTTLS needs starttls", whyTls, StringComparison.Ordinal);
        Assert.DoesNotContain("certificate", whyTls, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("tls")]
    [InlineData("starttls")]
    public void A_multi_megabyte_copy_with_dot_lines_arrives_intact_over_TLS(string security)
    {
        using var sink = SmtpSink.Start();
        var mainCf = security == "tls" ? "" : "smtpd_tls_security_level = encrypt\n";
        using var postfix = PostfixInstance.Create(sink.Port, $"""
            {mainCf}smtpd_tls_cert_file = {_certs.ServerCertFile}
            smtpd_tls_key_file = {_certs.ServerKeyFile}
            smtpd_tls_loglevel = 1
            """, "tlsmgr    unix  -       -       n       1000?   1       tlsmgr", implicitTls: security == "tls");
        postfix.Start();
        var body = DotBody(3_000_000);

        var (delivered, error) = SendOne(RelayFor(postfix.Port, security, _certs.CaFile), Message(body), out var connection);
        using (connection)
        {
            AssertDelivered(delivered, error, postfix);
            Assert.True(connection.IsSecure);
            Assert.True(connection.BodyOnTlsStream);
        }

        // smtp-sink's dump is written as the data arrives: wait for all of it.
        var expected = body.Replace("\r\n", "\n", StringComparison.Ordinal);
        var received = Wait.For(() => sink.Messages() is [var m] && m.Body.Length >= expected.Length ? m : null, TimeSpan.FromSeconds(90), "the whole copy at the sink");
        Assert.Equal(expected, received.Body.TrimEnd('\n') + "\n");
    }

    [Fact]
    public void AUTH_over_STARTTLS_is_accepted_with_the_right_password_and_a_wrong_one_is_a_relay_refusal()
    {
        using var server = ScriptedSmtpServer.Start(certificate: _certs.Server, users: new Dictionary<string, string> { ["lists"] = "s3cret-pw" });
        var good = Path.Combine(_certs.Directory, "good.pw");
        var bad = Path.Combine(_certs.Directory, "bad.pw");
        File.WriteAllText(good, "s3cret-pw\n", System.Text.Encoding.UTF8); // with a byte-order mark, as Notepad writes: not part of the password
        File.WriteAllText(bad, "wrong-pw\n");
        File.SetUnixFileMode(good, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.SetUnixFileMode(bad, UnixFileMode.UserRead);

        var (delivered, error) = SendOne(RelayFor(server.Port, "starttls", _certs.CaFile, user: "lists", passwordFile: good), Message(), out var c1);
        c1.Dispose();
        Assert.True(delivered, error);
        var received = Assert.Single(server.Received);
        Assert.Equal("lists", received.User);
        Assert.True(received.Secure);

        var (refused, why) = SendOne(RelayFor(server.Port, "starttls", _certs.CaFile, user: "lists", passwordFile: bad), Message(), out var c2);
        c2.Dispose();
        Assert.False(refused);
        Assert.Contains("AUTH as lists refused", why, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-pw", why, StringComparison.Ordinal);
        Assert.Single(server.Received);
        Assert.Contains(("lists", false), server.AuthAttempts);
    }

    [Fact]
    public void Opportunistic_never_sends_the_password_over_a_plain_connection()
    {
        using var sink = SmtpSink.Start();
        var pw = Path.Combine(_certs.Directory, "pw");
        File.WriteAllText(pw, "pw\n");
        File.SetUnixFileMode(pw, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var (delivered, why) = SendOne(RelayFor(sink.Port, "opportunistic", _certs.CaFile, user: "lists", passwordFile: pw), Message(), out var c);
        c.Dispose();
        Assert.False(delivered);
        Assert.Contains("password is not sent over a plain connection", why, StringComparison.Ordinal);
    }

    // Review 83: a relay that offers STARTTLS and then refuses it (454) or fails the handshake
    // had every copy deferred until given up. Opportunistic goes on in plain text, as Postfix's
    // "may" does, on a new connection; with a password, or with starttls, never.
    [Theory]
    [InlineData("refuse", "opportunistic", true)]
    [InlineData("garbage", "opportunistic", true)]
    [InlineData("refuse", "starttls", false)]
    [InlineData("garbage", "starttls", false)]
    [InlineData("refuse", "opportunistic+password", false)]
    public void A_failed_STARTTLS_goes_plain_only_when_opportunistic_and_without_a_password(string failure, string security, bool delivered)
    {
        using var server = BrokenTlsServer.Start(failure);
        Relay relay;
        if (security == "opportunistic+password")
        {
            var pw = Path.Combine(_certs.Directory, "pw");
            File.WriteAllText(pw, "pw-never-sent\n");
            File.SetUnixFileMode(pw, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            relay = RelayFor(server.Port, "opportunistic", _certs.CaFile, user: "lists", passwordFile: pw);
        }
        else
        {
            relay = RelayFor(server.Port, security, security == "starttls" ? _certs.CaFile : "");
        }

        var heard = new List<string>();
        using var connection = new SmtpConnection(relay, new SmtpOptions { TimeoutSeconds = 20 }) { PlainFallback = heard.Add };
        var carrier = new Carrier(PreparedPost.Create(Message(), null));
        carrier.SetRecipient(null);
        var result = new TransactionResult();
        try
        {
            connection.Send(carrier.Message, "dev-bounces@example.org", [new Recipient("ann@example.com", "")], result);
            connection.Complete();
        }
        catch (SmtpConnectException e)
        {
            Assert.False(delivered, e.ToString());
        }

        Assert.Equal(delivered, result.Delivered.Count == 1);
        Assert.Equal(delivered ? 1 : 0, server.Messages);
        Assert.Equal(delivered ? 1 : 0, heard.Count);
        Assert.False(connection.IsSecure);
        Assert.DoesNotContain("AUTH", server.Commands);
        if (delivered)
        {
            Assert.Contains(failure == "refuse" ? "454" : "TLS handshake failed", heard[0], StringComparison.Ordinal);
            Assert.Equal(2, server.Connections); // the failed one and the plain one
        }
    }

    // A relay that offers STARTTLS and fails it: answers 454 ("refuse"), or 220 and then plain
    // text where the TLS handshake should be ("garbage"). A session without STARTTLS is served.
    private sealed class BrokenTlsServer : IDisposable
    {
        private readonly System.Net.Sockets.TcpListener _listener = new(System.Net.IPAddress.Loopback, 0);
        private readonly Thread _thread;
        private readonly string _failure;
        private int _messages;
        private int _connections;

        private BrokenTlsServer(string failure)
        {
            _failure = failure;
            _listener.Start();
            _thread = new Thread(Serve) { IsBackground = true };
            _thread.Start();
        }

        public int Port => ((System.Net.IPEndPoint)_listener.LocalEndpoint).Port;

        public int Messages => Volatile.Read(ref _messages);

        public int Connections => Volatile.Read(ref _connections);

        public System.Collections.Concurrent.ConcurrentQueue<string> Commands { get; } = new();

        public static BrokenTlsServer Start(string failure) => new(failure);

        public void Dispose() => _listener.Stop();

        private void Serve()
        {
            try
            {
                while (true)
                {
                    using var client = _listener.AcceptTcpClient();
                    Interlocked.Increment(ref _connections);
                    try
                    {
                        Session(client.GetStream());
                    }
                    catch (IOException)
                    {
                    }
                }
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException or InvalidOperationException)
            {
            }
        }

        private void Session(Stream stream)
        {
            using var reader = new StreamReader(stream, Encoding.ASCII, false, 1024, leaveOpen: true);
            void Say(string line) => stream.Write(Encoding.ASCII.GetBytes(line + "\r\n"));
            Say("220 relay.test ESMTP");
            while (reader.ReadLine() is { } line)
            {
                var verb = line.Split(' ')[0].ToUpperInvariant();
                Commands.Enqueue(verb);
                switch (verb)
                {
                    case "EHLO":
                        Say("250-relay.test\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS");
                        break;
                    case "STARTTLS" when _failure == "refuse":
                        Say("454 4.7.0 TLS not available due to local problem");
                        break;
                    case "STARTTLS":
                        Say("220 2.0.0 Ready to start TLS");
                        Say("this is not a TLS record at all");
                        return;
                    case "DATA":
                        Say("354 go ahead");
                        while (reader.ReadLine() is { } data && data != ".")
                        {
                        }

                        Interlocked.Increment(ref _messages);
                        Say("250 2.0.0 queued");
                        break;
                    case "QUIT":
                        Say("221 bye");
                        return;
                    default:
                        Say("250 ok");
                        break;
                }
            }
        }
    }

    // Review 67: without a CaFile or a Fingerprint, opportunistic TLS takes any certificate, and
    // the password went to a server that offered STARTTLS with its own self-signed one.
    [Fact]
    public void Opportunistic_with_a_password_and_nothing_to_check_the_certificate_by_is_refused_at_start()
    {
        var pw = Path.Combine(_certs.Directory, "pw");
        File.WriteAllText(pw, "pw\n");
        File.SetUnixFileMode(pw, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var e = Assert.Throws<InvalidOperationException>(() => RelayFor(2525, "opportunistic", user: "lists", passwordFile: pw));
        Assert.Contains("Mailman:Smtp:User with Mailman:Smtp:Security opportunistic would send the password to any server that offers STARTTLS", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("pw\n", e.Message, StringComparison.Ordinal);

        // With something to check it by, or without a password, it is taken.
        Assert.Equal(RelaySecurity.Opportunistic, RelayFor(2525, "opportunistic", _certs.CaFile, user: "lists", passwordFile: pw).Security);
        Assert.Equal(RelaySecurity.Opportunistic, RelayFor(2525, "opportunistic").Security);
    }

    // Wrapped 100-character lines, every seventh a dot line, ".", or "..": what dot-stuffing must keep.
    internal static string DotBody(int bytes)
    {
        var sb = new StringBuilder();
        for (var i = 0; sb.Length < bytes; i++)
        {
            sb.Append((i % 21) switch
            {
                0 => ".",
                7 => "..",
                14 => "." + new string('d', 99),
                _ => string.Create(CultureInfo.InvariantCulture, $"{i:D8} ") + new string('x', 91),
            }).Append("\r\n");
        }

        return sb.ToString();
    }
}
