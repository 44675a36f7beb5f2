using Mailman.Lists;
using Mailman.TestSupport;
using Microsoft.Data.Sqlite;

namespace Mailman.Tests.Lists;

public sealed class ListStoreFeatureTests : IDisposable
{
    private static readonly ListName Dev = ListName.Parse("dev@example.org");
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly TempInstance _instance = new();

    public ListStoreFeatureTests() => _instance.CreateList("dev@example.org");

    public void Dispose() => _instance.Dispose();

    // Review 42: an older build took a newer database without a word (the schema's version is
    // a hash: no order) and wrote rows the newer one would have merged.
    [Fact]
    public void A_database_a_newer_build_brought_up_to_date_is_refused_and_left_as_it_is()
    {
        var path = _instance.Paths.Database;
        using (var store = new ListStore(path))
        {
            Assert.NotNull(store.FindList(Dev));
        }

        using (var db = new SqliteConnection("Data Source=" + path + ";Pooling=False"))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "UPDATE schema_steps SET steps = steps + 1; PRAGMA user_version = 7;"; // as a newer build leaves it
            cmd.ExecuteNonQuery();
        }

        SqliteConnection.ClearAllPools();
        var refused = Assert.Throws<DatabaseUnusableException>(() => new ListStore(path));
        Assert.Contains("was brought up to date by a newer mailman", refused.Message, StringComparison.Ordinal);
        var lists = MailmanProcess.Run(_instance.Home, ["lists", "list"]);
        Assert.True(lists.ExitCode == Mailman.Cli.ExitCodes.Config, lists.Stderr);
        Assert.Contains("newer mailman", lists.Stderr, StringComparison.Ordinal);
        Assert.Equal(75, MailmanProcess.Run(_instance.Home, ["inject", "dev@example.org"], Posts.Plain()).ExitCode);

        using var check = new SqliteConnection("Data Source=" + path + ";Pooling=False");
        check.Open();
        using var version = check.CreateCommand();
        version.CommandText = "PRAGMA user_version";
        Assert.Equal(7L, (long)version.ExecuteScalar()!);
    }

    // Review 74: the checkpoint's format changed (the batch window) with the database's schema
    // unchanged, so a build from before it took the instance and misread a delivery under way.
    // The format change is a step: a database this build opened is one such a build refuses.
    [Fact]
    public void A_database_opened_by_this_build_counts_the_checkpoint_format_so_a_build_from_before_it_refuses_it()
    {
        var path = _instance.Paths.Database;
        using (var db = new SqliteConnection("Data Source=" + path + ";Pooling=False"))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "UPDATE schema_steps SET steps = 22; PRAGMA user_version = 7;"; // as the build before the batch window left it
            cmd.ExecuteNonQuery();
        }

        SqliteConnection.ClearAllPools();
        using (var store = new ListStore(path))
        {
            Assert.NotNull(store.FindList(Dev));
        }

        using var check = new SqliteConnection("Data Source=" + path + ";Pooling=False");
        check.Open();
        using var steps = check.CreateCommand();
        steps.CommandText = "SELECT steps FROM schema_steps";
        Assert.InRange((long)steps.ExecuteScalar()!, 23L, long.MaxValue); // more than the 22 that build knows: it refuses
    }

    [Fact]
    public void A_database_of_the_first_schema_is_migrated_in_place_and_keeps_its_members()
    {
        var path = Path.Combine(_instance.Home, "old.db");
        using (var db = new SqliteConnection("Data Source=" + path))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = """
                CREATE TABLE lists (id INTEGER PRIMARY KEY, fqdn TEXT NOT NULL UNIQUE, settings TEXT NOT NULL);
                CREATE TABLE members (id INTEGER PRIMARY KEY, list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
                    address TEXT NOT NULL, address_key TEXT NOT NULL, display_name TEXT NOT NULL DEFAULT '',
                    delivery_enabled INTEGER NOT NULL DEFAULT 1, UNIQUE (list_id, address_key));
                INSERT INTO lists (fqdn, settings) VALUES ('dev@example.org', '{}');
                INSERT INTO members (list_id, address, address_key, display_name) VALUES (1, 'Anne@example.com', 'anne@example.com', 'Anne');
                """;
            cmd.ExecuteNonQuery();
        }

        SqliteConnection.ClearAllPools();
        using (var store = new ListStore(path))
        {
            var anne = store.FindMember(Dev, "anne@example.com")!;
            Assert.True(anne.DeliveryEnabled);
            Assert.Equal("defer", anne.ModerationAction);
            Assert.Equal(0, anne.BounceScore);
        }

        // Opening again finds the schema current and changes nothing.
        using var again = new ListStore(path);
        Assert.Equal("Anne", again.FindMember(Dev, "ANNE@example.com")!.DisplayName);
    }

    [Fact]
    public void One_mailbox_with_its_domain_in_U_labels_and_in_A_labels_is_one_member()
    {
        using var store = new ListStore(_instance.Paths.Database);
        Assert.Equal(1, store.AddMembers(Dev, [new Member("anne@bücher.example", "Anne"), new Member("anne@xn--bcher-kva.example", "Anne"), new Member("ANNE@BÜCHER.example", "")]));
        Assert.True(store.IsMember(Dev, "Anne@XN--BCHER-KVA.example"));
        Assert.Equal("anne@bücher.example", store.FindMember(Dev, "anne@xn--bcher-kva.example")!.Address);
        Assert.Single(store.Members(Dev));

        Assert.Equal(1, store.AddRole(Dev, ListRole.Owner, [new Member("olga@xn--mnchen-3ya.example", ""), new Member("olga@münchen.example", "")]));
        Assert.True(store.HasRole(Dev, ListRole.Owner, "olga@münchen.example"));
        Assert.True(store.TryCountAutoresponse(Dev, "anne+1@bücher.example", DateOnly.FromDateTime(Now.UtcDateTime), 1));
        Assert.False(store.TryCountAutoresponse(Dev, "anne@xn--bcher-kva.example", DateOnly.FromDateTime(Now.UtcDateTime), 1));
        Assert.True(ListStore.SameAddress("x@Bücher.example", " X@xn--bcher-kva.EXAMPLE"));
        Assert.False(ListStore.SameAddress("x@bücher.example", "x@bucher.example"));

        Assert.Equal(1, store.RemoveMembers(Dev, ["anne@XN--bcher-kva.example"]));
        Assert.Empty(store.Members(Dev));
    }

    // A database whose keys were written before an internationalized domain was keyed by its
    // A-labels: both spellings of a mailbox are there. Opening it makes them one: the member who
    // was getting mail stays (the first such) with the stricter moderation action, the first
    // role, the pending request created last (its token was mailed last), the day's automatic-
    // reply counts add up; a lone old key is re-keyed; every dropped row is kept in merged_rows.
    [Fact]
    public void Keys_of_an_older_database_are_made_one_per_mailbox_when_it_is_opened()
    {
        var path = _instance.Paths.Database;
        using (var store = new ListStore(path))
        {
            store.CreateList(new MailingList { Name = ListName.Parse("ops@example.org") });
        }

        using (var db = new SqliteConnection("Data Source=" + path))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = """
                INSERT INTO members (list_id, address, address_key, display_name, serial, delivery_enabled, moderation_action, bounce_score, last_bounce, probe_token) VALUES
                    (1, 'anne@bücher.example', 'anne@bücher.example', 'first', 's1', 1, 'defer', 1, '2026-11-30T00:00:00.000Z', NULL),
                    (1, 'anne@xn--bcher-kva.example', 'anne@xn--bcher-kva.example', 'second', 's2', 1, 'reject', 2.5, '2026-11-29T00:00:00.000Z', 'tok');
                INSERT INTO members (list_id, address, address_key, display_name, serial, delivery_enabled, moderation_action) VALUES
                    (1, 'bob@xn--mnchen-3ya.example', 'bob@xn--mnchen-3ya.example', 'first', 's3', 1, 'defer'),
                    (1, 'Bob@München.example', 'bob@münchen.example', 'second', 's4', 1, 'accept'),
                    (1, 'carl@münchen.example', 'carl@münchen.example', 'alone', 's5', 1, 'defer'),
                    (2, 'anne@bücher.example', 'anne@bücher.example', 'other list', 's6', 1, 'defer'),
                    (1, 'gus@bücher.example', 'gus@bücher.example', 'disabled', 's7', 0, 'hold'),
                    (1, 'gus@xn--bcher-kva.example', 'gus@xn--bcher-kva.example', 'getting mail', 's8', 1, 'accept');
                INSERT INTO roles (list_id, role, address, address_key) VALUES
                    (1, 'owner', 'olga@münchen.example', 'olga@münchen.example'),
                    (1, 'owner', 'olga@xn--mnchen-3ya.example', 'olga@xn--mnchen-3ya.example'),
                    (1, 'moderator', 'olga@münchen.example', 'olga@münchen.example');
                INSERT INTO pending (list_id, kind, key, address, token_hash, created, expires) VALUES
                    (1, 'subscribe', 'dora@bücher.example', 'dora@bücher.example', 'h1', '2026-12-02T00:00:00.000Z', '2026-12-05T00:00:00.000Z'),
                    (1, 'subscribe', 'dora@xn--bcher-kva.example', 'dora@xn--bcher-kva.example', 'h2', '2026-12-01T00:00:00.000Z', '2026-12-04T00:00:00.000Z');
                INSERT INTO autoresponses (list_id, address_key, day, count) VALUES
                    (1, 'eve@bücher.example', '2026-12-01', 1), (1, 'eve@xn--bcher-kva.example', '2026-12-01', 1);
                PRAGMA user_version = 1;
                """;
            cmd.ExecuteNonQuery();
        }

        SqliteConnection.ClearAllPools();
        using (var store = new ListStore(path))
        {
            Assert.Equal(["first", "first", "alone", "getting mail"], store.Members(Dev).Select(m => m.DisplayName));
            Assert.Equal("anne@bücher.example", store.FindMember(Dev, "anne@xn--bcher-kva.example")!.Address);
            var anne = store.FindMember(Dev, "anne@bücher.example")!;
            Assert.Equal(("reject", 2.5, "anne@bücher.example"), (anne.ModerationAction, anne.BounceScore, store.FindProbe(Dev, "tok")?.Address));
            Assert.Equal(["s2"], store.MergedSerials(Dev, "ANNE@xn--bcher-kva.example"));
            Assert.Empty(store.MergedSerials(Dev, "carl@münchen.example"));
            store.RemoveMembers(Dev, ["anne@bücher.example"]);
            store.AddMembers(Dev, [new Member("anne@bücher.example", "again")]);
            Assert.Empty(store.MergedSerials(Dev, "anne@bücher.example")); // a new subscription voids the old links
            Assert.Equal(1, store.RemoveMembers(Dev, ["anne@bücher.example"]));
            store.AddMembers(Dev, [new Member("anne@bücher.example", "first")]);
            Assert.Equal("bob@xn--mnchen-3ya.example", store.FindMember(Dev, "bob@münchen.example")!.Address);
            Assert.Equal("defer", store.FindMember(Dev, "bob@münchen.example")!.ModerationAction);
            var gus = store.FindMember(Dev, "gus@bücher.example")!;
            Assert.Equal(("gus@xn--bcher-kva.example", true, "hold"), (gus.Address, gus.DeliveryEnabled, gus.ModerationAction));
            Assert.True(store.IsMember(Dev, "carl@xn--mnchen-3ya.example"));
            Assert.True(store.IsMember(ListName.Parse("ops@example.org"), "anne@xn--bcher-kva.example"));
            Assert.Single(store.Roles(Dev, ListRole.Owner));
            Assert.True(store.HasRole(Dev, ListRole.Moderator, "olga@xn--mnchen-3ya.example"));
            Assert.Equal("dora@bücher.example", store.FindPending(Dev, PendingKind.Subscribe, ListStore.AddressKey("dora@xn--bcher-kva.example"))!.Address);
            Assert.True(store.TryCountAutoresponse(Dev, "eve@bücher.example", DateOnly.FromDateTime(Now.UtcDateTime), 3));
            Assert.False(store.TryCountAutoresponse(Dev, "eve@bücher.example", DateOnly.FromDateTime(Now.UtcDateTime), 3));
        }

        using (var db = new SqliteConnection("Data Source=" + path))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "SELECT table_name, json_extract(dropped, '$.address') FROM merged_rows ORDER BY id";
            using var reader = cmd.ExecuteReader();
            var merged = new List<string>();
            while (reader.Read())
            {
                merged.Add(reader.GetString(0) + " " + reader.GetString(1));
            }

            Assert.Equal(["members anne@xn--bcher-kva.example", "members Bob@München.example", "members gus@bücher.example", "roles olga@xn--mnchen-3ya.example", "pending dora@xn--bcher-kva.example"], merged);
        }

        SqliteConnection.ClearAllPools();
        using var again = new ListStore(path);
        Assert.Equal(4, again.CountMembers(Dev));
    }

    [Fact]
    public void Disabling_records_the_reason_and_enabling_resets_the_bounce_state()
    {
        using var store = new ListStore(_instance.Paths.Database);
        store.AddMembers(Dev, [new Member("a@example.com", "A")]);
        Assert.True(store.SetDelivery(Dev, "a@example.com", DisabledReason.Bounces, Now));
        var a = store.FindMember(Dev, "a@example.com")!;
        Assert.False(a.DeliveryEnabled);
        Assert.Equal(DisabledReason.Bounces, a.DisabledReason);
        Assert.Equal(Now, a.DisabledAt);
        Assert.Empty(store.Members(Dev, deliveryEnabledOnly: true));
        Assert.Equal(1, store.CountDisabledSince(Now.AddHours(-1)));

        Assert.True(store.SetDelivery(Dev, "a@example.com", DisabledReason.None, Now));
        a = store.FindMember(Dev, "a@example.com")!;
        Assert.True(a.DeliveryEnabled);
        Assert.Equal("", a.DisabledReason);
        Assert.Null(a.DisabledAt);
        Assert.False(store.SetDelivery(Dev, "nobody@example.com", DisabledReason.User, Now));
    }

    [Fact]
    public void A_new_subscription_gets_a_new_serial()
    {
        using var store = new ListStore(_instance.Paths.Database);
        store.AddMembers(Dev, [new Member("a@example.com", "A")]);
        var first = store.FindMember(Dev, "a@example.com")!.Serial;
        store.RemoveMembers(Dev, ["a@example.com"]);
        store.AddMembers(Dev, [new Member("a@example.com", "A")]);
        var second = store.FindMember(Dev, "a@example.com")!.Serial;
        Assert.Equal(16, first.Length);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void Owners_and_moderators_are_kept_per_role()
    {
        using var store = new ListStore(_instance.Paths.Database);
        Assert.Equal(1, store.AddRole(Dev, ListRole.Owner, [new Member("Boss@example.com", "Boss"), new Member("boss@example.com", "dup")]));
        store.AddRole(Dev, ListRole.Moderator, [new Member("mod@example.com", "Mod")]);
        Assert.Equal(["Boss@example.com"], store.Roles(Dev, ListRole.Owner).Select(m => m.Address));
        Assert.True(store.HasRole(Dev, ListRole.Moderator, "MOD@example.com"));
        Assert.False(store.HasRole(Dev, ListRole.Owner, "mod@example.com"));
        Assert.Equal(1, store.RemoveRole(Dev, ListRole.Owner, ["boss@EXAMPLE.com"]));
        Assert.Throws<ArgumentException>(() => store.Roles(Dev, "admin"));
    }

    [Fact]
    public void A_pending_request_is_found_by_its_token_only_while_live_and_a_second_request_renews_it()
    {
        using var store = new ListStore(_instance.Paths.Database);
        var (token, renewed) = store.UpsertPending(Dev, PendingKind.Subscribe, "a@example.com", "a@example.com", "A", "", Now, Now.AddDays(3));
        Assert.False(renewed);
        Assert.True(ListStore.IsTokenShaped(token));
        Assert.Equal("a@example.com", store.FindPending(token, Now)!.Address);
        Assert.Null(store.FindPending(token, Now.AddDays(3)));

        var (second, again) = store.UpsertPending(Dev, PendingKind.Subscribe, "a@example.com", "a@example.com", "A", "", Now, Now.AddDays(3));
        Assert.True(again);
        Assert.Null(store.FindPending(token, Now));
        var request = store.FindPending(second, Now)!;
        Assert.Single(store.PendingRequests(Dev));
        Assert.True(store.DeletePending(request.Id));
        Assert.False(store.DeletePending(request.Id));
        Assert.Null(store.FindPending(second, Now));
    }

    // Review 77: the newest request deleted, the next one got its number again, and
    // `pending confirm N` from an older listing would have acted on it.
    [Fact]
    public void A_request_number_is_never_given_twice()
    {
        using var store = new ListStore(_instance.Paths.Database);
        store.UpsertPending(Dev, PendingKind.Subscribe, "a@example.com", "a@example.com", "A", "", Now, Now.AddDays(3));
        store.UpsertPending(Dev, PendingKind.Subscribe, "b@example.com", "b@example.com", "B", "", Now, Now.AddDays(3));
        var first = store.PendingRequests(Dev).Select(p => p.Id).ToList();
        Assert.True(store.DeletePending(first[1]));
        store.UpsertPending(Dev, PendingKind.Subscribe, "c@example.com", "c@example.com", "C", "", Now, Now.AddDays(3));
        var c = Assert.Single(store.PendingRequests(Dev), p => p.Key == "c@example.com").Id;
        Assert.True(c > first[1], $"request c got number {c}, b had {first[1]}");
        Assert.True(store.DeletePending(c));
        Assert.True(store.DeletePending(first[0]));
        store.UpsertPending(Dev, PendingKind.Subscribe, "d@example.com", "d@example.com", "D", "", Now, Now.AddDays(3));
        Assert.True(Assert.Single(store.PendingRequests(Dev)).Id > c);
    }

    // Review 98: a database restored from a backup has the backup's highest number, and numbers
    // given since were given again. The mark beside the database (var/pending.last) survives it.
    [Fact]
    public void A_request_number_is_not_given_again_after_the_database_is_restored_from_a_backup()
    {
        var backup = _instance.Paths.Database + ".backup";
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.UpsertPending(Dev, PendingKind.Subscribe, "a@example.com", "a@example.com", "A", "", Now, Now.AddDays(3));
            using (var source = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_instance.Paths.Database};Pooling=False"))
            using (var copy = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={backup};Pooling=False"))
            {
                source.Open();
                copy.Open();
                source.BackupDatabase(copy); // sqlite3's .backup, as README's backup says
            }

            store.UpsertPending(Dev, PendingKind.Subscribe, "b@example.com", "b@example.com", "B", "", Now, Now.AddDays(3));
        }

        var b = 2L;
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        File.Copy(backup, _instance.Paths.Database, overwrite: true);
        File.Delete(_instance.Paths.Database + "-wal");
        File.Delete(_instance.Paths.Database + "-shm");
        Assert.Equal(b.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(_instance.Paths.VarDirectory, ListStore.PendingMarkFile)).Trim());

        using (var store = new ListStore(_instance.Paths.Database))
        {
            Assert.Equal(["a@example.com"], store.PendingRequests(Dev).Select(p => p.Key)); // the backup's
            store.UpsertPending(Dev, PendingKind.Subscribe, "c@example.com", "c@example.com", "C", "", Now, Now.AddDays(3));
            Assert.Equal(b + 1, Assert.Single(store.PendingRequests(Dev), p => p.Key == "c@example.com").Id);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("../../etc/passwd")]
    [InlineData("ABCDEF0123456789ABCDEF0123456789")]
    [InlineData("0123456789abcdef0123456789abcde")]
    [InlineData("0123456789abcdef0123456789abcdef0")]
    public void Tokens_of_the_wrong_shape_find_nothing(string token)
    {
        using var store = new ListStore(_instance.Paths.Database);
        store.UpsertPending(Dev, PendingKind.Subscribe, "a@example.com", "a@example.com", "", "", Now, Now.AddDays(1));
        Assert.Null(store.FindPending(token, Now));
    }

    [Fact]
    public void Automatic_replies_to_one_address_stop_at_the_daily_limit_and_start_again_the_next_day()
    {
        using var store = new ListStore(_instance.Paths.Database);
        var day = DateOnly.FromDateTime(Now.UtcDateTime);
        Assert.Equal(3, Enumerable.Range(0, 10).Count(_ => store.TryCountAutoresponse(Dev, "victim@example.com", day, 3)));
        Assert.True(store.TryCountAutoresponse(Dev, "other@example.com", day, 3));
        Assert.True(store.TryCountAutoresponse(Dev, "VICTIM@example.com", day.AddDays(1), 3));
        Assert.True(store.TryCountAutoresponse(Dev, "victim@example.com", day, 0));
    }

    [Fact]
    public void A_clock_that_swings_back_and_forth_does_not_start_a_days_reply_count_again()
    {
        // Review 88: only today's counts were kept, so each swing between two dates sent that
        // date's replies again.
        using var store = new ListStore(_instance.Paths.Database);
        var day = DateOnly.FromDateTime(Now.UtcDateTime);
        var later = day.AddDays(2);
        var sent = 0;
        for (var swing = 0; swing < 4; swing++)
        {
            sent += Enumerable.Range(0, 3).Count(_ => store.TryCountAutoresponse(Dev, "victim@example.com", swing % 2 == 0 ? later : day, 2));
        }

        Assert.Equal(4, sent); // two on each of the two dates
        Assert.True(store.TryCountAutoresponse(Dev, "victim@example.com", day.AddDays(3), 2));
    }

    // A paid notice is kept a week for its entry run again (review 126), then goes; one paid
    // without a time (a command line's) goes at once; only unpaid ones are owed.
    [Fact]
    public void A_paid_notice_is_kept_a_week_then_deleted()
    {
        using var store = new ListStore(_instance.Paths.Database);
        store.OweNotice(Dev, "welcome", "a@example.com", "", "17961428495653330-00000001", "welcome:a@example.com", Now);
        store.OweNotice(Dev, "welcome", "b@example.com", "", "17961428495653330-00000002", "welcome:b@example.com", Now);
        store.OweNotice(Dev, "welcome", "c@example.com", "", "17961428495653330-00000003", "welcome:c@example.com", Now);
        store.PaidNotice("17961428495653330-00000001", "welcome:a@example.com", sent: false, now: Now);
        store.PaidNotice("17961428495653330-00000002", "welcome:b@example.com");

        var paid = store.FindOwedNotice("17961428495653330-00000001", "welcome:a@example.com");
        Assert.Equal(Now, paid?.Paid);
        Assert.False(paid!.Sent);
        Assert.Null(store.FindOwedNotice("17961428495653330-00000002", "welcome:b@example.com"));
        Assert.Equal(["c@example.com"], store.OwedNotices().Select(o => o.Address));

        store.PaidNotice("17961428495653330-00000003", "welcome:c@example.com", now: Now + ListStore.PaidNoticeKept - TimeSpan.FromSeconds(1));
        Assert.NotNull(store.FindOwedNotice("17961428495653330-00000001", "welcome:a@example.com"));
        store.OweNotice(Dev, "welcome", "d@example.com", "", "17961428495653330-00000004", "welcome:d@example.com", Now);
        store.PaidNotice("17961428495653330-00000004", "welcome:d@example.com", now: Now + ListStore.PaidNoticeKept + TimeSpan.FromSeconds(1));
        Assert.Null(store.FindOwedNotice("17961428495653330-00000001", "welcome:a@example.com"));
        Assert.True(store.FindOwedNotice("17961428495653330-00000003", "welcome:c@example.com")!.Sent);
        Assert.Empty(store.OwedNotices());
    }
}
