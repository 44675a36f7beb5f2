// TXT queries over DnsClient: the configured servers (Mailman:Dns:Servers) or the system's, one
// bounded attempt each (Mailman:Dns:TimeoutMilliseconds), TCP when the UDP answer is truncated.
// DnsClient's own cache is off: TxtCache keeps answers on the daemon's clock.
using System.Globalization;
using System.Net;
using DnsClient;
using DnsClient.Protocol;

namespace Mailman.Dmarc;

public sealed class DnsTxtResolver : ITxtResolver
{
    /// <summary>How long a negative answer is cached when the server sends no SOA to say (RFC 2308 §5).</summary>
    public static readonly TimeSpan DefaultNegativeTtl = TimeSpan.FromMinutes(5);

    private readonly LookupClient _client;

    /// <param name="servers">host:port endpoints (IP literals); empty for the system resolver.</param>
    public DnsTxtResolver(IReadOnlyList<IPEndPoint> servers, TimeSpan timeout)
    {
        var options = servers.Count > 0
            ? new LookupClientOptions(servers.Select(s => new NameServer(s)).ToArray())
            : new LookupClientOptions();
        options.Timeout = timeout;
        options.Retries = 0;
        options.UseCache = false;
        options.ThrowDnsErrors = false;
        options.ContinueOnDnsError = false;
        options.ContinueOnEmptyResponse = false;
        options.UseTcpFallback = true;
        options.UseRandomNameServer = false;
        options.EnableAuditTrail = false;
        _client = new LookupClient(options);
    }

    /// <summary>The resolver Mailman:Dns configures (DMARC's TXT lookups, destination MX lookups).</summary>
    /// <exception cref="FormatException">A server is not an IP address with an optional port.</exception>
    public static DnsTxtResolver FromOptions(Instance.DnsOptions dns)
        => new([.. dns.Servers.Select(ParseServer)], TimeSpan.FromMilliseconds(dns.TimeoutMilliseconds));

    public TxtAnswer QueryTxt(string name)
    {
        IDnsQueryResponse response;
        try
        {
            response = _client.Query(name, QueryType.TXT);
        }
        catch (DnsResponseException e) when (e.Code == DnsResponseCode.ConnectionTimeout)
        {
            return new TxtAnswer(DnsStatus.Timeout, [], TimeSpan.Zero, e.Message);
        }
        catch (Exception e)
        {
            // Whatever a hostile or broken server sends (a compression loop, a wrong transaction
            // id, a truncated packet) is a failed lookup, never an error that shunts the post.
            return new TxtAnswer(DnsStatus.ServerFailure, [], TimeSpan.Zero, e.GetType().Name + ": " + e.Message);
        }

        var code = response.Header.ResponseCode;
        if (code == DnsHeaderResponseCode.NotExistentDomain)
        {
            return new TxtAnswer(DnsStatus.NameError, [], NegativeTtl(response));
        }

        if (code != DnsHeaderResponseCode.NoError)
        {
            return new TxtAnswer(DnsStatus.ServerFailure, [], TimeSpan.Zero, string.Create(CultureInfo.InvariantCulture, $"{code} from {response.NameServer}"));
        }

        // The answer may hold a CNAME chain before the TXT records; the server followed it.
        var txt = response.Answers.TxtRecords().ToList();
        if (txt.Count == 0)
        {
            return new TxtAnswer(DnsStatus.Ok, [], NegativeTtl(response));
        }

        var ttl = response.Answers.Min(r => r.TimeToLive);
        return new TxtAnswer(DnsStatus.Ok, txt.Select(r => string.Concat(r.Text)).ToList(), TimeSpan.FromSeconds(Math.Max(0, ttl)));
    }

    /// <summary>
    /// The primary (lowest-preference) MX host of <paramref name="domain"/> for destination
    /// pacing: the domain itself when it has no MX (RFC 5321 §5.1's implicit MX), none for
    /// NXDOMAIN or a null MX (RFC 7505), none for a failed lookup (then with no TTL: tried again soon).
    /// </summary>
    public async Task<Delivery.MxAnswer> PrimaryMxAsync(string domain, CancellationToken cancellationToken)
    {
        IDnsQueryResponse response;
        try
        {
            response = await _client.QueryAsync(domain, QueryType.MX, QueryClass.IN, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new Delivery.MxAnswer(null, TimeSpan.Zero);
        }

        var code = response.Header.ResponseCode;
        if (code == DnsHeaderResponseCode.NotExistentDomain)
        {
            return new Delivery.MxAnswer(null, NegativeTtl(response));
        }

        if (code != DnsHeaderResponseCode.NoError)
        {
            return new Delivery.MxAnswer(null, TimeSpan.Zero);
        }

        var mx = response.Answers.MxRecords().OrderBy(r => r.Preference).ThenBy(r => r.Exchange.Value, StringComparer.OrdinalIgnoreCase).FirstOrDefault();
        if (mx is null)
        {
            return new Delivery.MxAnswer(domain, NegativeTtl(response));
        }

        var host = mx.Exchange.Value.TrimEnd('.');
        return new Delivery.MxAnswer(host.Length == 0 ? null : host, TimeSpan.FromSeconds(Math.Max(0, mx.TimeToLive)));
    }

    // RFC 2308 §5: a negative answer lives for min(SOA TTL, SOA MINIMUM).
    private static TimeSpan NegativeTtl(IDnsQueryResponse response)
    {
        var soa = response.Authorities.SoaRecords().FirstOrDefault();
        return soa is null ? DefaultNegativeTtl : TimeSpan.FromSeconds(Math.Min((long)soa.TimeToLive, soa.Minimum));
    }

    /// <summary>Parses "host[:port]" (IPv6 as [addr]:port); the port defaults to 53.</summary>
    /// <exception cref="FormatException">Not an IP address with an optional port.</exception>
    public static IPEndPoint ParseServer(string text)
    {
        text = text.Trim();
        if (IPAddress.TryParse(text, out var bare))
        {
            return new IPEndPoint(bare, 53);
        }

        if (IPEndPoint.TryParse(text, out var endpoint) && endpoint.Port is > 0 and < 65536)
        {
            return endpoint;
        }

        throw new FormatException($"'{text}' is not an IP address with an optional port (host names are not accepted: a resolver must be reachable without one)");
    }
}
