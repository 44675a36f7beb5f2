using Mailman.Delivery;
using Mailman.Lists;

namespace Mailman.Tests.Delivery;

public sealed class VerpTests
{
    [Fact]
    public void Encodes_in_Mailmans_format_and_decodes_back()
    {
        var list = ListName.Parse("dev@example.org");
        var verp = Verp.Encode(list, "anne.person@example.com");
        Assert.Equal("dev-bounces+anne.person=example.com@example.org", verp);
        Assert.Equal("anne.person@example.com", Verp.Decode(list, verp));
        Assert.Null(Verp.Decode(list, "other-bounces+a=b.c@example.org"));
    }
}
