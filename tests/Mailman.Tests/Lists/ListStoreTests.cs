using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Tests.Lists;

public sealed class ListStoreTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void Lists_round_trip_their_settings()
    {
        _instance.CreateList("dev@example.org", l =>
        {
            l.DisplayName = "Dev";
            l.Set("personalize", "none");
            l.Set("footer", "a\\nb");
        });
        using var store = new ListStore(_instance.Paths.Database);
        var list = store.GetList(ListName.Parse("dev@example.org"));
        Assert.Equal("Dev", list.DisplayName);
        Assert.Equal(Personalization.None, list.Personalize);
        Assert.Equal("a\nb", list.FooterTemplate);
        Assert.Throws<ListExistsException>(() => store.CreateList(new MailingList { Name = list.Name }));
    }

    [Fact]
    public void DMARC_settings_use_Mailman_3s_names_and_values_and_round_trip()
    {
        _instance.CreateList("dev@example.org", l =>
        {
            l.Set("dmarc_mitigate_action", "Wrap_Message");
            l.Set("dmarc_mitigate_unconditionally", "yes");
            l.Set("dmarc_moderation_notice", "No.\\nAsk $listowner.");
            l.Set("dmarc_wrapped_message_text", "Wrapped.");
        });
        using var store = new ListStore(_instance.Paths.Database);
        var list = store.GetList(ListName.Parse("dev@example.org"));
        Assert.Equal(DmarcMitigateAction.WrapMessage, list.DmarcMitigateAction);
        Assert.True(list.DmarcMitigateUnconditionally);
        Assert.Equal("No.\nAsk $listowner.", list.DmarcModerationNotice);
        var shown = list.Describe().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal("wrap_message", shown["dmarc_mitigate_action"]);
        Assert.Equal("true", shown["dmarc_mitigate_unconditionally"]);
        Assert.Equal("No.\\nAsk $listowner.", shown["dmarc_moderation_notice"]);
        Assert.Equal(DmarcMitigateAction.NoMitigation, new MailingList().DmarcMitigateAction);
    }

    [Fact]
    public void Members_are_unique_per_address_ignoring_case_and_stream_in_join_order()
    {
        _instance.CreateList("dev@example.org");
        using var store = new ListStore(_instance.Paths.Database);
        var name = ListName.Parse("dev@example.org");
        Assert.Equal(2, store.AddMembers(name, [new Member("b@example.com", "B"), new Member("a@example.com", "A"), new Member("B@Example.com", "dup")]));
        Assert.Equal(["b@example.com", "a@example.com"], store.Members(name).Select(m => m.Address));
        Assert.True(store.IsMember(name, "A@EXAMPLE.COM"));
        Assert.Equal(1, store.RemoveMembers(name, ["A@example.com"]));
        Assert.False(store.IsMember(name, "a@example.com"));
    }

    [Fact]
    public void A_hundred_thousand_members_import_in_one_transaction()
    {
        _instance.CreateList("big@example.org");
        using var store = new ListStore(_instance.Paths.Database);
        var name = ListName.Parse("big@example.org");
        Assert.Equal(100_000, store.AddMembers(name, TempInstance.NumberedMembers(100_000)));
        Assert.Equal(100_000, store.CountMembers(name));
        Assert.Equal(100_000, store.Members(name, deliveryEnabledOnly: true).Count());
    }

    // Review 40: a new database made on a filling disk was renamed into place while its schema
    // still sat in the WAL, whose checkpoint failed; the WAL was deleted and the real path held a
    // damaged file that every verb then refused ("restore it from a backup"). Whole, or absent.
    [Fact]
    public void A_database_made_on_a_filling_disk_is_whole_or_not_there()
    {
        var db = _instance.Paths.Database;
        using var disk = Tmpfs.Mount(_instance.Paths.VarDirectory, "2m");
        var outcomes = new List<string>();
        for (var leave = 4; leave <= 200; leave += 12)
        {
            disk.Fill(leave * 1024);
            try
            {
                using (new ListStore(db, create: true))
                {
                }

                outcomes.Add($"{leave}K made");
            }
            catch (Microsoft.Data.Sqlite.SqliteException e) when (e.SqliteErrorCode is 10 or 13) // IOERR or FULL: 75, try again
            {
                outcomes.Add($"{leave}K full");
            }
            finally
            {
                Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
                disk.Free();
            }

            if (File.Exists(db))
            {
                // With the space back, the file under the real name is a database.
                using (var store = new ListStore(db))
                {
                    store.CreateList(new MailingList { Name = ListName.Parse("dev@example.org"), DisplayName = "dev" });
                    Assert.NotNull(store.FindList(ListName.Parse("dev@example.org")));
                }

                Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            }

            Assert.Empty(Directory.GetFiles(_instance.Paths.VarDirectory, "mailman.db.new-*"));
            foreach (var file in Directory.GetFiles(_instance.Paths.VarDirectory, "mailman.db*"))
            {
                File.Delete(file);
            }
        }

        Assert.Contains(outcomes, o => o.EndsWith(" full", StringComparison.Ordinal));
        Assert.Contains(outcomes, o => o.EndsWith(" made", StringComparison.Ordinal));
    }

    // Review 41: File.Move without overwrite checks and then renames, so the slower of two
    // processes making the database replaced the one the faster had already written a list into.
    // link(2) names the file only when the name is free, in one step.
    [Fact]
    public void A_database_is_put_in_place_only_where_none_is_and_never_over_another()
    {
        var theirs = _instance.Paths.Database;
        var ours = theirs + ".new-ours";
        File.WriteAllText(theirs, "the other process's database");
        File.WriteAllText(ours, "ours");
        Assert.False(Mailman.Instance.FileOwner.TryLinkNew(ours, theirs));
        Assert.Equal("the other process's database", File.ReadAllText(theirs));
        File.Delete(theirs);
        Assert.True(Mailman.Instance.FileOwner.TryLinkNew(ours, theirs));
        Assert.Equal("ours", File.ReadAllText(theirs));
        Assert.Throws<IOException>(() => Mailman.Instance.FileOwner.TryLinkNew(theirs + ".none", theirs + ".other"));
    }

    // Review 40: a process killed while it made the database left mailman.db.new-* for good.
    [Fact]
    public void The_temporary_files_of_a_making_killed_an_hour_ago_are_removed_by_the_next_and_a_recent_one_is_left()
    {
        var db = _instance.Paths.Database;
        var old = db + ".new-0123456789abcdef0123456789abcdef";
        var recent = db + ".new-fedcba9876543210fedcba9876543210";
        File.WriteAllText(old, "half made");
        File.WriteAllText(old + "-journal", "");
        File.WriteAllText(recent, "being made");
        File.SetLastWriteTimeUtc(old, DateTime.UtcNow.AddHours(-2));
        File.SetLastWriteTimeUtc(old + "-journal", DateTime.UtcNow.AddHours(-2));

        using (new ListStore(db, create: true))
        {
        }

        Assert.False(File.Exists(old));
        Assert.False(File.Exists(old + "-journal"));
        Assert.True(File.Exists(recent));
    }

    [Theory]
    [InlineData("personalize", "sometimes")]
    [InlineData("nonmember_action", "7")]
    [InlineData("subject_prefix", "[x]\r\nBcc: evil@example.com")]
    [InlineData("archive_url", "javascript:alert(1)")]
    [InlineData("unsubscribe_url", "https://a.example/u>, <mailto:evil@evil.example")]   // review 40: a second URL in List-Unsubscribe
    [InlineData("archive_url", "https://a.example/a b")]
    [InlineData("no_such_key", "x")]
    [InlineData("dmarc_mitigate_action", "mungefrom")]
    [InlineData("dmarc_mitigate_action", "1")]
    [InlineData("dmarc_mitigate_unconditionally", "maybe")]
    [InlineData("display_name", "")]                            // review 39: a "[] " prefix
    [InlineData("display_name", "  ")]
    [InlineData("bounce_info_stale_after", "0")]                // every score forgotten before it counted
    [InlineData("bounce_you_are_disabled_warnings_interval", "0")] // every warning at once, then removal (review 133)
    [InlineData("footer", "-- \nleave: ${user_address")]       // sent as written
    [InlineData("template:list:user:notice:welcome", "Hello ${user_address")]
    public void Bad_settings_are_refused(string key, string value)
        => Assert.Throws<ArgumentException>(() => new MailingList().Set(key, value));

    [Theory]
    [InlineData("footer", "costs $${x")]                        // $$ is a dollar sign: no placeholder opens
    [InlineData("footer", "-- \n${user_address}")]
    [InlineData("bounce_info_stale_after", "1")]
    [InlineData("bounce_you_are_disabled_warnings_interval", "1")]
    public void Settings_near_the_refused_ones_are_taken(string key, string value)
        => new MailingList().Set(key, value);

    // Review 80: the -wal and -shm deleted under a process holding them open (pooled
    // connections): it went on with the deleted files while every other process made new ones,
    // and each saw another database. The next open says so (within a second) instead.
    [Fact]
    public void A_process_whose_open_wal_was_deleted_refuses_the_database_naming_it()
    {
        _instance.CreateList("dev@example.org");
        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.GetList(ListName.Parse("dev@example.org"));
        }

        Assert.True(File.Exists(_instance.Paths.Database + "-wal"));
        File.Delete(_instance.Paths.Database + "-wal");
        File.Delete(_instance.Paths.Database + "-shm");
        try
        {
            var refused = Wait.For(() =>
            {
                try
                {
                    using var again = new ListStore(_instance.Paths.Database);
                    return null;
                }
                catch (DatabaseUnusableException e)
                {
                    return e;
                }
            }, TimeSpan.FromSeconds(10), "the deleted -wal is seen");
            Assert.Contains(_instance.Paths.Database + "-", refused.Message, StringComparison.Ordinal);
            Assert.Contains("was deleted while this process had it open", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        }
    }
}
