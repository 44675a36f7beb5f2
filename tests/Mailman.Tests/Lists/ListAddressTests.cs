using Mailman.Lists;

namespace Mailman.Tests.Lists;

public sealed class ListAddressTests
{
    [Theory]
    [InlineData("dev@example.org", "in", "", null)]
    [InlineData("dev-bounces+anne=example.com@example.org", "bounces", "-bounces", "anne=example.com")]
    [InlineData("dev-request@example.org", "request", "-request", null)]
    [InlineData("dev-join@example.org", "request", "-join", null)]
    [InlineData("dev-leave@example.org", "request", "-leave", null)]
    [InlineData("dev-subscribe@example.org", "request", "-subscribe", null)]
    [InlineData("dev-unsubscribe@example.org", "request", "-unsubscribe", null)]
    [InlineData("dev-confirm+0123456789abcdef0123456789abcdef@example.org", "request", "-confirm", "0123456789abcdef0123456789abcdef")]
    [InlineData("DEV-Confirm@Example.org", "request", "-confirm", null)]
    [InlineData("dev-owner@example.org", "owner", "-owner", null)]
    [InlineData("dev-request@example.org.", "request", "-request", null)]
    [InlineData("dev@example.org.", "in", "", null)]
    public void Each_address_of_a_list_routes_to_its_queue_with_its_suffix_and_extension(string address, string queue, string suffix, string? extension)
    {
        Assert.True(ListAddress.TryResolve(address, out var resolved, out _));
        Assert.Equal("dev@example.org", resolved.List.Fqdn);
        Assert.Equal(queue, resolved.Queue);
        Assert.Equal(suffix, resolved.Suffix, ignoreCase: true);
        Assert.Equal(extension, resolved.Extension);
    }

    // Reviews 50 and 51: a list's domain is its A-labels; an address written with the U-labels is
    // the same list's, and intake keeps it as the wire spells it, so a VERP bounce there is decoded.
    [Fact]
    public void An_address_with_the_lists_domain_in_U_labels_is_that_lists_and_intake_keeps_the_A_labels()
    {
        Assert.True(ListAddress.TryResolve("dev-bounces+m=example.org@lists.bücher.example", out var resolved, out _));
        Assert.Equal("dev@lists.xn--bcher-kva.example", resolved.List.Fqdn);
        Assert.Equal("bounces", resolved.Queue);

        var route = Mailman.Queues.Intake.Route("dev-bounces+m=example.org@lists.bücher.example");
        Assert.Equal("dev-bounces+m=example.org@lists.xn--bcher-kva.example", route.Address);
        Assert.Equal("m@example.org", Mailman.Delivery.Verp.Decode(route.List, route.Address));
    }

    [Fact]
    public void Aliases_write_every_request_address_of_every_list()
    {
        using var instance = new TestSupport.TempInstance();
        var dir = Path.Combine(instance.Home, "postfix");
        Directory.CreateDirectory(dir);
        var files = Mailman.Cli.AliasesCommand.Write(instance.Paths, dir, [ListName.Parse("dev@example.org")], "mailman");
        var transport = File.ReadAllText(files.Transport);
        foreach (var suffix in new[] { "", "-bounces", "-request", "-owner", "-join", "-leave", "-subscribe", "-unsubscribe", "-confirm" })
        {
            Assert.Contains($"dev{suffix}@example.org\tmailmanq:\n", transport, StringComparison.Ordinal);
        }

        Assert.Contains("recipient_delimiter = +", files.MainCf, StringComparison.Ordinal);
    }
}
