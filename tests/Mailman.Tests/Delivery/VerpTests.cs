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

    [Fact]
    public void An_IDN_domain_is_written_in_A_labels_so_MAIL_FROM_stays_ASCII()
    {
        var list = Mailman.Lists.ListName.Parse("dev@example.org");
        Assert.Equal("dev-bounces+a=xn--bcher-kva.de@example.org", Verp.Encode(list, "a@bücher.de"));
        Assert.Equal("dev-bounces@example.org", Verp.Encode(list, "\"a b\"@example.com"));
        Assert.Equal("dev-bounces@example.org", Verp.Encode(list, "u@[192.0.2.1]"));
    }
}
