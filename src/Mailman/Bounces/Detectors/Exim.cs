// Exim: every bounce carries the failed addresses in an X-Failed-Recipients header.
namespace Mailman.Bounces.Detectors;

public sealed class Exim : IBounceDetector
{
    public string Name => "Exim";

    public string Description => "Exim bounces: the X-Failed-Recipients header";

    public BounceAnalysis? Detect(BounceContext message)
    {
        var found = new AddressCollector();
        foreach (var header in message.Message.Headers)
        {
            if (!header.Field.Equals("X-Failed-Recipients", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            foreach (var range in header.Value.AsSpan().Split(','))
            {
                var address = AddressText.Clean(header.Value[range]);
                if (AddressText.LooksLikeAddress(address))
                {
                    found.Add(address);
                }
            }
        }

        return found.Result(BounceKind.Permanent, Name);
    }
}
