// What the DMARC handlers need from the host, in one piece for the handler catalog: the policy
// lookup (resolver, cache, clock), the site's remove_dkim_headers, and a logger for the post log.
using System.Net;
using Mailman.Instance;
using Microsoft.Extensions.Logging;

namespace Mailman.Dmarc;

public sealed class DmarcServices(DmarcPolicyLookup lookup, bool removeDkimHeaders, ILogger logger)
{
    public DmarcPolicyLookup Lookup { get; } = lookup;

    public bool RemoveDkimHeaders { get; } = removeDkimHeaders;

    public ILogger Log { get; } = logger;

    /// <summary>The daemon's: DnsClient over the configured servers, behind a TTL cache on <paramref name="time"/>.</summary>
    public static DmarcServices Create(MailmanOptions options, TimeProvider time, ILoggerFactory loggers)
    {
        var resolver = new TxtCache(DnsTxtResolver.FromOptions(options.Dns), time);
        return new DmarcServices(
            new DmarcPolicyLookup(resolver, loggers.CreateLogger<DmarcPolicyLookup>()),
            options.Dmarc.RemoveDkimHeaders,
            loggers.CreateLogger("Mailman.Dmarc.Mitigation"));
    }
}
