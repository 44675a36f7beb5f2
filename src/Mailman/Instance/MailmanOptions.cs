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
        Check(Smtp.TimeoutSeconds >= 1, "Mailman:Smtp:TimeoutSeconds must be >= 1");
        Check(Smtp.CheckpointRecipients is >= 1 and <= 100_000, "Mailman:Smtp:CheckpointRecipients must be 1-100000");
        Check(Retry.MinimumDelay > TimeSpan.Zero, "Mailman:Retry:MinimumDelay must be positive");
        Check(Retry.MaximumDelay >= Retry.MinimumDelay, "Mailman:Retry:MaximumDelay must be >= MinimumDelay");
        Check(Retry.MaximumLifetime > TimeSpan.Zero, "Mailman:Retry:MaximumLifetime must be positive");
        Check(Queues.MaxRecoveries >= 0, "Mailman:Queues:MaxRecoveries must be >= 0");
        Check(Queues.PollInterval > TimeSpan.Zero, "Mailman:Queues:PollInterval must be positive");
        Check(Pipeline.Handlers.Count > 0, "Mailman:Pipeline:Handlers must name at least one handler");
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
        Check(StopTimeout >= TimeSpan.FromSeconds(1), "Mailman:StopTimeout must be at least 1 second");
        Http.Validate(Check);
        Check(Moderation.Chain.Count > 0, "Mailman:Moderation:Chain must name at least one rule");
        Check(SiteOwner.Length == 0 || IsAddress(SiteOwner), $"Mailman:SiteOwner must be an email address, got '{SiteOwner}'");
    }

    private static bool IsAddress(string text)
    {
        var at = text.LastIndexOf('@');
        return at > 0 && at < text.Length - 1 && text.Length <= 254
            && !text.Any(c => char.IsControl(c) || char.IsWhiteSpace(c) || c is '<' or '>' or ',' or ';' or '"')
            && MimeKit.MailboxAddress.TryParse(text, out _);
    }

    private static void Check(bool ok, string message)
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

    /// <summary>Parallel SMTP connections the outgoing runner uses for one post.</summary>
    public int Connections { get; set; } = 2;

    /// <summary>Network timeout for every SMTP read and write.</summary>
    public int TimeoutSeconds { get; set; } = 60;

    /// <summary>The name sent in EHLO; empty uses the machine's host name.</summary>
    public string HeloName { get; set; } = "";

    /// <summary>
    /// Recipients per delivery checkpoint (at least MaxRecipients for batched posts). After a
    /// crash at most Connections × this many members get a second copy.
    /// </summary>
    public int CheckpointRecipients { get; set; } = 100;

    /// <summary>Record delivery progress durably (the crash guarantee). Off only to measure what it costs.</summary>
    public bool Checkpoint { get; set; } = true;

    /// <summary>Use BDAT (RFC 3030 CHUNKING) when the server offers it: no dot-stuffing.</summary>
    public bool PreferBdat { get; set; }
}

public sealed class RetryOptions
{
    public TimeSpan MinimumDelay { get; set; } = TimeSpan.FromMinutes(1);

    public TimeSpan MaximumDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>After this long since the first attempt the remaining recipients are recorded as bounced.</summary>
    public TimeSpan MaximumLifetime { get; set; } = TimeSpan.FromDays(5);

    /// <summary>Exponential backoff: minimum × 2^(attempt-1), capped at the maximum.</summary>
    public TimeSpan DelayFor(int attempt)
    {
        var exponent = Math.Clamp(attempt - 1, 0, 30);
        var ticks = Math.Min((double)MinimumDelay.Ticks * Math.Pow(2, exponent), MaximumDelay.Ticks);
        return TimeSpan.FromTicks((long)ticks);
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
}

public sealed class ModerationOptions
{
    /// <summary>The moderation chain's rule names in the order they run before a post enters the pipeline; see <c>Moderation/</c>.</summary>
    public List<string> Chain { get; set; } = [];
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
