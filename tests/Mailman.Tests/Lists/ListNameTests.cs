using Mailman.Lists;

namespace Mailman.Tests.Lists;

public sealed class ListNameTests
{
    [Theory]
    [InlineData("dev@example.org", "dev", "example.org")]
    [InlineData("Dev.Team_1@Lists.Example.ORG", "dev.team_1", "lists.example.org")]
    public void Valid_names_parse_lower_cased(string text, string local, string domain)
    {
        var name = ListName.Parse(text);
        Assert.Equal(local, name.LocalPart);
        Assert.Equal(domain, name.Domain);
        Assert.Equal($"{local}.{domain}", name.ListId);
        Assert.Equal($"{local}-bounces@{domain}", name.BouncesAddress);
    }

    [Theory]
    [InlineData("")]
    [InlineData("dev")]
    [InlineData("../etc@example.org")]
    [InlineData("dev/x@example.org")]
    [InlineData("dev@example.org/../x")]
    [InlineData("dev list@example.org")]
    [InlineData("dev;rm -rf@example.org")]
    [InlineData("$(id)@example.org")]
    [InlineData("dev@exa mple.org")]
    [InlineData("dev@@example.org")]
    [InlineData(".dev@example.org")]
    [InlineData("dev@-example.org")]
    [InlineData("dev\n@example.org")]
    public void Unsafe_names_are_refused_with_a_clear_message(string text)
    {
        Assert.False(ListName.TryParse(text, out _, out var error));
        Assert.False(string.IsNullOrWhiteSpace(error));
        Assert.DoesNotContain('\n', error);
    }

    // Review 94: an internationalized host name was refused without the form to give.
    [Fact]
    public void An_internationalized_host_name_is_refused_with_its_ASCII_form()
    {
        Assert.False(ListName.TryParse("dev@bücher.example", out _, out var error));
        Assert.EndsWith("is not a valid host name; give its ASCII form, xn--bcher-kva.example", error, StringComparison.Ordinal);
        Assert.True(ListName.TryParse("dev@xn--bcher-kva.example", out _, out _));

        // Review 107: not a form lists create refuses (no dot, special-use).
        Assert.False(ListName.TryParse("dev@bücher", out _, out error));
        Assert.EndsWith("'bücher' is not a valid host name", error, StringComparison.Ordinal);
        Assert.False(ListName.TryParse("dev@bücher.local", out _, out error));
        Assert.DoesNotContain("xn--", error, StringComparison.Ordinal);
    }
}
