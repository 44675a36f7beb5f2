using Mailman.Dmarc;

namespace Mailman.Tests.Dmarc;

public sealed class DmarcRecordTests
{
    [Theory]
    [InlineData("v=DMARC1; p=reject", DmarcPolicy.Reject, null, null)]
    [InlineData("v=DMARC1;p=quarantine;sp=none", DmarcPolicy.Quarantine, DmarcPolicy.None, null)]
    [InlineData("v = DMARC1 ; p = REJECT ; rua=mailto:d@example.com", DmarcPolicy.Reject, null, null)]
    [InlineData("v=DMARC1; p=none; sp=reject; psd=n", DmarcPolicy.None, DmarcPolicy.Reject, false)]
    [InlineData("v=DMARC1; psd=y; p=reject", DmarcPolicy.Reject, null, true)]
    [InlineData("v=DMARC1", DmarcPolicy.None, null, null)]
    [InlineData("v=DMARC1; p=rejected; sp=bogus", DmarcPolicy.None, null, null)]
    [InlineData("v=DMARC1; p=reject; p=none", DmarcPolicy.Reject, null, null)]
    [InlineData("v=DMARC1; p; =x; unknown=tag; p=quarantine", DmarcPolicy.Quarantine, null, null)]
    [InlineData("V=DMARC1; P=reject; SP=none; PSD=Y", DmarcPolicy.Reject, DmarcPolicy.None, true)]     // tag names are case-insensitive (review 108)
    public void A_DMARC_record_yields_p_sp_and_psd_and_a_bad_policy_reads_as_none(string text, DmarcPolicy p, DmarcPolicy? sp, bool? psd)
    {
        var record = DmarcRecord.Parse(text);
        Assert.NotNull(record);
        Assert.Equal(p, record.Policy);
        Assert.Equal(sp, record.SubdomainPolicy);
        Assert.Equal(psd, record.PublicSuffix);
    }

    [Theory]
    [InlineData("")]
    [InlineData("v=spf1 -all")]
    [InlineData("p=reject; v=DMARC1")]
    [InlineData("v=dmarc1; p=reject")]
    [InlineData("v=DMARC1 p=reject")]
    [InlineData("v=DMARC2; p=reject")]
    [InlineData("garbage;;;===")]
    public void Text_that_does_not_start_with_v_DMARC1_is_not_a_DMARC_record(string text)
        => Assert.Null(DmarcRecord.Parse(text));

    [Fact]
    public void A_60_KB_record_parses_like_a_short_one()
    {
        var text = "v=DMARC1; p=quarantine; rua=" + string.Join(',', Enumerable.Range(0, 3000).Select(i => $"mailto:r{i:D5}@big.test"));
        Assert.True(text.Length > 60_000);
        Assert.Equal(DmarcPolicy.Quarantine, DmarcRecord.Parse(text)!.Policy);
    }
}
