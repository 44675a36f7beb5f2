// The field reader under the DSN and ARF detectors: folding, blank lines, junk.
using Mailman.Bounces;

namespace Mailman.Tests.Bounces;

public sealed class ReportFieldsTests
{
    [Fact]
    public void Fields_are_unfolded_and_blank_lines_kept_once_as_separators()
    {
        var fields = ReportFields.Parse("Reporting-MTA: dns; mx\r\n\r\n\r\nFinal-Recipient: rfc822;\r\n\t a@example.com\r\nnot a field\r\nAction:failed\r\n");
        Assert.Equal(
            [new("Reporting-MTA", "dns; mx"), new("", ""), new("Final-Recipient", "rfc822; a@example.com"), new("Action", "failed")],
            fields);
    }

    [Fact]
    public void A_continuation_before_any_field_and_names_with_spaces_are_ignored()
    {
        Assert.Equal([new ReportField("Status", "5.1.1")], ReportFields.Parse("  stray\nBad Name: x\nStatus: 5.1.1"));
    }
}
