// The one-click endpoint in-process on a loopback port, driven by a real HttpClient: a POST with
// List-Unsubscribe=One-Click unsubscribes, a GET unsubscribes nobody, and every failure is the
// same 400 page.
using System.Globalization;
using System.Net;
using System.Text;
using Mailman.Http;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.Requests;
using Mailman.Tests.Runners;
using Mailman.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mailman.Tests.Http;

public sealed class OneClickEndpointTests : IAsyncLifetime, IDisposable
{
    private static readonly ListName Dev = ListName.Parse("dev@example.org");
    private readonly TempInstance _instance = new();
    private readonly RunnerHarness _h;
    private readonly OneClickServer _server;
    private readonly HttpClient _client = new();
    private readonly int _port = Net.FreePort();

    public OneClickEndpointTests()
    {
        _instance.CreateList("dev@example.org", l => l.DisplayName = "Dev");
        _instance.CreateList("other@example.org");
        _instance.AddMembers("dev@example.org", [new Member("anne@example.com", "Anne"), new Member("bob@example.com", "Bob")]);
        _instance.AddMembers("other@example.org", [new Member("anne@example.com", "Anne")]);
        _h = new RunnerHarness(_instance, o =>
        {
            o.Http.Url = "http://127.0.0.1:" + _port.ToString(CultureInfo.InvariantCulture);
            o.Http.PublicUrl = "https://lists.example.org/mm";
        });
        Links = new OneClickLinks(_h.Options, new Mailman.Instance.SecretKey(_instance.Paths));
        var loggers = _h.Services.GetRequiredService<ILoggerFactory>();
        var endpoint = new OneClickEndpoint(Links, new ListStoreFactory(_instance.Paths), _h.Services.GetRequiredService<Membership>(), _h.Time, loggers.CreateLogger<OneClickEndpoint>());
        _server = new OneClickServer(_h.Options, _instance.Paths, endpoint, loggers, loggers.CreateLogger<OneClickServer>());
    }

    private OneClickLinks Links { get; }

    public Task InitializeAsync() => _server.StartAsync(CancellationToken.None);

    public async Task DisposeAsync()
    {
        await _server.StopAsync(CancellationToken.None);
        await _server.DisposeAsync();
    }

    public void Dispose()
    {
        _client.Dispose();
        _h.Dispose();
        _instance.Dispose();
    }

    private string Url(string list, string address)
    {
        MemberRecord member;
        using (var store = new ListStore(_instance.Paths.Database))
        {
            member = store.FindMember(ListName.Parse(list), address)!;
        }

        return Path(list, address, Links.Token(ListName.Parse(list), address, member.Serial));
    }

    private string Path(string list, string address, string token)
        => $"http://127.0.0.1:{_port}/u/{list}/{Encoding.ASCII.GetString(OneClickLinks.Piece(Encoding.UTF8.GetBytes(address), token))}";

    private Task<HttpResponseMessage> OneClick(string url, string body = "List-Unsubscribe=One-Click", string type = "application/x-www-form-urlencoded")
        => _client.PostAsync(url, new StringContent(body, Encoding.ASCII, type));

    private MemberRecord? Member(string list, string address)
    {
        using var store = new ListStore(_instance.Paths.Database);
        return store.FindMember(ListName.Parse(list), address);
    }

    [Fact]
    public async Task A_one_click_POST_unsubscribes_at_once_with_200_the_goodbye_and_a_log_line()
    {
        var url = Url("dev@example.org", "anne@example.com");
        using var response = await OneClick(url);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("is no longer subscribed", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(response.Headers.Contains("Set-Cookie"));
        Assert.False(response.Headers.Contains("Server"));
        Assert.Null(Member("dev@example.org", "anne@example.com"));
        Assert.NotNull(Member("other@example.org", "anne@example.com"));
        var goodbye = Assert.Single(RequestRunnerTests.Out(_h));
        Assert.Equal("anne@example.com", goodbye.To);
        Assert.Equal("You have been unsubscribed from the Dev mailing list", goodbye.Message.Subject);
        Assert.Contains(_h.Logs.Lines, l => l.Contains("Leave: anne@example.com unsubscribed from dev@example.org (one-click unsubscribe)", StringComparison.Ordinal));

        // The link is spent: the member is gone.
        using var again = await OneClick(url);
        Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
    }

    // An upgrade that made two spellings of one mailbox one member keeps the dropped row in
    // merged_rows: the link in a copy sent to that spelling, with that row's serial, still works.
    [Fact]
    public async Task A_link_with_the_serial_of_a_spelling_an_upgrade_merged_still_unsubscribes()
    {
        using (var db = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + _instance.Paths.Database))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = """
                INSERT INTO merged_rows (table_name, kept_rowid, dropped, merged_at) VALUES ('members', 1,
                    json_object('list_id', (SELECT CAST(id AS TEXT) FROM lists WHERE fqdn = 'dev@example.org'), 'address', 'ANNE@example.com',
                        'address_key', 'anne@example.com', 'serial', 'feedbeef00000001'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 second'))
                """;
            cmd.ExecuteNonQuery();
        }

        using (var forged = await OneClick(Path("dev@example.org", "ANNE@example.com", Links.Token(Dev, "ANNE@example.com", "feedbeef00000002"))))
        {
            Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        }

        using var response = await OneClick(Path("dev@example.org", "ANNE@example.com", Links.Token(Dev, "ANNE@example.com", "feedbeef00000001")));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(Member("dev@example.org", "anne@example.com"));
        Assert.NotNull(Member("other@example.org", "anne@example.com"));
    }

    [Fact]
    public async Task A_GET_shows_one_button_that_posts_and_unsubscribes_nobody()
    {
        using var response = await _client.GetAsync(Url("dev@example.org", "anne@example.com"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var page = await response.Content.ReadAsStringAsync();
        Assert.Contains("<form method=\"post\">", page, StringComparison.Ordinal);
        Assert.Contains("name=\"List-Unsubscribe\" value=\"One-Click\"", page, StringComparison.Ordinal);
        Assert.NotNull(Member("dev@example.org", "anne@example.com"));
        Assert.Empty(RequestRunnerTests.Out(_h));
    }

    [Fact]
    public async Task Every_failure_is_the_same_400_page_and_unsubscribes_nobody()
    {
        var anne = Url("dev@example.org", "anne@example.com");
        var token = anne[(anne.LastIndexOf('/') + 1)..];
        var forged = anne[..^1] + (anne[^1] == 'A' ? 'B' : 'A');
        var otherList = anne.Replace("/u/dev@example.org/", "/u/other@example.org/", StringComparison.Ordinal);
        var bobWithAnnesToken = Path("dev@example.org", "bob@example.com", token);
        var stranger = Path("dev@example.org", "stranger@example.com", Links.Token(Dev, "stranger@example.com", ""));
        var noList = Path("ghost@example.org", "anne@example.com", token);
        string[] bad =
        [
            forged, otherList, bobWithAnnesToken, stranger, noList,
            $"http://127.0.0.1:{_port}/u/dev@example.org/%2e%2e/{token}",
            $"http://127.0.0.1:{_port}/u/..%2fetc@example.org/YQ/{token}",
            $"http://127.0.0.1:{_port}/u/dev@example.org/{new string('Q', 400)}/{token}",
            $"http://127.0.0.1:{_port}/u/dev@example.org/YW5uZUBleGFtcGxlLmNvbQ/{token}%2F",
            $"http://127.0.0.1:{_port}/u/dev@example.org/YW5uZUBleGFtcGxlLmNvbQ/short",
        ];
        var bodies = new HashSet<string>(StringComparer.Ordinal);
        foreach (var url in bad)
        {
            using var post = await OneClick(url);
            Assert.True(post.StatusCode == HttpStatusCode.BadRequest, url + "\n" + string.Join("\n", _h.Logs.Lines));
            bodies.Add(await post.Content.ReadAsStringAsync());
            using var get = await _client.GetAsync(url);
            Assert.True(get.StatusCode == HttpStatusCode.BadRequest, url + "\n" + string.Join("\n", _h.Logs.Lines));
            bodies.Add(await get.Content.ReadAsStringAsync());
        }

        // Kestrel refuses a NUL in the path itself, before any of our code.
        using (var nul = await OneClick($"http://127.0.0.1:{_port}/u/dev@example.org/YW5uZUBleGFtcGxlLmNvbQ/{token}%00"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, nul.StatusCode);
        }

        using (var nul = await _client.GetAsync($"http://127.0.0.1:{_port}/u/dev@example.org/YW5uZUBleGFtcGxlLmNvbQ/{token}%00"))
        {
            Assert.True(nul.StatusCode == HttpStatusCode.BadRequest, string.Join("\n", _h.Logs.Lines));
        }

        // The right link without the one-click body is refused the same way.
        using (var wrongBody = await OneClick(anne, "List-Unsubscribe=Yes"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, wrongBody.StatusCode);
            bodies.Add(await wrongBody.Content.ReadAsStringAsync());
        }

        Assert.Single(bodies);
        Assert.NotNull(Member("dev@example.org", "anne@example.com"));
        Assert.NotNull(Member("dev@example.org", "bob@example.com"));
        Assert.NotNull(Member("other@example.org", "anne@example.com"));
        Assert.Empty(RequestRunnerTests.Out(_h));
    }

    [Fact]
    public async Task Nothing_else_is_served_and_the_body_is_limited()
    {
        var anne = Url("dev@example.org", "anne@example.com");
        using (var root = await _client.GetAsync($"http://127.0.0.1:{_port}/"))
        {
            Assert.Equal(HttpStatusCode.NotFound, root.StatusCode);
        }

        using (var put = await _client.PutAsync(anne, new StringContent("List-Unsubscribe=One-Click")))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, put.StatusCode);
        }

        // Kestrel answers 413 and may close the connection while the client still writes.
        try
        {
            using var big = await OneClick(anne, "List-Unsubscribe=One-Click&" + new string('x', 1 << 20));
            Assert.NotEqual(HttpStatusCode.OK, big.StatusCode);
        }
        catch (HttpRequestException)
        {
        }

        Assert.NotNull(Member("dev@example.org", "anne@example.com"));
    }

    // Review 37: 30,000 bad links a second filled the logs to Serilog's daily cap in minutes (and
    // a chunked body over the limit wrote a stack trace per request to error-DATE.log); logged
    // paths carried the member's token.
    [Fact]
    public async Task A_flood_of_refused_requests_is_logged_a_few_a_minute_with_a_count_and_never_with_the_token()
    {
        var anne = Url("dev@example.org", "anne@example.com");
        var token = anne[(anne.LastIndexOf('/') + 1)..];
        var forged = anne[..^1] + (anne[^1] == 'A' ? 'B' : 'A');
        // A chunked body over the limit: refused like the others, no unhandled exception.
        using (var chunked = new StreamContent(new MemoryStream(Encoding.ASCII.GetBytes("List-Unsubscribe=One-Click&" + new string('x', 3 * OneClickEndpoint.MaxBodyBytes)))))
        {
            chunked.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-www-form-urlencoded");
            using var request = new HttpRequestMessage(HttpMethod.Post, anne) { Content = chunked };
            request.Headers.TransferEncodingChunked = true;
            try
            {
                using var response = await _client.SendAsync(request);
                Assert.NotEqual(HttpStatusCode.OK, response.StatusCode);
            }
            catch (HttpRequestException)
            {
                // Kestrel may close the connection while the client still writes.
            }
        }

        Wait.Until(() => _h.Logs.Lines.Any(l => l.Contains("refused: the body is not", StringComparison.Ordinal)), TimeSpan.FromSeconds(30), "the chunked body's refusal");

        // Review 38: a trailing segment made the link malformed and it was logged whole.
        using (var trailing = await _client.GetAsync(anne + "/"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, trailing.StatusCode);
        }

        using (var extra = await OneClick(anne + "/x"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, extra.StatusCode);
        }

        Assert.Contains(_h.Logs.Lines, l => l.Contains("One-click GET to /u/dev@example.org/YW5uZUBleGFtcGxlLmNvbQ/(token) refused: malformed link", StringComparison.Ordinal));

        for (var i = 0; i < 25; i++)
        {
            using var malformed = await _client.GetAsync($"http://127.0.0.1:{_port}/u/{new string('A', i + 1)}");
            Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
            using var wrongBody = await OneClick(anne, "List-Unsubscribe=Yes");
            Assert.Equal(HttpStatusCode.BadRequest, wrongBody.StatusCode);
        }

        using (var forgedPost = await OneClick(forged))
        {
            Assert.Equal(HttpStatusCode.BadRequest, forgedPost.StatusCode);
        }

        var refused = _h.Logs.Lines.Where(l => l.Contains("One-click", StringComparison.Ordinal) && l.Contains("refused", StringComparison.Ordinal)).ToList();
        Assert.Equal(OneClickEndpoint.RefusalsLogged, refused.Count);
        Assert.DoesNotContain(_h.Logs.Lines, l => l.Contains("unhandled", StringComparison.OrdinalIgnoreCase) || l.StartsWith("Error", StringComparison.Ordinal));
        Assert.Contains(refused, l => l.Contains("/u/dev@example.org/YW5uZUBleGFtcGxlLmNvbQ/(token) refused", StringComparison.Ordinal));
        // (ASP.NET Core's own Information lines name the whole URL; the daemon logs Microsoft.* from Warning up.)
        Assert.DoesNotContain(_h.Logs.Lines.Where(l => !l.StartsWith("Information Microsoft.", StringComparison.Ordinal)), l => l.Contains(token[..^1], StringComparison.Ordinal));

        // The count of those left out is logged when the minute ends, with no request to bring it
        // (a flood that stopped left it unwritten); the next minute's first refusal has its line.
        Assert.DoesNotContain(_h.Logs.Lines, l => l.Contains("not logged one by one", StringComparison.Ordinal));
        _h.Time.Advance(TimeSpan.FromMinutes(1));
        Wait.Until(() => _h.Logs.Lines.Any(l => l.Contains("not logged one by one", StringComparison.Ordinal)), TimeSpan.FromSeconds(30), "the count line at the minute's end");
        using (var next = await OneClick(forged))
        {
            Assert.Equal(HttpStatusCode.BadRequest, next.StatusCode);
        }

        var after = _h.Logs.Lines.Where(l => l.Contains("One-click", StringComparison.Ordinal) && l.Contains("refused", StringComparison.Ordinal)).Skip(refused.Count).ToList();
        Assert.Equal(2, after.Count);
        Assert.Contains("One-click endpoint: 34 more refused or repeated requests were not logged one by one", after[0], StringComparison.Ordinal);
        Assert.Contains("One-click POST for anne@example.com of dev@example.org refused: the token does not match", after[1], StringComparison.Ordinal);
        Assert.NotNull(Member("dev@example.org", "anne@example.com"));
    }

    // Review 37: members with quoted local parts got links the endpoint refused as malformed.
    [Fact]
    public async Task A_member_with_a_quoted_local_part_unsubscribes_with_one_click()
    {
        string[] quoted = ["\"john..doe\"@example.com", "\"a\\\"b\"@example.com"];
        _instance.AddMembers("dev@example.org", quoted.Select(a => new Member(a, "")).ToList());
        foreach (var address in quoted)
        {
            Assert.NotNull(Member("dev@example.org", address));
            using var response = await OneClick(Url("dev@example.org", address));
            Assert.True(response.StatusCode == HttpStatusCode.OK, address + "\n" + string.Join("\n", _h.Logs.Lines));
            Assert.Null(Member("dev@example.org", address));
        }
    }

    // Review 37: a database held past the store's wait (a backup, a long import) gave a bare 500
    // and a stack trace, and the unsubscription was lost. Now 503 with Retry-After: the mail
    // client tries again, and then it works.
    [Fact]
    public async Task A_one_click_while_the_database_is_locked_is_a_503_to_try_again_and_changes_nothing()
    {
        var url = Url("dev@example.org", "bob@example.com");
        using (var holder = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + _instance.Paths.Database + ";Pooling=False"))
        {
            holder.Open();
            using (var begin = holder.CreateCommand())
            {
                begin.CommandText = "BEGIN EXCLUSIVE";
                begin.ExecuteNonQuery();
            }

            using var busy = await OneClick(url);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, busy.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(120), busy.Headers.RetryAfter?.Delta);
            Assert.Contains("try again", await busy.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Contains(_h.Logs.Lines, l => l.StartsWith("Warning", StringComparison.Ordinal) && l.Contains("answered 503 (try again): the database is busy", StringComparison.Ordinal));
        }

        Assert.NotNull(Member("dev@example.org", "bob@example.com"));
        using var again = await OneClick(url);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Null(Member("dev@example.org", "bob@example.com"));
    }

    [Fact]
    public async Task A_multipart_form_data_one_click_body_is_accepted_too()
    {
        using var form = new MultipartFormDataContent { { new StringContent("One-Click"), "List-Unsubscribe" } };
        using var response = await _client.PostAsync(Url("dev@example.org", "bob@example.com"), form);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(Member("dev@example.org", "bob@example.com"));
    }

    [Fact]
    public async Task With_one_click_action_disable_the_member_stays_disabled_by_user_and_an_old_link_dies_when_they_join_again()
    {
        using (var store = new ListStore(_instance.Paths.Database))
        {
            var list = store.GetList(Dev);
            list.Set("one_click_action", "disable");
            store.SaveList(list);
        }

        var url = Url("dev@example.org", "anne@example.com");
        using (var response = await OneClick(url))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var anne = Member("dev@example.org", "anne@example.com")!;
        Assert.False(anne.DeliveryEnabled);
        Assert.Equal(DisabledReason.User, anne.DisabledReason);
        using (var twice = await OneClick(url))
        {
            Assert.Equal(HttpStatusCode.OK, twice.StatusCode);
        }

        Assert.Single(RequestRunnerTests.Out(_h)); // one goodbye
        RequestRunnerTests.Deliver(_h);

        // Anne joins again (confirmed): delivery is back, with a new serial; the old link is void.
        var membership = _h.Services.GetRequiredService<Membership>();
        var dev = new ListStoreFactory(_instance.Paths).FindList(Dev)!;
        Assert.Equal(JoinResult.Reenabled, membership.Join(dev, "anne@example.com", "Anne", "test", Membership.NewTrigger(_h.Time)).Result);
        Assert.True(Member("dev@example.org", "anne@example.com")!.DeliveryEnabled);
        using (var replay = await OneClick(url))
        {
            Assert.Equal(HttpStatusCode.BadRequest, replay.StatusCode);
        }

        Assert.True(Member("dev@example.org", "anne@example.com")!.DeliveryEnabled);
        Assert.Equal(0, _instance.Count(QueueSet.Shunt));
    }
}
