// RFC 8058 one-click end to end with real parts: the daemon (`mailman serve` with its HTTP
// endpoint) delivers a post to smtp-sink, a copy's List-Unsubscribe URL is read from the dump and
// POSTed with a real HttpClient to the listening address, and the next post does not reach that
// member. Forged tokens, another list's token, a token from before a re-subscription and a GET
// unsubscribe nobody.
using System.Globalization;
using System.Net;
using System.Text;
using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class OneClickTests : IDisposable
{
    private const string PublicUrl = "https://lists.example.org/mm";
    private readonly TempInstance _instance = new();
    private readonly HttpClient _client = new();

    public void Dispose()
    {
        _client.Dispose();
        _instance.Dispose();
    }

    private bool IsMember(string list, string address)
    {
        using var store = new ListStore(_instance.Paths.Database);
        return store.IsMember(ListName.Parse(list), address);
    }

    private void Inject(string list, byte[] post)
    {
        var result = MailmanProcess.Run(_instance.Home, ["inject", list], post);
        Assert.True(result.ExitCode == 0, result.Stderr);
    }

    private static string LinkIn(SinkMessage copy)
    {
        var header = copy.Header("List-Unsubscribe")!;
        Assert.EndsWith(", <mailto:dev-leave@example.org>", header, StringComparison.Ordinal);
        return header[1..header.IndexOf('>', StringComparison.Ordinal)];
    }

    private Task<HttpResponseMessage> OneClick(string url)
        => _client.PostAsync(url, new StringContent("List-Unsubscribe=One-Click", Encoding.ASCII, "application/x-www-form-urlencoded"));

    [Fact]
    public void A_taken_HTTP_port_is_a_configuration_error_naming_the_setting()
    {
        // Review 28: it exited 73 with Kestrel's sentence; the LMTP listener's is 78.
        using var taken = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
        var serve = MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = "9",
            ["Mailman__Http__Url"] = "http://127.0.0.1:" + port,
        });
        Assert.Equal(78, serve.ExitCode);
        Assert.StartsWith("mailman: configuration: Mailman:Http:Url http://127.0.0.1:" + port + ": cannot listen", serve.Stderr.Trim().Split('\n')[^1], StringComparison.Ordinal);

        // Review 87: the server's own host said it too, so the failure was logged twice.
        Assert.Single(serve.Stderr.Split('\n'), l => l.Contains("Hosting failed to start", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_one_click_POST_of_the_link_in_a_copy_unsubscribes_that_member_and_the_next_post_does_not_reach_them()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.CreateList("other@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", [new Member("anne@example.com", "Anne"), new Member("bob@example.com", "Bob"), new Member("carol@example.com", "Carol")]);
        _instance.AddMembers("other@example.org", [new Member("anne@example.com", "Anne")]);
        using var sink = SmtpSink.Start();
        var port = Net.FreePort();
        var listen = "http://127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture);
        using var daemon = DaemonProcess.Start(_instance.Home, new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = sink.Port.ToString(CultureInfo.InvariantCulture),
            ["Mailman__Http__Url"] = listen,
            ["Mailman__Http__PublicUrl"] = PublicUrl,
        });
        Wait.Until(() => daemon.HasExited || Net.CanConnect(port), TimeSpan.FromSeconds(60), "the one-click endpoint to listen");
        Assert.False(daemon.HasExited, daemon.Output);

        Inject("dev@example.org", Posts.Plain(subject: "first", messageId: "first@example.com"));
        var copies = sink.WaitFor(3);
        string Local(string url) => url.Replace(PublicUrl, listen, StringComparison.Ordinal);
        var links = copies.ToDictionary(c => Assert.Single(c.Recipients), c => Local(LinkIn(c)));
        Assert.All(copies, c => Assert.Equal("List-Unsubscribe=One-Click", c.Header("List-Unsubscribe-Post")));
        Assert.Equal(3, links.Values.Distinct().Count());
        Assert.All(links.Values, l => Assert.StartsWith(listen + "/u/dev@example.org/", l, StringComparison.Ordinal));

        // A GET (a link scanner) shows the button and unsubscribes nobody.
        using (var get = await _client.GetAsync(links["anne@example.com"]))
        {
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        }

        // Forged, for another list, from before a re-subscription: 400, nobody leaves.
        var anne = links["anne@example.com"];
        var forged = anne[..^2] + (anne[^2] == 'A' ? "B" : "A") + anne[^1];
        var otherList = anne.Replace("/u/dev@example.org/", "/u/other@example.org/", StringComparison.Ordinal);
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["members", "remove", "dev@example.org", "bob@example.com"]).ExitCode);
        Assert.Equal(0, MailmanProcess.Run(_instance.Home, ["members", "add", "dev@example.org", "Bob <bob@example.com>", "--no-welcome"]).ExitCode);
        foreach (var bad in new[] { forged, otherList, links["bob@example.com"] })
        {
            using var refused = await OneClick(bad);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        }

        Assert.True(IsMember("dev@example.org", "anne@example.com"));
        Assert.True(IsMember("other@example.org", "anne@example.com"));
        Assert.True(IsMember("dev@example.org", "bob@example.com"));

        // The real one-click: 200, Anne is gone from dev (not from other), and is told so.
        using (var post = await OneClick(anne))
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        }

        Assert.False(IsMember("dev@example.org", "anne@example.com"));
        Assert.True(IsMember("other@example.org", "anne@example.com"));
        var goodbye = Wait.For(() => sink.Messages().FirstOrDefault(m => m.Header("Subject")?.StartsWith("You have been unsubscribed", StringComparison.Ordinal) == true),
            TimeSpan.FromSeconds(60), "the goodbye at the sink");
        Assert.Equal(["anne@example.com"], goodbye.Recipients);

        Inject("dev@example.org", Posts.Plain(subject: "second", messageId: "second@example.com"));
        var second = Wait.For(() => sink.Messages().Where(m => m.Header("Message-Id") == "<second@example.com>").ToList() is { Count: 2 } two ? two : null,
            TimeSpan.FromSeconds(60), "the second post at the sink");
        Assert.Equal(["bob@example.com", "carol@example.com"], second.SelectMany(m => m.Recipients).Order(StringComparer.Ordinal));

        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.DoesNotContain(sink.Messages(), m => m.Header("Message-Id") == "<second@example.com>" && m.Recipients.Contains("anne@example.com"));
        var log = File.ReadAllText(Directory.GetFiles(_instance.Paths.LogsDirectory, "subscribe-*.log").Single());
        Assert.Contains("Leave: anne@example.com unsubscribed from dev@example.org (one-click unsubscribe)", log, StringComparison.Ordinal);
        Assert.Contains("refused: the token does not match", log, StringComparison.Ordinal);
    }
}
