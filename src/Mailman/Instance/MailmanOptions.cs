// The daemon's settings, bound from config/mailman.json and MAILMAN-prefixed environment
// variables (Mailman__Smtp__Port=2525). Validated once at start-up.
namespace Mailman.Instance;

/// <summary>Root of the <c>Mailman</c> configuration section.</summary>
public sealed class MailmanOptions
{
    public const string Section = "Mailman";

    public SmtpOptions Smtp { get; set; } = new();

    public RetryOptions Retry { get; set; } = new();

    public QueueOptions Queues { get; set; } = new();

    public PipelineOptions Pipeline { get; set; } = new();

    public MetricsOptions Metrics { get; set; } = new();

    public ModerationOptions Moderation { get; set; } = new();

    /// <summary>
    /// Mailman's site_owner: receives owner mail for lists that have no owner, and the notices of
    /// held posts on lists with neither owners nor moderators. Empty: nobody (such mail is kept in bad).
    /// </summary>
    public string SiteOwner { get; set; } = "";

    public DnsOptions Dns { get; set; } = new();

    public DmarcOptions Dmarc { get; set; } = new();

    public HttpOptions Http { get; set; } = new();

    public BounceOptions Bounces { get; set; } = new();

    public LmtpOptions Lmtp { get; set; } = new();

    /// <summary>The watchdog: an entry claimed this many times longer than its delivery should take is reported once.</summary>
    public double ClaimWarningFactor { get; set; } = 10;

    /// <summary>How long SIGTERM may take: in-flight work finishes or is put back within it (systemd's TimeoutStopSec is a little longer).</summary>
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(90);

    /// <summary>When a stopping delivery cuts its in-flight SMTP transactions: early enough that recording and putting back fit in the stop timeout.</summary>
    public TimeSpan StopGrace => StopTimeout - TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(15).Ticks, StopTimeout.Ticks / 4));

    /// <summary>Throws <see cref="InvalidOperationException"/> naming the first bad setting.</summary>
    public void Validate()
    {
        Check(!string.IsNullOrWhiteSpace(Smtp.Host), "Mailman:Smtp:Host must be set");
        Check(Smtp.Port is > 0 and < 65536, "Mailman:Smtp:Port must be 1-65535");
        Check(Smtp.MaxRecipients is >= 1 and <= 100_000, "Mailman:Smtp:MaxRecipients must be 1-100000");
        Check(Smtp.MaxSessionsPerConnection >= 0, "Mailman:Smtp:MaxSessionsPerConnection must be >= 0 (0: unlimited)");
        Check(Smtp.Connections is >= 1 and <= 64, "Mailman:Smtp:Connections must be 1-64");
        Check(Smtp.TimeoutSeconds is >= 1 and <= 86_400, "Mailman:Smtp:TimeoutSeconds must be 1-86400"); // in milliseconds it must fit an int
        Check(Smtp.YieldAfterSeconds >= 0, "Mailman:Smtp:YieldAfterSeconds must be >= 0");
        Check(Smtp.CheckpointRecipients is >= 1 and <= 100_000, "Mailman:Smtp:CheckpointRecipients must be 1-100000");
        // A bare number is days (Retry:MaximumDelay=3600 is ten years): each has a ceiling, and the message says the unit.
        const string Days = "as hh:mm:ss or d.hh:mm:ss; a bare number is days";
        Check(Retry.MinimumDelay > TimeSpan.Zero && Retry.MinimumDelay <= TimeSpan.FromDays(1), $"Mailman:Retry:MinimumDelay must be positive and at most a day, {Days} (got {Retry.MinimumDelay})");
        Check(Retry.MaximumDelay >= Retry.MinimumDelay && Retry.MaximumDelay <= TimeSpan.FromDays(1),
            $"Mailman:Retry:MaximumDelay must be at least MinimumDelay ({Retry.MinimumDelay}) and at most a day, {Days} (got {Retry.MaximumDelay})");
        Check(Retry.MaximumLifetime > TimeSpan.Zero && Retry.MaximumLifetime <= TimeSpan.FromDays(30), $"Mailman:Retry:MaximumLifetime must be positive and at most 30 days, {Days} (got {Retry.MaximumLifetime})");
        Check(Retry.MinimumDelay < Retry.MaximumLifetime, $"Mailman:Retry:MaximumLifetime ({Retry.MaximumLifetime}) must be longer than MinimumDelay ({Retry.MinimumDelay}), {Days}");
        Check(Queues.MaxRecoveries >= 0, "Mailman:Queues:MaxRecoveries must be >= 0");
        Check(Queues.PollInterval > TimeSpan.Zero, "Mailman:Queues:PollInterval must be positive");
        // A check may run in the pipeline too (a hold there is a held post like any other).
        CheckNames("Mailman:Pipeline:Handlers", "handler", Pipeline.Handlers, Mailman.Pipeline.HandlerCatalog.Names,
            "a moderation rule: it goes in Mailman:Moderation:Chain");
        Check(Pipeline.Handlers.Contains(Mailman.Pipeline.HandlerCatalog.Recipients, StringComparer.OrdinalIgnoreCase),
            $"Mailman:Pipeline:Handlers must hold {Mailman.Pipeline.HandlerCatalog.Recipients}: without it every post is delivered to nobody");
        Check(Dns.TimeoutMilliseconds is >= 100 and <= 60_000, "Mailman:Dns:TimeoutMilliseconds must be 100-60000");
        foreach (var server in Dns.Servers)
        {
            try
            {
                Mailman.Dmarc.DnsTxtResolver.ParseServer(server);
            }
            catch (FormatException e)
            {
                Check(false, "Mailman:Dns:Servers: " + e.Message);
            }
        }
        Check(Bounces.BatchSize is >= 1 and <= 10_000, "Mailman:Bounces:BatchSize must be 1-10000");
        Check(Bounces.SweepInterval >= TimeSpan.FromSeconds(1), "Mailman:Bounces:SweepInterval must be at least 1 second");
        Check(Bounces.UnrecognizedKeepDays is >= 0 and <= 36_500, "Mailman:Bounces:UnrecognizedKeepDays must be 0-36500");
        Check(StopTimeout >= TimeSpan.FromSeconds(1) && StopTimeout <= TimeSpan.FromHours(1), $"Mailman:StopTimeout must be 1 second to 1 hour, as hh:mm:ss (got {StopTimeout}; a bare number is days)");
        Check(Queues.PollInterval <= TimeSpan.FromDays(1), $"Mailman:Queues:PollInterval must be at most a day, as hh:mm:ss (got {Queues.PollInterval}; a bare number is days)");
        Check(Bounces.SweepInterval <= TimeSpan.FromDays(1), $"Mailman:Bounces:SweepInterval must be at most a day, as hh:mm:ss (got {Bounces.SweepInterval}; a bare number is days)");
        Http.Validate(Check);
        Check(Metrics.PrometheusUrl.Length == 0 || MetricsOptions.ParseUrl(Metrics.PrometheusUrl) is not null, MetricsOptions.UrlError(Metrics.PrometheusUrl));
        CheckNames("Mailman:Moderation:Chain", "rule", Moderation.Chain, Mailman.Moderation.ModerationChain.Names,
            "a pipeline handler: it goes in Mailman:Pipeline:Handlers");
        Check(Moderation.SummaryHour is >= -1 and <= 23, $"Mailman:Moderation:SummaryHour must be an hour of the day, 0-23 (local time), or -1 for no daily summary (got {Moderation.SummaryHour})");
        Check(SiteOwner.Length == 0 || IsAddress(SiteOwner), $"Mailman:SiteOwner must be an email address, got '{SiteOwner}'");
        Smtp.ValidateOutbound();
        Lmtp.Validate(Check);
        Check(ClaimWarningFactor >= 1, "Mailman:ClaimWarningFactor must be at least 1");
    }

    // A pipeline or chain: known names, each once (decorate twice is two footers), none of the other list's.
    private static void CheckNames(string key, string kind, List<string> names, IEnumerable<string> known, string otherList)
    {
        Check(names.Count > 0, $"{key} must name at least one {kind}");
        var knownSet = new HashSet<string>(known, StringComparer.OrdinalIgnoreCase);
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in names)
        {
            var other = Mailman.Pipeline.HandlerCatalog.Names.Concat(Mailman.Moderation.ModerationChain.Names).Contains(name, StringComparer.OrdinalIgnoreCase);
            Check(knownSet.Contains(name), $"{key}: '{name.ReplaceLineEndings(" ")}' is {(other ? otherList : $"not a {kind}")}; the {kind}s are {string.Join(", ", knownSet)}");
            Check(seen.Add(name), $"{key} names {name} twice");
        }
    }

    private static bool IsAddress(string text)
    {
        var at = text.LastIndexOf('@');
        return at > 0 && at < text.Length - 1 && text.Length <= Lists.Member.MaxAddressLength
            && !text.Any(c => char.IsControl(c) || char.IsWhiteSpace(c) || c is '<' or '>' or ',' or ';' or '"')
            && MimeKit.MailboxAddress.TryParse(text, out _);
    }

    internal static void Check(bool ok, string message)
    {
        if (!ok)
        {
            throw new InvalidOperationException("configuration: " + message);
        }
    }
}

public sealed class SmtpOptions
{
    public string Host { get; set; } = "127.0.0.1";

    public int Port { get; set; } = 25;

    /// <summary>SMTP_MAX_RCPTS: RCPT TOs per transaction for non-personalized lists. RFC 5321 §4.5.3.1.8 obliges servers to accept 100.</summary>
    public int MaxRecipients { get; set; } = 100;

    /// <summary>Messages sent over one connection before it is closed and re-opened; 0 means unlimited.</summary>
    public int MaxSessionsPerConnection { get; set; } = 1000;

    /// <summary>Parallel SMTP connections the outgoing runner uses for one post (per relay when Relays lists several).</summary>
    public int Connections { get; set; } = 8;

    /// <summary>Network timeout for every SMTP read and write.</summary>
    public int TimeoutSeconds { get; set; } = 60;

    /// <summary>The name sent in EHLO; empty uses the machine's host name.</summary>
    public string HeloName { get; set; } = "";

    /// <summary>
    /// Recipients per delivery checkpoint (at least MaxRecipients for batched posts). After a
    /// crash at most Connections × this many members get a second copy.
    /// </summary>
    public int CheckpointRecipients { get; set; } = 25;

    /// <summary>Record delivery progress durably (the crash guarantee). Off only to measure what it costs.</summary>
    public bool Checkpoint { get; set; } = true;

    /// <summary>Use BDAT (RFC 3030 CHUNKING) when the server offers it: no dot-stuffing.</summary>
    public bool PreferBdat { get; set; }

    /// <summary>RFC 2920: MAIL, RCPT and DATA in one write and a copy's end of data with the next transaction, where the server offers PIPELINING.</summary>
    public bool Pipelining { get; set; } = true;

    /// <summary>Connection security of Host: none, starttls (required), opportunistic, tls (implicit, port 465).</summary>
    public string Security { get; set; } = "none";

    /// <summary>AUTH user name; the password comes from <see cref="PasswordFile"/> or <see cref="Credential"/>, never from configuration.</summary>
    public string User { get; set; } = "";

    /// <summary>A file holding the password (mode 0600 or 0400, owned by the daemon's user).</summary>
    public string PasswordFile { get; set; } = "";

    /// <summary>The name of a systemd credential (LoadCredential=NAME:...): $CREDENTIALS_DIRECTORY/NAME holds the password.</summary>
    public string Credential { get; set; } = "";

    /// <summary>PEM file of the CA certificates the server's certificate must chain to, instead of the system store.</summary>
    public string CaFile { get; set; } = "";

    /// <summary>SHA-256 fingerprint of the server's certificate (hex, colons allowed): pinned instead of a chain.</summary>
    public string Fingerprint { get; set; } = "";

    /// <summary>A pool of relays (smarthosts) instead of Host/Port; each entry inherits the settings above that it leaves empty.</summary>
    public List<RelayOptions> Relays { get; set; } = [];

    /// <summary>
    /// A post whose chunks left all wait for paced destinations makes way for the next waiting
    /// post once it has been delivering this long, and resumes from its checkpoint after the posts
    /// waiting then: a throttled provider never holds up the posts behind it. 0: at once.
    /// </summary>
    public int YieldAfterSeconds { get; set; } = 30;

    /// <summary>Per-destination pacing, by destination name (a domain; its Domains may group more).</summary>
    public Dictionary<string, DestinationOptions> Destinations { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Pace recipient domains that share a primary MX host together (as Postfix paces a next
    /// hop): MX lookups through Mailman:Dns in the background, kept for their TTL; a domain is
    /// paced alone until its MX is known. Off by default (no DNS traffic).
    /// </summary>
    public bool GroupByMx { get; set; }

    /// <summary>Pacing of every domain without its own entry in Destinations.</summary>
    public DestinationOptions DestinationDefaults { get; set; } = new() { MaxConnections = 20 };

    /// <summary>The security modes, as configured.</summary>
    public static readonly string[] SecurityModes = ["none", "starttls", "opportunistic", "tls"];

    /// <summary>The relays as configured, each completed with the settings of this section; credentials are not read here.</summary>
    public IReadOnlyList<RelayOptions> EffectiveRelays()
    {
        if (Relays.Count == 0)
        {
            return [new RelayOptions
            {
                Address = Delivery.Smtp.Relay.FormatAddress(Host, Port),
                Security = Security,
                User = User,
                PasswordFile = PasswordFile,
                Credential = Credential,
                CaFile = CaFile,
                Fingerprint = Fingerprint,
                Connections = Connections,
                Weight = 1,
            }];
        }

        return [.. Relays.Select(r => new RelayOptions
        {
            Address = r.Address,
            Security = string.IsNullOrEmpty(r.Security) ? Security : r.Security,
            User = string.IsNullOrEmpty(r.User) ? User : r.User,
            PasswordFile = string.IsNullOrEmpty(r.User) ? PasswordFile : r.PasswordFile,
            Credential = string.IsNullOrEmpty(r.User) ? Credential : r.Credential,
            // How the certificate is trusted comes whole: an entry's pin is not checked against a CaFile from above.
            CaFile = OwnTrust(r) ? r.CaFile : CaFile,
            Fingerprint = OwnTrust(r) ? r.Fingerprint : Fingerprint,
            Connections = r.Connections ?? Connections,
            Weight = r.Weight,
        })];
    }

    private static bool OwnTrust(RelayOptions r) => !string.IsNullOrEmpty(r.CaFile) || !string.IsNullOrEmpty(r.Fingerprint);

    private IReadOnlyList<Delivery.Smtp.Relay>? _resolved;

    /// <summary>The relays with their passwords and CA files read, once (at start).</summary>
    /// <exception cref="InvalidOperationException">A password or CA file cannot be used.</exception>
    public IReadOnlyList<Delivery.Smtp.Relay> ResolvedRelays() => _resolved ??= Delivery.Smtp.Relay.Resolve(this);

    /// <summary>The port of an effective relay whose Address names none: Port for Host:Port alone; in a pool 465 with Security tls, else 25.</summary>
    public int DefaultPortOf(RelayOptions relay) => Relays.Count == 0 ? Port : Delivery.Smtp.Relay.DefaultPort(relay.Security);

    /// <summary>Each relay as host:port, the port it defaults to named (review 53: the start line said "mx" for mx:25).</summary>
    public IEnumerable<string> RelayNames()
        => EffectiveRelays().Select(r => Delivery.Smtp.Relay.TryParseAddress(r.Address, DefaultPortOf(r), out var host, out var port)
            ? Delivery.Smtp.Relay.FormatAddress(host, port)
            : r.Address);

    /// <summary>All connections of the pool: the crash duplicate bound is this × CheckpointRecipients.</summary>
    public int TotalConnections => EffectiveRelays().Sum(r => r.Connections ?? Connections);

    /// <summary>
    /// A destination's domain or MX host as the pacer keys it: trimmed, without the final dot
    /// ("gmail.com." is gmail.com), an internationalized name as its A-labels (bücher.example is
    /// xn--bcher-kva.example, as DNS and the MX answers spell it), lower case.
    /// </summary>
    public static string DestinationDomain(string domain)
    {
        // Lower case first: with invariant globalization IdnMapping does not fold case (BÜCHER
        // would be another A-label than bücher).
        var d = domain.Trim().TrimEnd('.').ToLowerInvariant();
        if (!System.Text.Ascii.IsValid(d))
        {
            try
            {
                d = new System.Globalization.IdnMapping().GetAscii(d);
            }
            catch (ArgumentException)
            {
                // Not a valid IDN: keyed as written (the start check refuses it in the configuration).
            }
        }

        return d;
    }

    /// <summary>
    /// An address as RCPT TO carries it: the local part as it is, an internationalized domain as
    /// <see cref="DestinationDomain"/> has it (MailKit's own conversion does not fold case under
    /// invariant globalization: BÜCHER.example would go to a domain that does not exist).
    /// </summary>
    public static string WireAddress(string address)
    {
        var at = address.LastIndexOf('@');
        return at < 0 || System.Text.Ascii.IsValid(address.AsSpan(at + 1))
            ? address
            : string.Concat(address.AsSpan(0, at + 1), DestinationDomain(address[(at + 1)..]));
    }

    /// <summary>A recipient's domain as the pacer keys it: an ASCII one as it is (the keys ignore case), else <see cref="DestinationDomain"/>.</summary>
    public static string RecipientDomainKey(string domain) => System.Text.Ascii.IsValid(domain) ? domain : DestinationDomain(domain);

    // RFC 5321 4.1.3: [dotted quad] or [IPv6:address]. IPAddress.TryParse alone takes [1.2.3]
    // (the old short forms) and a bare [::1], which a strict server refuses (review 39).
    private static bool IsAddressLiteral(string name)
    {
        if (name.Length < 3 || name[0] != '[' || name[^1] != ']')
        {
            return false;
        }

        var inner = name[1..^1];
        return inner.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase)
            ? !inner.Contains('%', StringComparison.Ordinal) && System.Net.IPAddress.TryParse(inner[5..], out var v6) && v6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            : System.Net.IPAddress.TryParse(inner, out var v4) && v4.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && v4.ToString() == inner;
    }

    // Security, credentials, relays and pacing; one line naming the first bad setting.
    internal void ValidateOutbound()
    {
        const string s = "Mailman:Smtp:";

        // How the certificate is trusted, on each level that sets it: the keys above the pool
        // whether or not an entry inherits them, and each entry's own.
        static void CheckTrust(string level, string caFile, string fingerprint)
        {
            MailmanOptions.Check(string.IsNullOrEmpty(caFile) || string.IsNullOrEmpty(fingerprint),
                $"{level}CaFile and {level}Fingerprint are both set: use one (a pinned Fingerprint takes the place of the chain)");
            MailmanOptions.Check(string.IsNullOrEmpty(fingerprint) || Delivery.Smtp.RelayTrust.TryParseFingerprint(fingerprint, out _),
                $"{level}Fingerprint must be a SHA-256 fingerprint: 64 hex digits, colons allowed");
            AbsoluteFile(level + "CaFile", caFile);
        }

        // Relative to what? The daemon's working directory is / under systemd and wherever the
        // operator stood for a verb: one file for one and another for the other (review 39).
        static void AbsoluteFile(string setting, string path, bool secret = false) =>
            MailmanOptions.Check(string.IsNullOrEmpty(path) || Path.IsPathFullyQualified(path),
                secret
                    ? $"{setting} must be an absolute path (got a relative one of {path.Length} characters, not shown: if it is the password itself, that goes in the file it names)"
                    : $"{setting} must be an absolute path (got '{path.ReplaceLineEndings(" ")}')");

        CheckTrust(s, CaFile, Fingerprint);

        // Review 86: a password typed where its file's name belongs was printed back.
        AbsoluteFile(s + "PasswordFile", PasswordFile, secret: true);
        for (var i = 0; i < Relays.Count; i++)
        {
            AbsoluteFile($"{s}Relays:{i}:PasswordFile", Relays[i].PasswordFile, secret: true);
        }

        var relays = EffectiveRelays();
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < relays.Count; i++)
        {
            var r = relays[i];
            var key = Relays.Count == 0 ? s : $"{s}Relays:{i}:";
            MailmanOptions.Check(Delivery.Smtp.Relay.TryParseAddress(r.Address, DefaultPortOf(r), out var host, out var port),
                Relays.Count == 0
                    ? $"{s}Host must be a host name or an address, without a port (the port is {s}Port; got '{Host.ReplaceLineEndings(" ")}')"
                    : $"{key}Address must be host:port (got '{r.Address.ReplaceLineEndings(" ")}')");
            var server = Delivery.Smtp.Relay.ServerKey(host, port);
            if (!seen.TryAdd(server, r.Address))
            {
                var first = seen[server];
                MailmanOptions.Check(false, first.Trim().Equals(r.Address.Trim(), StringComparison.OrdinalIgnoreCase)
                    ? $"{s}Relays lists {r.Address} twice"
                    : $"{s}Relays lists {first} and {r.Address}, one server ({server}) twice: give it more Connections instead");
            }

            MailmanOptions.Check(SecurityModes.Contains(r.Security, StringComparer.OrdinalIgnoreCase),
                $"{key}Security must be none, starttls, opportunistic or tls (got '{r.Security}')");
            MailmanOptions.Check(r.Weight is >= 1 and <= 1000, $"{key}Weight must be 1-1000 (got {r.Weight})");
            MailmanOptions.Check(r.Connections is >= 1 and <= 64, $"{key}Connections must be 1-64");
            MailmanOptions.Check(string.IsNullOrEmpty(r.PasswordFile) || string.IsNullOrEmpty(r.Credential),
                $"{key}PasswordFile and Credential are both set: use one");
            var hasUser = !string.IsNullOrEmpty(r.User);
            MailmanOptions.Check(!hasUser || !string.IsNullOrEmpty(r.PasswordFile) || !string.IsNullOrEmpty(r.Credential),
                $"{key}User is set but neither PasswordFile nor Credential says where its password is");
            MailmanOptions.Check(hasUser || (string.IsNullOrEmpty(r.PasswordFile) && string.IsNullOrEmpty(r.Credential)),
                $"{key}PasswordFile or Credential is set without User");
            MailmanOptions.Check(!hasUser || !r.Security.Equals("none", StringComparison.OrdinalIgnoreCase),
                $"{key}User needs Security starttls, opportunistic or tls: a password is never sent over a plain connection");
            MailmanOptions.Check(string.IsNullOrEmpty(r.Credential) || (r.Credential.IndexOfAny(['/', '\\']) < 0 && r.Credential is not "." and not ".."),
                $"{key}Credential must be a credential name, not a path");
            var trustKey = Relays.Count > 0 && OwnTrust(Relays[i]) ? key : s;
            if (trustKey == key)
            {
                CheckTrust(key, r.CaFile, r.Fingerprint);
            }

            var securityKey = Relays.Count > 0 && !string.IsNullOrEmpty(Relays[i].Security) ? key : s;
            MailmanOptions.Check((string.IsNullOrEmpty(r.CaFile) && string.IsNullOrEmpty(r.Fingerprint)) || !r.Security.Equals("none", StringComparison.OrdinalIgnoreCase),
                $"{trustKey}{(string.IsNullOrEmpty(r.CaFile) ? "Fingerprint" : "CaFile")} is set with {securityKey}Security none{(Relays.Count > 0 ? $" (for {r.Address})" : "")}: a plain connection checks no certificate (use starttls or tls)");
        }

        // ASCII: a U-label is sent raw and refused by reject_invalid_helo_hostname (review 41).
        MailmanOptions.Check(HeloName.Length == 0 || (System.Text.Ascii.IsValid(HeloName) && !HeloName.EndsWith('.') && Uri.CheckHostName(HeloName) is UriHostNameType.Dns or UriHostNameType.IPv4) || IsAddressLiteral(HeloName),
            $"{s}HeloName must be a host name in ASCII (A-labels: xn--...) without a trailing dot, or an address literal ([192.0.2.1], [IPv6:2001:db8::1])");
        var claimed = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, d) in Destinations)
        {
            foreach (var domain in d.Domains.Prepend(name))
            {
                MailmanOptions.Check(IsDomain(domain), $"{s}Destinations:{name}: '{domain.ReplaceLineEndings(" ")}' is not a domain name");
                var key = DestinationDomain(domain);
                MailmanOptions.Check(claimed.TryAdd(key, name) || claimed[key].Equals(name, StringComparison.OrdinalIgnoreCase),
                    $"{s}Destinations: {domain} belongs to both {claimed.GetValueOrDefault(key)} and {name}");
            }
        }

        foreach (var (name, d) in Destinations.Append(new("DestinationDefaults", DestinationDefaults)))
        {
            var key = name == "DestinationDefaults" ? s + name + ":" : $"{s}Destinations:{name}:";
            MailmanOptions.Check(d.MaxConnections is null or >= 1, $"{key}MaxConnections must be at least 1 (leave it out for no limit)");
            MailmanOptions.Check(d.MaxPerMinute is null or >= 1, $"{key}MaxPerMinute must be at least 1 (leave it out for no limit)");
            MailmanOptions.Check(d.MxHosts.All(IsDomain), $"{key}MxHosts must be host names (google.com)");
            MailmanOptions.Check(d.MxHosts.Count == 0 || GroupByMx, $"{key}MxHosts needs Mailman:Smtp:GroupByMx true (MX hosts are only known from MX lookups)");
        }

        static bool IsDomain(string domain)
        {
            try
            {
                return Uri.CheckHostName(new System.Globalization.IdnMapping().GetAscii(DestinationDomain(domain))) == UriHostNameType.Dns;
            }
            catch (ArgumentException)
            {
                return false;
            }
        }
    }
}

/// <summary>One relay (smarthost) of the pool; empty settings are taken from Mailman:Smtp.</summary>
public sealed class RelayOptions
{
    /// <summary>host:port ([v6]:port for an IPv6 literal).</summary>
    public string Address { get; set; } = "";

    public string Security { get; set; } = "";

    public string User { get; set; } = "";

    public string PasswordFile { get; set; } = "";

    public string Credential { get; set; } = "";

    public string CaFile { get; set; } = "";

    public string Fingerprint { get; set; } = "";

    /// <summary>Parallel connections to this relay; default Mailman:Smtp:Connections.</summary>
    public int? Connections { get; set; }

    /// <summary>Share of the copies relative to the other relays.</summary>
    public int Weight { get; set; } = 1;
}

/// <summary>Pacing of one destination (a recipient domain, or several grouped).</summary>
public sealed class DestinationOptions
{
    /// <summary>Transactions in flight to this destination at once; null: no limit.</summary>
    public int? MaxConnections { get; set; }

    /// <summary>Copies (transactions) a minute; null: no limit (until the destination answers 421 or 4.7.x).</summary>
    public int? MaxPerMinute { get; set; }

    /// <summary>More domains that share this destination (the same MX): paced together.</summary>
    public List<string> Domains { get; set; } = [];

    /// <summary>With Mailman:Smtp:GroupByMx: every recipient domain whose primary MX host is one of these or under one (google.com takes aspmx.l.google.com) shares this destination's pace.</summary>
    public List<string> MxHosts { get; set; } = [];
}

public sealed class RetryOptions
{
    public TimeSpan MinimumDelay { get; set; } = TimeSpan.FromMinutes(1);

    public TimeSpan MaximumDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>After this long since the first attempt the remaining recipients are given up (logged, not scored).</summary>
    public TimeSpan MaximumLifetime { get; set; } = TimeSpan.FromDays(5);

    /// <summary>Exponential backoff: minimum × 2^(attempt-1), capped at the maximum.</summary>
    public TimeSpan DelayFor(int attempt)
    {
        var exponent = Math.Clamp(attempt - 1, 0, 30);
        var ticks = Math.Min((double)MinimumDelay.Ticks * Math.Pow(2, exponent), MaximumDelay.Ticks);
        return TimeSpan.FromTicks((long)ticks);
    }

    /// <summary>The backoffs waited before attempt <paramref name="attempts"/>: the least time those attempts can have taken, whatever the clock did.</summary>
    public TimeSpan Waited(int attempts)
    {
        var total = TimeSpan.Zero;
        for (var k = 1; k < attempts && total < MaximumLifetime; k++)
        {
            total += DelayFor(k);
        }

        return total;
    }
}

public sealed class QueueOptions
{
    /// <summary>How often an entry left claimed by a crash is retried before it goes to <c>bad</c>.</summary>
    public int MaxRecoveries { get; set; } = 3;

    /// <summary>Fallback poll for entries written by other processes (inject); enqueues in-process wake runners at once.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);
}

public sealed class MetricsOptions
{
    /// <summary>Prometheus scrape endpoint, e.g. http://127.0.0.1:9464/ (serves /metrics); empty: off. Loopback only.</summary>
    public string PrometheusUrl { get; set; } = "";

    /// <summary>A scrape URL as the endpoint takes it: http, on loopback, no path but /; else null.</summary>
    public static Uri? ParseUrl(string url)
        => Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback && uri.AbsolutePath == "/"
            && uri.Query.Length == 0 && uri.Fragment.Length == 0 && uri.UserInfo.Length == 0 && uri.Port != 0 ? uri : null;

    /// <summary>Why <paramref name="url"/> is not one.</summary>
    public static string UrlError(string url)
        => $"Mailman:Metrics:PrometheusUrl must be an http URL on loopback with a port (not 0: Prometheus must know it) and without a path (e.g. http://127.0.0.1:9464/; it serves /metrics), got '{url.ReplaceLineEndings(" ")}'";
}

public sealed class ModerationOptions
{
    /// <summary>The moderation chain's rule names in the order they run before a post enters the pipeline; see <c>Moderation/</c>.</summary>
    public List<string> Chain { get; set; } = [];

    /// <summary>
    /// The hour of the day (local time, 0-23) the owners and moderators get the daily summary of
    /// what awaits them (ModerationSweep); -1: no summary.
    /// </summary>
    public int SummaryHour { get; set; } = 8;
}

public sealed class DnsOptions
{
    /// <summary>Resolvers as IP[:port] ([::1]:53 for IPv6); empty: the system's (/etc/resolv.conf).</summary>
    public List<string> Servers { get; set; } = [];

    /// <summary>One DNS query's timeout; a lookup that times out is mitigated, never held.</summary>
    public int TimeoutMilliseconds { get; set; } = 2000;
}

public sealed class DmarcOptions
{
    /// <summary>Mailman 3's remove_dkim_headers: drop DKIM-Signature, DomainKey-Signature and Authentication-Results from posts.</summary>
    public bool RemoveDkimHeaders { get; set; }
}

public sealed class BounceOptions
{
    /// <summary>Bounce entries the runner claims and scores in one database transaction.</summary>
    public int BatchSize { get; set; } = 200;

    /// <summary>How often the warning sweep looks for disabled members due a warning or removal (also once at start).</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Days a bounce set aside in <c>unrecognized</c> is kept (from its arrival) before the sweep deletes it; 0 keeps it forever.</summary>
    public int UnrecognizedKeepDays { get; set; } = 30;
}

public sealed class PipelineOptions
{
    /// <summary>Handler names in the order they run; see <c>Pipeline/Handlers</c>.</summary>
    public List<string> Handlers { get; set; } = [];
}

/// <summary>The one-click unsubscribe endpoint (RFC 8058) and the links that lead to it.</summary>
public sealed class HttpOptions
{
    /// <summary>Where the endpoint listens, e.g. http://127.0.0.1:8024; empty: off. Plain HTTP: a reverse proxy terminates TLS.</summary>
    public string Url { get; set; } = "";

    /// <summary>The public HTTPS base the proxy serves the endpoint under, e.g. https://lists.example.org/mm; empty: no one-click links.</summary>
    public string PublicUrl { get; set; } = "";

    /// <summary>Listen on an address other than loopback (only behind a firewall: the endpoint speaks no TLS).</summary>
    public bool AllowNonLoopback { get; set; }

    internal void Validate(Action<bool, string> check)
    {
        if (Url.Length > 0)
        {
            var ok = Uri.TryCreate(Url, UriKind.Absolute, out var url);
            check(ok && url!.Scheme == "http", "Mailman:Http:Url must be an http:// URL such as http://127.0.0.1:8024 (TLS belongs to the reverse proxy)");
            check(url!.AbsolutePath == "/" && url.Query.Length == 0 && url.Fragment.Length == 0 && url.UserInfo.Length == 0,
                "Mailman:Http:Url takes no path: the proxy maps the public path onto the root");
            check(url.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6 || url.Host == "localhost",
                "Mailman:Http:Url must name an IP address or localhost");
            check(url.IsLoopback || AllowNonLoopback, "Mailman:Http:Url must be a loopback address unless Mailman:Http:AllowNonLoopback is true");
            check(url.Port != 0, "Mailman:Http:Url: port 0 (any free one) is a port the reverse proxy cannot be told: give one");
        }

        if (PublicUrl.Length > 0)
        {
            var ok = Uri.TryCreate(PublicUrl, UriKind.Absolute, out var url);
            check(ok && url!.Scheme == "https", "Mailman:Http:PublicUrl must be an https:// URL (RFC 8058 one-click needs HTTPS)");
            check(url!.Query.Length == 0 && url.Fragment.Length == 0 && url.UserInfo.Length == 0 && url.AbsoluteUri.Length <= 300
                && url.AbsoluteUri.All(char.IsAscii), "Mailman:Http:PublicUrl must be a plain base URL (no query, fragment or user; at most 300 characters)");
        }
    }
}

/// <summary>The LMTP listener (RFC 2033) Postfix delivers list mail to, as Mailman 3 sites do.</summary>
public sealed class LmtpOptions
{
    /// <summary>Mailman 3's LMTP port.</summary>
    public const int DefaultPort = 8024;

    public const string DefaultUrl = "lmtp://127.0.0.1:8024";

    /// <summary>Where the listener listens, e.g. lmtp://127.0.0.1:8024; empty: off.</summary>
    public string Url { get; set; } = "";

    /// <summary>Listen on an address other than loopback (LMTP has no authentication: only behind a firewall).</summary>
    public bool AllowNonLoopback { get; set; }

    /// <summary>Largest message accepted (announced as SIZE), in KiB.</summary>
    public int MaxMessageSizeKb { get; set; } = 100 * 1024;

    /// <summary>Recipients per transaction (RFC 5321 §4.5.3.1.8 asks for at least 100).</summary>
    public int MaxRecipients { get; set; } = 100;

    /// <summary>Sessions at once; one more is answered 421 and closed.</summary>
    public int MaxSessions { get; set; } = 64;

    /// <summary>How long a session may wait for a command or a line of data (RFC 5321 §4.5.3.2: at least 5 minutes for commands).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The address and port to listen on (validated).</summary>
    public System.Net.IPEndPoint EndPoint()
    {
        var url = new Uri(Url);
        var address = url.Host == "localhost" ? System.Net.IPAddress.Loopback : System.Net.IPAddress.Parse(url.Host.Trim('[', ']'));
        return new System.Net.IPEndPoint(address, url.Port > 0 ? url.Port : DefaultPort);
    }

    internal void Validate(Action<bool, string> check)
    {
        check(MaxMessageSizeKb >= 1, "Mailman:Lmtp:MaxMessageSizeKb must be at least 1");
        check(MaxRecipients is >= 1 and <= 10_000, "Mailman:Lmtp:MaxRecipients must be 1-10000");
        check(MaxSessions is >= 1 and <= 10_000, "Mailman:Lmtp:MaxSessions must be 1-10000");
        check(Timeout >= TimeSpan.FromSeconds(1) && Timeout <= TimeSpan.FromHours(1), $"Mailman:Lmtp:Timeout must be 1 second to 1 hour, as hh:mm:ss (got {Timeout}; a bare number is days)");
        if (Url.Length == 0)
        {
            return;
        }

        var ok = Uri.TryCreate(Url, UriKind.Absolute, out var url);
        check(ok && url!.Scheme == "lmtp", "Mailman:Lmtp:Url must be an lmtp:// URL such as lmtp://127.0.0.1:8024");
        check(url!.AbsolutePath is "/" or "" && url.Query.Length == 0 && url.UserInfo.Length == 0, "Mailman:Lmtp:Url takes no path");
        check(url.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6 || url.Host == "localhost", "Mailman:Lmtp:Url must name an IP address or localhost");
        check(url.IsLoopback || AllowNonLoopback, "Mailman:Lmtp:Url must be a loopback address unless Mailman:Lmtp:AllowNonLoopback is true");

        // Port 0 listened on 8024 while the start line said 0 (review 86); any free port is
        // one Postfix's transport cannot be told.
        check(url.Port != 0, "Mailman:Lmtp:Url: port 0 (any free one) is a port Postfix cannot be told: give one, such as 8024");
    }
}
