// DMARC mitigation through the real daemon: a real DNS server (dnsmasq) serving _dmarc records,
// posts injected with `inject`, delivered by `serve --exit-when-idle` into smtp-sink; the copies
// read back by MimeKit and by Python's email parser, and judged by an independent DKIM/DMARC
// verifier (dkimpy, Data/dmarc_verify.py). Bad input and misbehaving DNS servers included.
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Mailman.Lists;
using Mailman.TestSupport;
using MimeKit;
using MimeKit.Cryptography;

namespace Mailman.Tests.Integration;

public sealed class DmarcDeliveryTests : IDisposable
{
    private const string ListDomain = "lists.mailman.test";
    private const string Python = "/usr/bin/python3";
    private static readonly RSA DkimKey = RSA.Create(2048);
    // 60 KB: no commas, which dnsmasq's command line would split at (unknown tags are ignored).
    private static readonly string BigRecord = "v=DMARC1; p=quarantine; " + string.Join("; ", Enumerable.Range(0, 4000).Select(i => $"x{i}=mailto:r{i:D5}@big.test"));
    private static readonly string LongDomain = string.Concat(Enumerable.Repeat("a.", 298)) + "reject.test";

    private static readonly (string Name, string Text)[] Zone =
    [
        ("_dmarc.reject.test", "v=DMARC1; p=reject"),
        ("_dmarc.quarantine.test", "v=DMARC1; p=quarantine"),
        ("_dmarc.none.test", "v=DMARC1; p=none"),
        ("_dmarc.orgsp.test", "v=DMARC1; p=reject; sp=none"),
        ("_dmarc.malformed.test", "v=DMARC1; p=rejekt; sp=quarantine"),
        ("_dmarc.big.test", BigRecord[..60_000]),
        ("_dmarc.xn--bcher-kva.test", "v=DMARC1; p=reject"),
        ("sel._domainkey.reject.test", "v=DKIM1; k=rsa; p=" + Convert.ToBase64String(DkimKey.ExportSubjectPublicKeyInfo())),
    ];

    private readonly TempInstance _instance = new();

    public void Dispose() => _instance.Dispose();

    private static string Post(string subject, string from, string extra = "")
        => $"{extra}From: {from}\nTo: dev@{ListDomain}\nSubject: {subject}\nMessage-Id: <{subject}@example.net>\nDate: Sat, 28 Nov 2026 10:00:00 +0000\n\nHi all,\n.leading dot\nbye\n";

    private void CreateList(string local, DmarcMitigateAction action, Action<MailingList>? configure = null)
    {
        _instance.CreateList($"{local}@{ListDomain}", l =>
        {
            l.DisplayName = "Dev Team";
            l.NonMemberAction = NonMemberAction.Accept;
            l.RequireExplicitDestination = false; // every post here is To: dev@, whichever list gets it
            l.DmarcMitigateAction = action;
            configure?.Invoke(l);
        });
        _instance.AddMembers($"{local}@{ListDomain}", [new Member("ann@example.com", "Ann")]);
    }

    private void Inject(string local, string post, string? sender = null) => Inject(local, Encoding.UTF8.GetBytes(post), sender);

    private void Inject(string local, byte[] post, string? sender = null)
    {
        string[] args = sender is null ? ["inject", $"{local}@{ListDomain}"] : ["inject", $"{local}@{ListDomain}", "--sender", sender];
        var result = MailmanProcess.Run(_instance.Home, args, stdin: post);
        Assert.True(result.ExitCode == 0, $"inject exited {result.ExitCode}: {result.Stderr}");
    }

    private ProcessResult Serve(SmtpSink sink, string dns, int timeoutMs = 2000)
        => MailmanProcess.ServeUntilIdle(_instance.Home, sink.Port, new Dictionary<string, string>
        {
            ["Mailman__Dns__Servers__0"] = dns,
            ["Mailman__Dns__TimeoutMilliseconds"] = timeoutMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

    private string PostLog() => string.Concat(Directory.GetFiles(_instance.Paths.LogsDirectory, "post-*.log").Select(File.ReadAllText));

    private static SinkMessage Copy(IEnumerable<SinkMessage> messages, string subject)
        => Assert.Single(messages, m => m.Header("Subject") == "[Dev Team] " + subject);

    private static MimeMessage Parse(SinkMessage m) => MimeMessage.Load(new MemoryStream(m.Content));

    [Fact]
    public void Munge_from_rewrites_posts_from_reject_and_quarantine_domains_and_leaves_the_rest_untouched()
    {
        using var dns = DnsServer.Start(Zone, ["test"]);
        using var sink = SmtpSink.Start();
        CreateList("dev", DmarcMitigateAction.MungeFrom);
        var cases = new (string Subject, string From, bool Munged)[]
        {
            ("reject", "Anne Smith <anne@reject.test>", true),
            ("quarantine", "Anne Smith <anne@quarantine.test>", true),
            ("none", "Anne Smith <anne@none.test>", false),
            ("sub-of-reject-without-sp", "Anne Smith <anne@mail.reject.test>", true),
            ("sub-of-reject-with-sp-none", "Anne Smith <anne@mail.orgsp.test>", false),
            ("no-record", "Anne Smith <anne@nothing.test>", false),
            ("malformed-record", "Anne Smith <anne@malformed.test>", false),
            ("record-of-60-KB", "Anne Smith <anne@big.test>", true),
            ("from-without-domain", "undisclosed", true), // From: its envelope sender, anne@reject.test (review 82), then munged
            ("several-from", "Anne Smith <anne@reject.test>, Bob <bob@none.test>", true),
            ("two-from-headers", "Anne Smith <anne@none.test>\nFrom: Bob <bob@reject.test>", true), // review 112: the pipeline keeps one From: header
            ("idn-domain", "Anne Smith <anne@bücher.test>", true),
            ("domain-of-300-labels", $"Anne Smith <anne@{LongDomain}>", true),
        };
        foreach (var c in cases)
        {
            Inject("dev", Post(c.Subject, c.From), sender: "anne@reject.test");
        }

        Serve(sink, dns.Endpoint);

        var messages = sink.WaitFor(cases.Length);
        Assert.Equal(cases.Length, messages.Count);
        foreach (var c in cases)
        {
            var copy = Copy(messages, c.Subject);
            var parsed = Parse(copy);
            Assert.Equal("ann@example.com", Assert.Single(copy.Recipients));
            Assert.Contains("\n.leading dot\nbye\n", copy.Body, StringComparison.Ordinal);
            if (c.Munged)
            {
                var from = Assert.Single(parsed.From.Mailboxes);
                Assert.Equal($"dev@{ListDomain}", from.Address);
                Assert.EndsWith(" via Dev Team", from.Name, StringComparison.Ordinal);
                Assert.Contains("anne@", parsed.ReplyTo.ToString(), StringComparison.Ordinal);
                Assert.Empty(parsed.Cc);
            }
            else
            {
                Assert.Equal(c.From, copy.Header("From"));
                Assert.Null(copy.Header("Reply-To"));
            }
        }

        Assert.Equal("Anne Smith via Dev Team", Parse(Copy(messages, "reject")).From.Mailboxes.Single().Name);
        Assert.Equal("Anne Smith <anne@reject.test>", Show(Parse(Copy(messages, "reject")).ReplyTo));
        Assert.Equal("Anne Smith <anne@reject.test>, Bob <bob@none.test>", Show(Parse(Copy(messages, "several-from")).ReplyTo));
        Assert.Equal("Anne Smith <anne@none.test>, Bob <bob@reject.test>", Show(Parse(Copy(messages, "two-from-headers")).ReplyTo));
        Assert.Equal("anne--- via Dev Team", Parse(Copy(messages, "two-from-headers")).From.Mailboxes.Single().Name);
        Assert.Equal("Anne Smith <anne@bücher.test>", Show(Parse(Copy(messages, "idn-domain")).ReplyTo));

        // One lookup per TTL: four posts needed _dmarc.reject.test; dnsmasq was asked once.
        Assert.Equal(1, dns.QueriesFor("_dmarc.reject.test"));

        // One post-log line per mitigated post: domain, policy, action.
        var log = PostLog();
        Assert.Equal(cases.Count(c => c.Munged), log.Split('\n').Count(l => l.Contains("DMARC mitigation of post", StringComparison.Ordinal)));
        Assert.Contains("From: domain reject.test, policy reject, action munge_from", log, StringComparison.Ordinal);
        Assert.Contains("From: domain big.test, policy quarantine, action munge_from", log, StringComparison.Ordinal);
        Assert.True(log.Contains("From: domain xn--bcher-kva.test, policy reject, action munge_from", StringComparison.Ordinal), log);
        Assert.Equal(0, _instance.Count("shunt") + _instance.Count("bad") + _instance.Count("hold"));
    }

    [Theory]
    [InlineData(ReplyToPolicy.List)]
    [InlineData(ReplyToPolicy.Explicit)]
    public void Munge_from_on_a_list_that_sets_Reply_To_puts_the_author_in_Cc(ReplyToPolicy policy)
    {
        using var dns = DnsServer.Start(Zone, ["test"]);
        using var sink = SmtpSink.Start();
        CreateList("dev", DmarcMitigateAction.MungeFrom, l => { l.ReplyTo = policy; l.ReplyToAddress = "help@example.org"; });
        Inject("dev", Post("reject", "Anne Smith <anne@reject.test>", "Cc: Bob <bob@example.com>\n"));
        Serve(sink, dns.Endpoint);

        var copy = Parse(Assert.Single(sink.WaitFor(1)));
        Assert.Equal($"Anne Smith via Dev Team <dev@{ListDomain}>", Show(copy.From));
        Assert.Equal("Bob <bob@example.com>, Anne Smith <anne@reject.test>", Show(copy.Cc));
        Assert.Equal(policy == ReplyToPolicy.List ? $"dev@{ListDomain}" : "help@example.org", Show(copy.ReplyTo));
    }

    [Fact]
    public void Wrap_message_attaches_the_post_byte_for_byte_as_MimeKit_and_Pythons_email_read_it()
    {
        using var dns = DnsServer.Start(Zone, ["test"]);
        using var sink = SmtpSink.Start();
        CreateList("dev", DmarcMitigateAction.WrapMessage, l => l.DmarcWrappedMessageText = "This post is wrapped because its domain publishes DMARC p=reject.");
        var wrapped = Post("reject", "Anne Smith <anne@reject.test>", "Cc: Bob <bob@example.com>\nX-Mailer: test\n");
        var untouched = Post("none", "Anne Smith <anne@none.test>");
        Inject("dev", wrapped);
        Inject("dev", untouched);
        Serve(sink, dns.Endpoint);

        var messages = sink.WaitFor(2);
        var copy = Copy(messages, "reject");
        var outer = Parse(copy);
        Assert.Equal($"Anne Smith via Dev Team <dev@{ListDomain}>", Show(outer.From));
        Assert.Equal("Anne Smith <anne@reject.test>", Show(outer.ReplyTo));
        Assert.Equal("Ann <ann@example.com>", Show(outer.To));
        Assert.Null(outer.Headers["X-Mailer"]);
        var mixed = Assert.IsType<Multipart>(outer.Body);
        Assert.Equal(["text/plain", "message/rfc822", "text/plain"], mixed.Select(p => p.ContentType.MimeType));
        Assert.Contains("DMARC p=reject", ((TextPart)mixed[0]).Text, StringComparison.Ordinal);
        Assert.Contains("Dev Team mailing list", ((TextPart)mixed[2]).Text, StringComparison.Ordinal);
        Assert.Equal(wrapped, Encoding.UTF8.GetString(Pipeline.Handlers.DmarcTests.EmbeddedBytes(copy.Content)));

        var python = RunJson(Path.Combine(AppContext.BaseDirectory, "Data", "mime_wrap_check.py"), WriteTemp(copy.Content));
        Assert.Empty(python.GetProperty("defects").EnumerateArray());
        Assert.Equal("multipart/mixed", python.GetProperty("structure")[0].GetString());
        Assert.Contains("message/rfc822", python.GetProperty("structure").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(wrapped, Encoding.UTF8.GetString(Convert.FromBase64String(python.GetProperty("inner").GetString()!)));

        var plain = Copy(messages, "none");
        Assert.Equal("Anne Smith <anne@none.test>", plain.Header("From"));
        Assert.Null(plain.Header("Reply-To"));
        Assert.DoesNotContain("message/rfc822", plain.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Reject_sends_the_poster_the_notice_and_discard_sends_nothing()
    {
        using var dns = DnsServer.Start(Zone, ["test"]);
        using var sink = SmtpSink.Start();
        CreateList("rej", DmarcMitigateAction.Reject);
        CreateList("disc", DmarcMitigateAction.Discard);
        Inject("rej", Post("rej-reject", "Anne Smith <anne@reject.test>"), sender: "anne@reject.test");
        Inject("rej", Post("rej-none", "Anne Smith <anne@none.test>"), sender: "anne@none.test");
        Inject("disc", Post("disc-reject", "Anne Smith <anne@reject.test>"), sender: "anne@reject.test");
        Inject("disc", Post("disc-none", "Anne Smith <anne@none.test>"), sender: "anne@none.test");
        Serve(sink, dns.Endpoint);

        var messages = sink.WaitFor(3);
        Assert.Equal(3, messages.Count);
        var notice = Assert.Single(messages, m => m.Recipients.SequenceEqual(["anne@reject.test"]));
        Assert.Contains("was rejected", notice.Header("Subject"), StringComparison.Ordinal);
        Assert.Contains("publishes a DMARC policy of reject or quarantine", notice.Text.ReplaceLineEndings(" ").Replace("  ", " ", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("rej-owner@" + ListDomain, notice.Text, StringComparison.Ordinal);
        var copies = messages.Where(m => m.Recipients.SequenceEqual(["ann@example.com"])).Select(m => m.Header("Subject")).Order().ToList();
        Assert.Equal(["[Dev Team] disc-none", "[Dev Team] rej-none"], copies);
        var log = PostLog();
        Assert.Contains("policy reject", log, StringComparison.Ordinal);
        Assert.Contains("action discard", log, StringComparison.Ordinal);
    }

    [Fact]
    public void A_DNS_server_that_never_answers_gets_the_post_munged_not_held_or_rejected()
    {
        using var dns = FakeDnsServer.Silent();
        using var sink = SmtpSink.Start();
        CreateList("dev", DmarcMitigateAction.MungeFrom);
        CreateList("rej", DmarcMitigateAction.Reject);
        Inject("dev", Post("timeout", "Anne Smith <anne@reject.test>"));
        Inject("rej", Post("timeout-reject-list", "Anne Smith <anne@reject.test>"), sender: "anne@reject.test");
        Serve(sink, dns.Endpoint, timeoutMs: 300);

        var messages = sink.WaitFor(2);
        Assert.Equal(2, messages.Count);
        Assert.All(messages, m =>
        {
            Assert.Equal(["ann@example.com"], m.Recipients);
            var from = Parse(m).From.Mailboxes.Single();
            Assert.Equal("Anne Smith via Dev Team", from.Name);
            Assert.EndsWith("@" + ListDomain, from.Address, StringComparison.Ordinal);
        });
        Assert.Single(dns.Queries.Distinct());
        var log = PostLog();
        Assert.Contains("policy dns-error, action munge_from", log, StringComparison.Ordinal);
        Assert.Contains("Timeout", log, StringComparison.Ordinal);
        Assert.Equal(0, _instance.Count("hold") + _instance.Count("shunt"));
    }

    [Fact]
    public void Answers_that_trip_the_DNS_parser_are_a_failed_lookup_and_the_post_is_mitigated_not_shunted()
    {
        using var dns = FakeDnsServer.Hostile();
        using var sink = SmtpSink.Start();
        CreateList("rej", DmarcMitigateAction.Reject);
        Inject("rej", Post("ptrloop", "Anne <anne@ptrloop.test>"), sender: "anne@ptrloop.test");
        Inject("rej", Post("wrongid", "Anne <anne@wrongid.test>"), sender: "anne@wrongid.test");
        Serve(sink, dns.Endpoint, timeoutMs: 300);

        var messages = sink.WaitFor(2);
        Assert.Equal(2, messages.Count);
        Assert.All(messages, m => Assert.EndsWith("@" + ListDomain, Parse(m).From.Mailboxes.Single().Address, StringComparison.Ordinal));
        Assert.Equal(0, _instance.Count("shunt") + _instance.Count("hold"));
    }

    [Fact]
    public void A_post_from_several_silent_domains_waits_for_one_timeout_not_one_per_domain()
    {
        using var dns = FakeDnsServer.Silent();
        using var sink = SmtpSink.Start();
        CreateList("dev", DmarcMitigateAction.MungeFrom);
        Inject("dev", Post("five", "a@silent.p1a.test, b@silent.p1b.test, c@silent.p1c.test, d@silent.p1d.test, e@silent.p1e.test"));
        Serve(sink, dns.Endpoint, timeoutMs: 300);

        Assert.Single(sink.WaitFor(1));
        Assert.Single(dns.Queries.Distinct());
    }

    [Fact]
    public void A_display_name_of_a_million_at_signs_is_munged_capped_and_the_author_name_cannot_break_a_header()
    {
        using var dns = DnsServer.Start(Zone, ["test"]);
        using var sink = SmtpSink.Start();
        CreateList("dev", DmarcMitigateAction.MungeFrom);
        Inject("dev", Post("ats", "\"" + new string('@', 1_000_000) + "\" <anne@reject.test>"));
        Inject("dev", Post("crlf", "=?utf-8?q?Evil=0D=0ABcc=3A_x=40y.com?= <anne@reject.test>"));
        Serve(sink, dns.Endpoint);

        var messages = sink.WaitFor(2);
        foreach (var m in messages)
        {
            var copy = Parse(m);
            Assert.True((copy.From.Mailboxes.Single().Name ?? "").Length <= 220);
            Assert.DoesNotContain("\nBcc:", m.Headers, StringComparison.OrdinalIgnoreCase);
            Assert.All(copy.ReplyTo.Mailboxes.Concat(copy.Cc.Mailboxes), a => Assert.DoesNotContain('\n', a.Name ?? ""));
        }
    }

    [Fact]
    public void A_CNAME_loop_in_the_answers_cannot_lengthen_the_tree_walk()
    {
        using var dns = FakeDnsServer.CnameLoop("loop.test");
        using var sink = SmtpSink.Start();
        CreateList("dev", DmarcMitigateAction.MungeFrom);
        Inject("dev", Post("loop", "Anne Smith <anne@a.b.c.d.e.loop.test>"));
        Serve(sink, dns.Endpoint);

        var copy = Assert.Single(sink.WaitFor(1));
        Assert.Equal("Anne Smith <anne@a.b.c.d.e.loop.test>", copy.Header("From"));
        Assert.Equal(["_dmarc.a.b.c.d.e.loop.test", "_dmarc.d.e.loop.test", "_dmarc.e.loop.test", "_dmarc.loop.test"],
            dns.Queries.Where(q => q.EndsWith("loop.test", StringComparison.Ordinal)));
        Assert.True(dns.Queries.Count <= 5, string.Join(", ", dns.Queries));
    }

    [Fact]
    public void An_independent_verifier_fails_DMARC_on_the_unmitigated_copy_and_finds_no_poster_policy_on_the_munged_one()
    {
        using var dns = DnsServer.Start(Zone, ["test"]);
        using var sink = SmtpSink.Start();
        CreateList("plain", DmarcMitigateAction.NoMitigation);
        CreateList("munged", DmarcMitigateAction.MungeFrom);
        CreateList("wrapped", DmarcMitigateAction.WrapMessage);
        var signed = Sign(Post("signed", "Anne Smith <anne@reject.test>"));
        foreach (var list in new[] { "plain", "munged", "wrapped" })
        {
            Inject(list, signed, sender: "anne@reject.test");
        }

        Serve(sink, dns.Endpoint);
        var messages = sink.WaitFor(3);
        SinkMessage From(string list) => Assert.Single(messages, m => m.MailFrom.StartsWith(list + "-bounces", StringComparison.Ordinal));

        // The control: as Anne's provider sent it, the post passes DMARC with an aligned signature.
        var original = Verify(signed);
        Assert.Equal("pass", original.GetProperty("dmarc").GetString());
        Assert.True(original.GetProperty("dkim")[0].GetProperty("pass").GetBoolean());

        // Through the list without mitigation: the subject prefix and footer break the signature,
        // nothing else aligns with reject.test, and reject.test says p=reject: every copy is refused.
        var plain = Verify(From("plain").Content);
        Assert.Equal("reject.test", plain.GetProperty("from_domain").GetString());
        Assert.False(plain.GetProperty("dkim")[0].GetProperty("pass").GetBoolean());
        Assert.Equal("fail", plain.GetProperty("dmarc").GetString());
        Assert.Equal("reject", plain.GetProperty("disposition").GetString());

        // With munge_from the copy claims the list's domain, not Anne's: her p=reject does not apply.
        var munged = Verify(From("munged").Content);
        Assert.Equal(ListDomain, munged.GetProperty("from_domain").GetString());
        Assert.Equal(JsonValueKind.Null, munged.GetProperty("policy").ValueKind);
        Assert.Equal("none", munged.GetProperty("disposition").GetString());

        // With wrap_message the same holds outside, and the attached original still passes DMARC.
        var wrappedCopy = From("wrapped").Content;
        Assert.Equal("none", Verify(wrappedCopy).GetProperty("disposition").GetString());
        var inner = Verify(Pipeline.Handlers.DmarcTests.EmbeddedBytes(wrappedCopy));
        Assert.Equal("pass", inner.GetProperty("dmarc").GetString());

        JsonElement Verify(byte[] message)
            => RunJson(Path.Combine(AppContext.BaseDirectory, "Data", "dmarc_verify.py"), dns.Endpoint, WriteTemp(message));
    }

    // Signs with MimeKit's DkimSigner as reject.test's provider would (key in the test DNS).
    private static byte[] Sign(string post)
    {
        var message = MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(post)));
        using var key = new MemoryStream(Encoding.ASCII.GetBytes(DkimKey.ExportRSAPrivateKeyPem()));
        var signer = new DkimSigner(key, "reject.test", "sel")
        {
            HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
            BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
        };
        signer.Sign(message, [HeaderId.From, HeaderId.To, HeaderId.Subject, HeaderId.Date, HeaderId.MessageId]);
        var options = FormatOptions.Default.Clone();
        options.NewLineFormat = NewLineFormat.Unix;
        using var output = new MemoryStream();
        message.WriteTo(options, output);
        return output.ToArray();
    }

    private string WriteTemp(byte[] content)
    {
        var path = Path.Combine(_instance.Home, "copy-" + Guid.NewGuid().ToString("N")[..8] + ".eml");
        File.WriteAllBytes(path, content);
        return path;
    }

    private static JsonElement RunJson(string script, params string[] args)
    {
        Assert.True(File.Exists(Python), $"{Python} is missing: apt-get install python3-dkim python3-dnspython (see .ci/run)");
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(1)), "python did not finish");
        Assert.True(process.ExitCode == 0, $"{script} exited {process.ExitCode}: {stderr.Result}");
        return JsonDocument.Parse(stdout.Result).RootElement.Clone();
    }

    private static string Show(InternetAddressList list)
        => string.Join(", ", list.Mailboxes.Select(m => m.Name is { Length: > 0 } ? $"{m.Name} <{m.Address}>" : m.Address));
}
