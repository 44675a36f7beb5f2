using Mailman.Lists;
using Mailman.Pipeline;
using Mailman.Queues;
using Mailman.Runners;

namespace Mailman.Tests.Pipeline;

internal static class PostBuilder
{
    public static PostContext Context(byte[] raw, Action<MailingList>? configure = null)
    {
        var list = new MailingList { Name = ListName.Parse("dev@example.org"), DisplayName = "Dev Team" };
        configure?.Invoke(list);
        return new PostContext(list, PostParser.Parse(raw), new EntryMetadata { List = list.Name.Fqdn }, raw.Length);
    }
}
