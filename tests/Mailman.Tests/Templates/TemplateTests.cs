using Mailman.Templates;

namespace Mailman.Tests.Templates;

public sealed class TemplateTests
{
    private static string? Lookup(string name) => name switch
    {
        "list_name" => "dev",
        "display_name" => "Dev Team",
        _ => null,
    };

    [Theory]
    [InlineData("$list_name list", "dev list")]
    [InlineData("${display_name}!", "Dev Team!")]
    [InlineData("${list_name}x $list_namex", "devx $list_namex")]
    [InlineData("costs $5 or $$10", "costs $5 or $10")]
    [InlineData("unknown $nothing ${nope}", "unknown $nothing ${nope}")]
    [InlineData("trailing $", "trailing $")]
    [InlineData("open ${list_name", "open ${list_name")]
    public void Expands_known_placeholders_and_leaves_the_rest(string template, string expected)
        => Assert.Equal(expected, Template.Expand(template, Lookup));
}
