// One relay of the outbound pool, resolved at start: where it is, how the connection is secured
// and authenticated, how many connections it gets and its weight. Its password is read once here
// from a file or a systemd credential, never from configuration, and never printed.
using System.Globalization;
using System.Net;
using Mailman.Instance;
using MailKit.Security;

namespace Mailman.Delivery.Smtp;

/// <summary>How the connection to a relay is secured.</summary>
public enum RelaySecurity
{
    /// <summary>Plain SMTP.</summary>
    None,

    /// <summary>STARTTLS, required: a server that does not offer it, or whose certificate fails, is not used.</summary>
    StartTls,

    /// <summary>STARTTLS when offered; the certificate is checked only when CaFile or Fingerprint is set (Postfix's "may").</summary>
    Opportunistic,

    /// <summary>Implicit TLS from the first byte (port 465).</summary>
    Tls,
}

/// <summary>A relay ready to connect to.</summary>
public sealed class Relay
{
    private Relay(string host, int port, RelaySecurity security, string user, string? password, RelayTrust trust, int connections, int weight)
    {
        Host = host;
        Port = port;
        Security = security;
        User = user;
        Password = password;
        Trust = trust;
        Connections = connections;
        Weight = weight;
    }

    public string Host { get; }

    public int Port { get; }

    /// <summary>host:port, as logged and shown by status.</summary>
    public string Name => FormatAddress(Host, Port);

    public RelaySecurity Security { get; }

    public string User { get; }

    /// <summary>Never logged; null without AUTH.</summary>
    internal string? Password { get; }

    public RelayTrust Trust { get; }

    public int Connections { get; }

    public int Weight { get; }

    /// <summary>What MailKit is asked to do on connect.</summary>
    internal SecureSocketOptions SocketOptions => Security switch
    {
        RelaySecurity.StartTls => SecureSocketOptions.StartTls,
        RelaySecurity.Opportunistic => SecureSocketOptions.StartTlsWhenAvailable,
        RelaySecurity.Tls => SecureSocketOptions.SslOnConnect,
        _ => SecureSocketOptions.None,
    };

    public override string ToString() => Name;

    /// <summary>A relay for tests and tools: plain, no AUTH.</summary>
    public static Relay Plain(string host, int port, int connections = 1, int weight = 1) => new(host, port, RelaySecurity.None, "", null, RelayTrust.System, connections, weight);

    /// <summary>
    /// Resolves the configured relays: reads passwords (refusing files others may read) and CA
    /// files. Call once at start.
    /// </summary>
    /// <param name="credentials">False: a relay whose password is a systemd credential is taken
    /// without it (a verb's look at the settings, outside the daemon's environment).</param>
    /// <exception cref="InvalidOperationException">A setting cannot be used; the message names it.</exception>
    public static IReadOnlyList<Relay> Resolve(SmtpOptions options, bool credentials = true)
    {
        var result = new List<Relay>();
        var configured = options.EffectiveRelays();
        for (var i = 0; i < configured.Count; i++)
        {
            var r = configured[i];
            var key = options.Relays.Count == 0 ? "Mailman:Smtp:" : $"Mailman:Smtp:Relays:{i}:";
            TryParseAddress(r.Address, options.DefaultPortOf(r), out var host, out var port);
            var security = ParseSecurity(r.Security);
            string? password = null;
            if (!string.IsNullOrEmpty(r.User))
            {
                password = !string.IsNullOrEmpty(r.PasswordFile) ? Secrets.ReadPasswordFile(r.PasswordFile, key + "PasswordFile")
                    : credentials ? Secrets.ReadCredential(r.Credential, key + "Credential")
                    : "(a credential)";
            }

            // Review 67: opportunistic TLS checks no certificate by default, and AUTH would hand
            // the password to whoever answers with one of its own (a man in the middle).
            if (password is not null && security == RelaySecurity.Opportunistic && string.IsNullOrEmpty(r.CaFile) && string.IsNullOrEmpty(r.Fingerprint))
            {
                throw new InvalidOperationException($"{key}User with {key}Security opportunistic would send the password to any server that offers STARTTLS, whatever its certificate: use starttls (the certificate checked against the system's trust store), or set {key}CaFile or {key}Fingerprint");
            }

            var trust = RelayTrust.Create(r.CaFile, r.Fingerprint, key, verifyByDefault: security != RelaySecurity.Opportunistic);
            result.Add(new Relay(host, port, security, r.User, password, trust, r.Connections ?? options.Connections, r.Weight));
        }

        return result;
    }

    public static RelaySecurity ParseSecurity(string value) => value.ToLowerInvariant() switch
    {
        "starttls" => RelaySecurity.StartTls,
        "opportunistic" => RelaySecurity.Opportunistic,
        "tls" => RelaySecurity.Tls,
        _ => RelaySecurity.None,
    };

    /// <summary>The port of a pool entry whose Address names none: 465 for implicit TLS, else 25.</summary>
    public static int DefaultPort(string security) => ParseSecurity(security) == RelaySecurity.Tls ? 465 : 25;

    public static string FormatAddress(string host, int port)
        => (host.Contains(':', StringComparison.Ordinal) ? "[" + host + "]" : host) + ":" + port.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// What one server is known by, without DNS: an IP literal in its canonical form, the
    /// loopback (localhost, 127.0.0.1, ::1, the way Postfix's loopback-only listens) as one,
    /// "loopback", any other name lower case without its final dot.
    /// </summary>
    public static string ServerKey(string host, int port)
    {
        var name = host.TrimEnd('.').ToLowerInvariant();
        if (System.Net.IPAddress.TryParse(name, out var ip))
        {
            ip = ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip;
            name = ip.Equals(System.Net.IPAddress.IPv6Loopback) || ip.Equals(System.Net.IPAddress.Loopback) ? "loopback" : ip.ToString();
        }
        else if (name == "localhost")
        {
            name = "loopback";
        }

        return FormatAddress(name, port);
    }

    /// <summary>Parses host:port or [v6]:port; a bare host takes <paramref name="defaultPort"/>.</summary>
    public static bool TryParseAddress(string address, int defaultPort, out string host, out int port)
    {
        host = "";
        port = defaultPort;
        address = address.Trim();
        if (address.Length == 0)
        {
            return false;
        }

        string? portText = null; // null: no port given; "" after a colon is refused
        if (address.StartsWith('['))
        {
            var close = address.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                return false;
            }

            host = address[1..close];
            var rest = address[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':')
                {
                    return false;
                }

                portText = rest[1..];
            }
        }
        else
        {
            var colon = address.LastIndexOf(':');
            if (colon >= 0 && address.IndexOf(':', StringComparison.Ordinal) != colon)
            {
                return false; // an IPv6 literal must be bracketed
            }

            host = colon < 0 ? address : address[..colon];
            portText = colon < 0 ? null : address[(colon + 1)..];
        }

        if (portText is not null && !int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port))
        {
            return false;
        }

        return host.Length > 0 && port is > 0 and < 65536 && (IPAddress.TryParse(host, out _) || Uri.CheckHostName(host) == UriHostNameType.Dns);
    }
}
