// The whole daemon against Postfix's smtp-sink: posts injected with the real `inject` verb,
// delivered by the real `serve --exit-when-idle` process.
using System.Text;
using Mailman.Lists;
using Mailman.TestSupport;

namespace Mailman.Tests.Integration;

public sealed class DeliveryTests : IDisposable
{
    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    [Fact]
    public void Personalized_post_reaches_every_member_once_with_their_own_VERP_sender_To_and_footer()
    {
        const int members = 300;
        _instance.CreateList("dev@example.org", l =>
        {
            l.DisplayName = "Dev Team";
            l.NonMemberAction = NonMemberAction.Accept;
            l.FooterTemplate = "--\nSent to $user_name <$user_address> via ${display_name}\n";
        });
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(members));
        using var sink = SmtpSink.Start();

        Inject("dev@example.org", Posts.Plain());
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        var messages = sink.WaitFor(members);
        Assert.Equal(members, messages.Count);
        var byRecipient = messages.GroupBy(m => Assert.Single(m.Recipients)).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(members, byRecipient.Count);
        Assert.All(byRecipient.Values, n => Assert.Equal(1, n));
        foreach (var m in messages)
        {
            var rcpt = m.Recipients[0];
            var local = rcpt.Split('@')[0];
            var number = int.Parse(local[1..], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal($"dev-bounces+{local}=example.com@example.org", m.MailFrom);
            Assert.Equal($"Member {number} <{rcpt}>", m.Header("To"));
            Assert.Contains($"Sent to Member {number} <{rcpt}> via Dev Team", m.Body, StringComparison.Ordinal);
            Assert.Contains("\n.leading dot\n..two dots\nbye\n", m.Body, StringComparison.Ordinal);
            Assert.Equal("[Dev Team] Hello", m.Header("Subject"));
            Assert.Equal("Dev Team <dev.example.org>", m.Header("List-Id"));
            Assert.Equal("<mailto:dev@example.org>", m.Header("List-Post"));
            Assert.Equal("dev@example.org", m.Header("X-BeenThere"));
        }

        Assert.Equal(0, _instance.Count("out") + _instance.Count("retry") + _instance.Count("shunt") + _instance.Count("bad"));
    }

    [Fact]
    public void Non_personalized_list_sends_one_copy_in_batches_of_at_most_MaxRecipients_grouped_by_domain()
    {
        _instance.CreateList("news@example.org", l =>
        {
            l.Personalize = Personalization.None;
            l.NonMemberAction = NonMemberAction.Accept;
        });
        _instance.AddMembers("news@example.org", TempInstance.NumberedMembers(40, "a.example").Concat(TempInstance.NumberedMembers(25, "b.example")));
        using var sink = SmtpSink.Start();

        Inject("news@example.org", Posts.Plain(to: "news@example.org"));
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, new Dictionary<string, string> { ["Mailman__Smtp__MaxRecipients"] = "7" });

        var messages = sink.WaitFor(10);
        var all = messages.SelectMany(m => m.Recipients).ToList();
        Assert.Equal(65, all.Count);
        Assert.Equal(65, all.Distinct(StringComparer.OrdinalIgnoreCase).Count());
        Assert.All(messages, m =>
        {
            Assert.InRange(m.Recipients.Count, 1, 7);
            Assert.Single(m.Recipients.Select(r => r.Split('@')[1]).Distinct());
            Assert.Equal("news-bounces@example.org", m.MailFrom);
            Assert.Equal("news@example.org", m.Header("To"));
        });
        Assert.Equal(6 + 4, messages.Count); // ceil(40/7) + ceil(25/7)
    }

    [Theory]
    [InlineData("latin1")]
    [InlineData("alternative")]
    [InlineData("related")]
    public void Structured_and_8bit_posts_arrive_byte_identical_apart_from_the_decoration(string kind)
    {
        var post = kind switch
        {
            "latin1" => Posts.EightBitLatin1(),
            "alternative" => Posts.Alternative(),
            _ => Posts.Related(),
        };
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", [new Member("ann@example.com", "Ann")]);
        using var sink = SmtpSink.Start();

        Inject("dev@example.org", post);
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        var message = Assert.Single(sink.WaitFor(1));
        var received = MimeKit.MimeMessage.Load(new MemoryStream(message.Content));
        var original = MimeKit.MimeMessage.Load(new MemoryStream(post));

        // The original body is the first part of a multipart/mixed, the footer the last.
        var mixed = Assert.IsType<MimeKit.Multipart>(received.Body);
        Assert.True(mixed.ContentType.IsMimeType("multipart", "mixed"));
        Assert.Equal(Bytes(original.Body!), Bytes(mixed[0]));
        var footer = Assert.IsType<MimeKit.TextPart>(mixed[^1]);
        Assert.Contains("dev mailing list", footer.Text, StringComparison.Ordinal);

        // On the wire, the original body bytes appear unchanged (CRLF-normalized as SMTP requires).
        var wire = message.Content;
        var originalBody = post.AsSpan(post.AsSpan().IndexOf("\n\n"u8) + 2);
        var firstLine = originalBody[..originalBody.IndexOf((byte)'\n')];
        Assert.True(wire.AsSpan().IndexOf(firstLine) >= 0);
    }

    [Fact]
    public void Post_from_a_non_member_to_a_members_only_list_is_held_not_delivered()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Hold);
        _instance.AddMembers("dev@example.org", [new Member("ann@example.com", "Ann")]);
        using var sink = SmtpSink.Start();

        Inject("dev@example.org", Posts.Plain(from: "stranger@example.net"));
        var result = MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        Assert.Equal(1, _instance.Count("hold"));
        // No member gets the post; the poster is told it awaits approval (RFC 3834 auto-reply).
        var notice = Assert.Single(sink.Messages());
        Assert.Equal(["stranger@example.net"], notice.Recipients);
        Assert.Equal("auto-replied", notice.Header("Auto-Submitted"));
        Assert.Contains("held", result.Stdout + result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Post_from_a_member_is_delivered_and_a_loop_is_discarded()
    {
        _instance.CreateList("dev@example.org");
        _instance.AddMembers("dev@example.org", [new Member("poster@example.com", "Poster"), new Member("ann@example.com", "Ann")]);
        using var sink = SmtpSink.Start();

        Inject("dev@example.org", Posts.Plain());
        var looped = Encoding.ASCII.GetBytes("X-BeenThere: dev@example.org\n").Concat(Posts.Plain(messageId: "loop@example.com")).ToArray();
        Inject("dev@example.org", looped);
        var result = MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port);

        Assert.Equal(2, sink.WaitFor(2).Count);
        Assert.All(sink.Messages(), m => Assert.Equal("<post1@example.com>", m.Header("Message-Id")));
        Assert.Contains("loop", result.Stdout + result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void A_4xx_reply_puts_recipients_in_retry_and_they_are_delivered_later()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(5));
        var fastRetry = new Dictionary<string, string> { ["Mailman__Retry__MinimumDelay"] = "00:00:00.200" };

        using (var refusing = SmtpSink.Start("-r", "RCPT"))
        {
            Inject("dev@example.org", Posts.Plain());
            MailmanProcess.Run(_instance.Home, ["serve", "--exit-when-idle"], env: new Dictionary<string, string>(fastRetry)
            {
                ["Mailman__Smtp__Port"] = refusing.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Mailman__Retry__MinimumDelay"] = "01:00:00",
                ["Mailman__Retry__MaximumDelay"] = "01:00:00",
            });
            Assert.Empty(refusing.Messages());
        }

        Assert.Equal(1, _instance.Count("retry"));
        var status = MailmanProcess.Run(_instance.Home, ["status", "--json"]);
        Assert.Contains("\"queue\":\"retry\",\"entries\":1", status.Stdout, StringComparison.Ordinal);

        // Make the entry due now, as time passing would, then run again against a healthy server.
        Runners.RetryTestHelper.MakeDue(_instance);
        using var sink = SmtpSink.Start();
        MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, fastRetry);
        Assert.Equal(5, sink.WaitFor(5).Select(m => m.Recipients[0]).Distinct().Count());
        Assert.Equal(0, _instance.Count("retry"));
    }

    [Fact]
    public void A_running_daemon_takes_an_injected_post_at_once_not_at_the_next_poll()
    {
        _instance.CreateList("dev@example.org", l => l.NonMemberAction = NonMemberAction.Accept);
        _instance.AddMembers("dev@example.org", TempInstance.NumberedMembers(3));
        using var sink = SmtpSink.Start();

        // A poll an hour apart: only the watch on queues/in can find what inject writes.
        using var daemon = DaemonProcess.Start(_instance.Home, new Dictionary<string, string>
        {
            ["Mailman__Smtp__Port"] = sink.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mailman__Queues__PollInterval"] = "01:00:00",
        });
        Wait.Until(() => daemon.HasExited || Logs().Contains("IncomingRunner started", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "the incoming runner to start");
        for (var post = 1; post <= 2; post++)
        {
            Inject("dev@example.org", Posts.Plain(messageId: $"post{post}@example.com"));
            Wait.Until(() => daemon.HasExited || sink.Messages().Count >= 3 * post, TimeSpan.FromSeconds(60), $"post {post} at the sink");
            Assert.False(daemon.HasExited, daemon.Output);
        }

        Assert.DoesNotContain("cannot watch", Logs(), StringComparison.Ordinal);
        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(90)));
    }

    private string Logs() => string.Concat(Directory.GetFiles(_instance.Paths.LogsDirectory, "mailman-*.log").Select(f =>
    {
        using var s = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(s).ReadToEnd();
    }));

    private void Inject(string list, byte[] message)
    {
        var result = MailmanProcess.Run(_instance.Home, ["inject", list], stdin: message);
        Assert.True(result.ExitCode == 0, $"inject exited {result.ExitCode}: {result.Stderr}");
    }

    private static byte[] Bytes(MimeKit.MimeEntity entity)
    {
        using var ms = new MemoryStream();
        var options = MimeKit.FormatOptions.Default.Clone();
        options.NewLineFormat = MimeKit.NewLineFormat.Unix;
        entity.WriteTo(options, ms);
        return ms.ToArray();
    }
}
