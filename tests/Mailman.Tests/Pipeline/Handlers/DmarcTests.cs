// The DMARC check and handler on parsed posts: the verdict in the metadata, reject/discard, and
// Mailman 3's header choices for munge_from and wrap_message.
using System.Text;
using Mailman.Delivery;
using Mailman.Delivery.Smtp;
using Mailman.Dmarc;
using Mailman.Lists;
using Mailman.Pipeline;
using Mailman.Pipeline.Handlers;
using Mailman.Queues;
using Mailman.Runners;
using Mailman.Templates;
using Mailman.Tests.Dmarc;
using Microsoft.Extensions.Logging.Abstractions;
using MimeKit;

namespace Mailman.Tests.Pipeline.Handlers;

public sealed class DmarcTests
{
    private const string Signed = "DKIM-Signature: v=1; a=rsa-sha256; d=reject.test; s=sel; h=from:subject; bh=x; b=y\n";

    private readonly FakeTxtResolver _dns = new FakeTxtResolver()
        .Txt("_dmarc.reject.test", "v=DMARC1; p=reject")
        .Txt("_dmarc.quarantine.test", "v=DMARC1; p=quarantine")
        .Txt("_dmarc.none.test", "v=DMARC1; p=none");

    private DmarcServices Services(bool removeDkim = false)
        => new(new DmarcPolicyLookup(_dns, NullLogger<DmarcPolicyLookup>.Instance), removeDkim, NullLogger.Instance);

    private static PostContext Context(string raw, Action<MailingList>? configure = null)
    {
        var bytes = Encoding.UTF8.GetBytes(raw);
        var list = new MailingList { Name = ListName.Parse("dev@example.org"), DisplayName = "Dev Team" };
        configure?.Invoke(list);
        return new PostContext(list, PostParser.Parse(bytes), new EntryMetadata { List = list.Name.Fqdn, Sender = "bounce+x@reject.test" }, bytes.Length) { OpenOriginal = () => new MemoryStream(bytes, writable: false) };
    }

    private static string Post(string from = "Anne Smith <anne@reject.test>", string extra = "")
        => $"{extra}From: {from}\nTo: dev@example.org\nSubject: Hello\nMessage-Id: <post1@reject.test>\nDate: Sat, 28 Nov 2026 10:00:00 +0000\n\nHi all,\nbye\n";

    private static string Header(MimeMessage message, HeaderId id)
    {
        var header = message.Headers[message.Headers.IndexOf(id)];
        return (header.Field + ":" + Encoding.ASCII.GetString(header.RawValue)).TrimEnd();
    }

    private static string Show(InternetAddressList list)
        => string.Join(", ", list.Mailboxes.Select(m => m.Name is { Length: > 0 } ? $"{m.Name} <{m.Address}>" : m.Address));

    private HandlerResult Check(PostContext post) => new DmarcModeration(Services()).Process(post);

    [Theory]
    [InlineData("anne@reject.test", "reject", true)]
    [InlineData("anne@quarantine.test", "quarantine", true)]
    [InlineData("anne@mail.reject.test", "reject", true)]
    [InlineData("anne@none.test", "none", false)]
    [InlineData("anne@nothing.test", "no-record", false)]
    [InlineData("undisclosed", "invalid-domain", false)]
    public void The_check_records_the_verdict_for_the_pipeline(string from, string policy, bool mitigate)
    {
        var post = Context(Post(from), l => l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom);
        Assert.Equal(HandlerAction.Continue, Check(post).Action);
        Assert.Equal(new DmarcNote(from.Contains('@', StringComparison.Ordinal) ? from.Split('@')[1] : "", policy, mitigate), post.Metadata.Dmarc);
    }

    [Fact]
    public void The_check_does_not_look_up_for_a_list_without_mitigation_or_with_unconditional_munging()
    {
        var post = Context(Post());
        Assert.Equal(HandlerAction.Continue, Check(post).Action);
        Assert.Null(post.Metadata.Dmarc);

        post = Context(Post(), l => { l.DmarcMitigateAction = DmarcMitigateAction.WrapMessage; l.DmarcMitigateUnconditionally = true; });
        Check(post);
        Assert.Equal("unconditional", post.Metadata.Dmarc!.Policy);
        Assert.Empty(_dns.Queries);
    }

    [Fact]
    public void Reject_returns_Mailman_3s_notice_or_the_lists_and_discard_discards()
    {
        var result = Check(Context(Post(), l => l.DmarcMitigateAction = DmarcMitigateAction.Reject));
        Assert.Equal(HandlerAction.Reject, result.Action);
        Assert.StartsWith("You are not allowed to post to this mailing list From: a domain which publishes a DMARC policy of reject or quarantine", result.Reason, StringComparison.Ordinal);
        Assert.EndsWith("contact the mailing list owner at dev-owner@example.org.", result.Reason, StringComparison.Ordinal);

        result = Check(Context(Post(), l => { l.DmarcMitigateAction = DmarcMitigateAction.Reject; l.DmarcModerationNotice = "No $display_name posts from p=reject domains; ask ${listowner}."; }));
        Assert.Equal("No Dev Team posts from p=reject domains; ask dev-owner@example.org.", result.Reason);

        result = Check(Context(Post(), l => l.DmarcMitigateAction = DmarcMitigateAction.Discard));
        Assert.Equal(HandlerAction.Discard, result.Action);
        Assert.Contains("reject.test publishes reject", result.Reason, StringComparison.Ordinal);

        Assert.Equal(HandlerAction.Continue, Check(Context(Post("anne@none.test"), l => l.DmarcMitigateAction = DmarcMitigateAction.Reject)).Action);
    }

    [Fact]
    public void A_DNS_failure_never_rejects_the_post_it_is_munged_instead()
    {
        _dns.Answer("_dmarc.broken.test", new TxtAnswer(DnsStatus.Timeout, [], TimeSpan.Zero, "timed out"));
        var post = Context(Post("anne@broken.test"), l => l.DmarcMitigateAction = DmarcMitigateAction.Reject);
        Assert.Equal(HandlerAction.Continue, Check(post).Action);
        Assert.Equal(new DmarcNote("broken.test", "dns-error", true), post.Metadata.Dmarc);

        new DmarcMitigation(Services()).Process(post);
        Assert.Equal("anne--- via Dev Team <dev@example.org>", Show(post.Message.From));
    }

    [Fact]
    public void Munge_from_with_reply_to_none_puts_the_author_in_Reply_To_after_the_posters_own()
    {
        var post = Context(Post(extra: "Reply-To: Anne Home <anne@home.example>\n"), l => l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom);
        Check(post);
        new DmarcMitigation(Services()).Process(post);
        new ReplyTo().Process(post);

        Assert.Equal("From: Anne Smith via Dev Team <dev@example.org>", Header(post.Message, HeaderId.From));
        Assert.Equal("Anne Home <anne@home.example>, Anne Smith <anne@reject.test>", Show(post.Message.ReplyTo));
        Assert.Empty(post.Message.Cc);
    }

    [Theory]
    [InlineData(ReplyToPolicy.List, "dev@example.org")]
    [InlineData(ReplyToPolicy.Explicit, "help@example.org")]
    public void Munge_from_with_reply_to_munging_puts_the_author_in_Cc(ReplyToPolicy policy, string replyTo)
    {
        var post = Context(Post(extra: "Cc: Bob <bob@example.com>\n"), l =>
        {
            l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom;
            l.ReplyTo = policy;
            l.ReplyToAddress = "help@example.org";
        });
        Check(post);
        new DmarcMitigation(Services()).Process(post);
        new ReplyTo().Process(post);

        Assert.Equal("Anne Smith via Dev Team <dev@example.org>", Show(post.Message.From));
        Assert.Equal("Bob <bob@example.com>, Anne Smith <anne@reject.test>", Show(post.Message.Cc));
        Assert.Equal(replyTo, Assert.Single(post.Message.ReplyTo.Mailboxes).Address);
    }

    [Fact]
    public void The_author_is_not_added_twice()
    {
        var post = Context(Post(extra: "Reply-To: ANNE@reject.test\n"), l => l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom);
        Check(post);
        new DmarcMitigation(Services()).Process(post);
        Assert.Single(post.Message.ReplyTo.Mailboxes);
    }

    [Theory]
    [InlineData("=?utf-8?q?=C3=85nne_Sm=C3=AFth?= <anne@reject.test>", "Ånne Smïth via Dev Team")]
    [InlineData("\"Smith, Anne (Dev)\" <anne@reject.test>", "Smith, Anne (Dev) via Dev Team")]
    [InlineData("anne@reject.test", "anne--- via Dev Team")]
    [InlineData("\"anne@reject.test\" <anne@reject.test>", "anne--- via Dev Team")]
    public void The_munged_name_is_the_authors_with_any_address_removed_and_RFC_2047_encoded_on_the_wire(string from, string expected)
    {
        var post = Context(Post(from), l => { l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom; l.DisplayName = "Dev Team"; });
        Check(post);
        new DmarcMitigation(Services()).Process(post);

        var wire = WireFormat.Flatten(post.Message);
        Assert.True(Ascii.IsValid(wire.AsSpan(0, wire.AsSpan().IndexOf("\r\n\r\n"u8))), "the header block is ASCII");
        var reparsed = MimeMessage.Load(new MemoryStream(wire));
        var mailbox = Assert.Single(reparsed.From.Mailboxes);
        Assert.Equal(expected, mailbox.Name);
        Assert.Equal("dev@example.org", mailbox.Address);
        if (!Ascii.IsValid(expected))
        {
            Assert.Contains("=?utf-8?", Header(post.Message, HeaderId.From), StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public void Several_From_addresses_are_munged_with_the_envelope_senders_name_and_every_author_in_Reply_To()
    {
        var post = Context(Post("anne@none.test, Bob <bob@reject.test>"), l => l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom);
        Check(post);
        Assert.Equal("reject", post.Metadata.Dmarc!.Policy);
        new DmarcMitigation(Services()).Process(post);
        Assert.Equal("bounce+x--- via Dev Team <dev@example.org>", Show(post.Message.From));
        Assert.Equal("anne@none.test, Bob <bob@reject.test>", Show(post.Message.ReplyTo));
    }

    [Fact]
    public void Two_From_headers_name_both_authors_and_a_From_of_many_names_the_first_ten()
    {
        var post = Context(Post("Anne <anne@none.test>", extra: "From: Bob <bob@reject.test>\n"), l => l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom);
        Check(post);
        Assert.Equal("reject", post.Metadata.Dmarc!.Policy);

        // As the pipeline has it (review 112): only the first From: header is left (review 58);
        // the authors are read from the post as received.
        post.Message.Headers.RemoveAt(post.Message.Headers.LastIndexOf(HeaderId.From));
        Assert.Single(post.Message.From.Mailboxes);
        new DmarcMitigation(Services()).Process(post);
        Assert.Equal("bounce+x--- via Dev Team <dev@example.org>", Show(post.Message.From));
        Assert.Single(post.Message.Headers, h => h.Id == HeaderId.From);
        Assert.Equal("Bob <bob@reject.test>, Anne <anne@none.test>", Show(post.Message.ReplyTo));

        // Wrapped alike: the authors are read from the same loading of the post as received as the attachment.
        post = Context(Post("Anne <anne@none.test>", extra: "From: Bob <bob@reject.test>\n"), l => l.DmarcMitigateAction = DmarcMitigateAction.WrapMessage);
        Check(post);
        post.Message.Headers.RemoveAt(post.Message.Headers.LastIndexOf(HeaderId.From));
        new DmarcMitigation(Services()).Process(post);
        Assert.Equal("Bob <bob@reject.test>, Anne <anne@none.test>", Show(post.Message.ReplyTo));
        Assert.Equal(2, Assert.IsType<MessagePart>(post.Message.Body).Message!.Headers.Count(h => h.Id == HeaderId.From));

        var many = string.Join(", ", Enumerable.Range(0, 30).Select(i => $"a{i % 15}@reject.test"));
        post = Context(Post(many), l => l.DmarcMitigateAction = DmarcMitigateAction.WrapMessage);
        Check(post);
        new DmarcMitigation(Services()).Process(post);
        Assert.Equal(Enumerable.Range(0, DmarcMitigation.MaximumAuthors).Select(i => $"a{i}@reject.test"), post.Message.ReplyTo.Mailboxes.Select(m => m.Address));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DKIM_headers_are_kept_unless_remove_dkim_headers(bool remove)
    {
        var post = Context(Post(extra: Signed + "Authentication-Results: mx.example.org; dkim=pass\n"), l => l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom);
        new DmarcModeration(Services(remove)).Process(post);
        new DmarcMitigation(Services(remove)).Process(post);
        Assert.Equal(remove, post.Message.Headers[HeaderId.DkimSignature] is null);
        Assert.Equal(remove, post.Message.Headers["Authentication-Results"] is null);
    }

    [Fact]
    public void No_policy_leaves_the_post_untouched()
    {
        var raw = Post("Anne <anne@none.test>", Signed);
        var post = Context(raw, l => l.DmarcMitigateAction = DmarcMitigateAction.WrapMessage);
        Check(post);
        new DmarcMitigation(Services()).Process(post);
        using var ms = new MemoryStream();
        post.Message.WriteTo(FormatOptions.Default, ms);
        Assert.Equal(raw, Encoding.UTF8.GetString(ms.ToArray()));
    }

    [Theory]
    [InlineData("")]
    [InlineData("The original message is attached.")]
    public void Wrap_message_keeps_Mailman_3s_headers_and_attaches_the_post_byte_for_byte(string text)
    {
        var raw = Post("Anne Smith <anne@reject.test>", Signed + "Cc: Bob <bob@example.com>\nReferences: <a@b>\nList-Id: upstream <up.example.net>\nX-Mailer: mutt\n")
            .Replace("Hi all,\n", "Hi all,\nFrom here on\n.dot\n", StringComparison.Ordinal);
        var post = Context(raw, l => { l.DmarcMitigateAction = DmarcMitigateAction.WrapMessage; l.DmarcWrappedMessageText = text; });
        Check(post);
        new DmarcMitigation(Services()).Process(post);
        var wire = WireFormat.Flatten(post.Message);
        var outer = MimeMessage.Load(new MemoryStream(wire));

        Assert.Equal("Anne Smith via Dev Team <dev@example.org>", Show(outer.From));
        Assert.Equal("Anne Smith <anne@reject.test>", Show(outer.ReplyTo));
        Assert.Empty(outer.Cc);
        Assert.Equal("Hello", outer.Subject);
        Assert.Equal("dev@example.org", Show(outer.To));
        Assert.Equal("<a@b>", outer.Headers[HeaderId.References]);
        Assert.NotNull(outer.Headers[HeaderId.Date]);
        Assert.NotEqual("post1@reject.test", outer.MessageId);
        Assert.EndsWith("@example.org", outer.MessageId, StringComparison.Ordinal);
        Assert.Null(outer.Headers[HeaderId.DkimSignature]);
        Assert.Null(outer.Headers["X-Mailer"]);
        Assert.Equal("1.0", outer.Headers[HeaderId.MimeVersion]);

        MessagePart part;
        if (text.Length == 0)
        {
            part = Assert.IsType<MessagePart>(outer.Body);
        }
        else
        {
            var mixed = Assert.IsType<Multipart>(outer.Body);
            Assert.Equal("multipart/mixed", mixed.ContentType.MimeType);
            Assert.Equal(2, mixed.Count);
            Assert.Equal(text + "\n", Assert.IsType<TextPart>(mixed[0]).Text.ReplaceLineEndings("\n"));
            part = Assert.IsType<MessagePart>(mixed[1]);
        }

        Assert.Equal("message/rfc822", part.ContentType.MimeType);
        Assert.Equal(ContentDisposition.Inline, part.ContentDisposition?.Disposition);
        Assert.Equal(raw.Replace("\n", "\r\n", StringComparison.Ordinal), Encoding.UTF8.GetString(EmbeddedBytes(wire)));
    }

    // RFC 6532 3.7: a message whose header block is raw UTF-8 is attached as message/global
    // (it went as message/rfc822, which may not hold it); one in ASCII stays message/rfc822.
    [Theory]
    [InlineData("Zoë Müller <anne@reject.test>", "message/global")]
    [InlineData("=?utf-8?q?Zo=C3=AB?= <anne@reject.test>", "message/rfc822")]
    public void Wrap_message_attaches_a_post_with_raw_UTF8_headers_as_message_global(string from, string type)
    {
        var raw = Post(from);
        var post = Context(raw, l => l.DmarcMitigateAction = DmarcMitigateAction.WrapMessage);
        Check(post);
        new DmarcMitigation(Services()).Process(post);
        var wire = WireFormat.Flatten(post.Message);
        var outer = MimeMessage.Load(new MemoryStream(wire));

        var part = Assert.IsType<MessagePart>(outer.Body);
        Assert.Equal(type, part.ContentType.MimeType);
        Assert.Equal("anne@reject.test", part.Message!.From.Mailboxes.Single().Address);
        Assert.Equal(raw.Replace("\n", "\r\n", StringComparison.Ordinal), Encoding.UTF8.GetString(EmbeddedBytes(wire)));
    }

    [Fact]
    public void A_wrapped_post_is_decorated_and_personalized_outside_and_flattened_once()
    {
        var raw = Post("Anne Smith <anne@reject.test>", Signed);
        var post = Context(raw, l =>
        {
            l.DmarcMitigateAction = DmarcMitigateAction.WrapMessage;
            l.DmarcWrappedMessageText = "Wrapped for DMARC.";
            l.FooterTemplate = "-- sent to $user_name <$user_address>";
            l.Personalize = Personalization.Full;
        });
        Check(post);
        var catalog = new HandlerCatalog(_ => [], Services());
        Assert.Equal(HandlerAction.Continue, PipelineRunner.RunHandlers(catalog.Resolve(HandlerCatalog.DefaultPipeline), post).Action);
        var flat = WireFormat.Flatten(post.Message);
        var prepared = PreparedPost.Create(flat, post.SlotNonce);

        foreach (var (address, name) in new[] { ("ann@example.com", "Ann"), ("bob@example.com", "Bob") })
        {
            var carrier = new Carrier(prepared);
            carrier.SetRecipient(RecipientValues.For(new Recipient(address, name), RecipientValues.NewScratch()));
            using var output = new MemoryStream();
            carrier.Message.WriteTo(Carrier.SendOptions, output);
            var copy = output.ToArray();
            var text = Encoding.UTF8.GetString(copy);
            Assert.DoesNotContain(Slots.Prefix, text, StringComparison.Ordinal);

            var outer = MimeMessage.Load(new MemoryStream(copy));
            Assert.Equal($"{name} <{address}>", Show(outer.To));
            Assert.Equal("[Dev Team] Hello", outer.Subject);
            Assert.Equal("Anne Smith via Dev Team <dev@example.org>", Show(outer.From));
            var mixed = Assert.IsType<Multipart>(outer.Body);
            Assert.Equal(3, mixed.Count);
            Assert.IsType<MessagePart>(mixed[1]);
            Assert.Contains($"-- sent to {name} <{address}>", Assert.IsType<TextPart>(mixed[2]).Text, StringComparison.Ordinal);

            // The attached original is the post as received, for every copy.
            Assert.Equal(raw.Replace("\n", "\r\n", StringComparison.Ordinal), Encoding.UTF8.GetString(EmbeddedBytes(copy)));
        }

        Assert.NotNull(post.SlotNonce);
    }

    [Theory]
    [InlineData("Anne <anne@reject.test> (comment")]
    [InlineData("Anne Smith anne@reject.test")]
    [InlineData("\"Anne\" anne@reject.test")]
    [InlineData("Anne\\ Smith <anne@reject.test>")]
    public void A_From_MimeKit_cannot_parse_is_looked_up_by_the_domain_written_in_it(string from)
    {
        // Review 27: these gave no mailbox, so no lookup, and went out unmitigated with the
        // p=reject domain in From: for a lenient receiver to read.
        var post = Context(Post(from), l => l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom);
        Assert.DoesNotContain(post.Message.From.Mailboxes, m => m.Address.Contains('@', StringComparison.Ordinal));
        Check(post);
        Assert.Equal(new DmarcNote("reject.test", "reject", true), post.Metadata.Dmarc);
        new DmarcMitigation(Services()).Process(post);
        Assert.Equal("bounce+x--- via Dev Team <dev@example.org>", Show(post.Message.From));
        Assert.DoesNotContain("anne@", Header(post.Message, HeaderId.From), StringComparison.Ordinal);

        Assert.Equal(HandlerAction.Reject, Check(Context(Post(from), l => l.DmarcMitigateAction = DmarcMitigateAction.Reject)).Action);
    }

    [Theory]
    [InlineData("bob@none.test, Anne Smith anne@reject.test", "")]
    [InlineData("bob@none.test,anne@reject.test(x", "")]
    [InlineData("bob@none.test, \"Anne\" anne@reject.test", "")]
    [InlineData("anne@none.test@reject.test", "")]
    [InlineData("bob@none.test", "From: Anne Smith anne@reject.test\n")]
    public void A_From_MimeKit_parses_only_in_part_is_looked_up_by_every_domain_written_in_it(string from, string extra)
    {
        // Review 29: one good mailbox hid the p=reject domain MimeKit dropped.
        var post = Context(Post(from, extra), l => l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom);
        Check(post);
        Assert.Equal(new DmarcNote("reject.test", "reject", true), post.Metadata.Dmarc);
        new DmarcMitigation(Services()).Process(post);
        Assert.All(post.Message.Headers.Where(h => h.Id == HeaderId.From), h => Assert.DoesNotContain("reject.test", h.Value, StringComparison.Ordinal));
        Assert.Equal(HandlerAction.Reject, Check(Context(Post(from, extra), l => l.DmarcMitigateAction = DmarcMitigateAction.Reject)).Action);
    }

    [Fact]
    public void Decoys_in_a_comment_do_not_hide_the_domain_and_more_than_five_domains_are_mitigated_unlooked_up()
    {
        // Review 30: five decoy domains first left the sixth, p=reject, unlooked-up.
        var post = Context(Post("(@a.test @b.test @c.test @d.test @e.test) Anne Smith anne@reject.test"), l => l.DmarcMitigateAction = DmarcMitigateAction.Reject);
        Assert.Equal(HandlerAction.Reject, Check(post).Action);

        var six = "bob@a.test, bob@b.test, bob@c.test, bob@d.test, bob@e.test, anne@reject.test";
        post = Context(Post(six), l => l.DmarcMitigateAction = DmarcMitigateAction.Reject);
        var queries = _dns.Queries.Count;
        Assert.Equal(HandlerAction.Continue, Check(post).Action); // never rejected for it: munged
        Assert.Equal(("too-many-domains", true), (post.Metadata.Dmarc!.Policy, post.Metadata.Dmarc.Mitigate));
        Assert.Equal(queries, _dns.Queries.Count);
        new DmarcMitigation(Services()).Process(post);
        Assert.Equal("bounce+x--- via Dev Team <dev@example.org>", Show(post.Message.From));

        // Fifty thousand written domains: the scan stops after the sixth.
        var many = string.Concat(Enumerable.Range(0, 50_000).Select(i => $"@d{i}.test ")) + "bob@none.test";
        post = Context(Post(many), l => l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom);
        Check(post);
        Assert.Equal("too-many-domains", post.Metadata.Dmarc!.Policy);
    }

    [Theory]
    [InlineData("\"anne@reject.test via Dev\" <bob@none.test>")]
    [InlineData("\"Anne \\\" anne@reject.test\" <bob@none.test>")]
    [InlineData("Bob <bob@none.test> (sent via anne@reject.test)")]
    [InlineData("=?utf-8?q?Ren=C3=A9_=28rene=40reject=2Etest=29?= <bob@none.test>")]
    [InlineData("Mailer-Daemon <bob@none.test> (Mail Delivery System; see postmaster@reject.test)")]
    public void An_address_in_a_quoted_or_encoded_display_name_or_a_comment_is_not_a_From_domain(string from)
    {
        var post = Context(Post(from), l => l.DmarcMitigateAction = DmarcMitigateAction.Reject);
        Assert.Equal(HandlerAction.Continue, Check(post).Action);
        Assert.Equal(new DmarcNote("none.test", "none", false), post.Metadata.Dmarc);
    }

    [Fact]
    public void A_wrapped_post_keeps_the_X_BeenThere_of_the_lists_it_went_through()
    {
        // Review 27: wrap_message dropped X-BeenThere, so two wrapping lists that are members of
        // each other passed one post back and forth for good.
        var post = Context(Post(extra: "X-BeenThere: other@example.net\nX-BeenThere: dev@example.org\n"), l => l.DmarcMitigateAction = DmarcMitigateAction.WrapMessage);
        Check(post);
        new DmarcMitigation(Services()).Process(post);
        Assert.Equal(["other@example.net", "dev@example.org"], post.Message.Headers.Where(h => h.Field == "X-BeenThere").Select(h => h.Value.Trim()));
        Assert.Equal(HandlerAction.Discard, new LoopDetection().Process(post).Action);
    }

    [Fact]
    public void Unconditional_munging_applies_to_a_domain_without_policy()
    {
        var post = Context(Post("Anne <anne@nothing.test>"), l => { l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom; l.DmarcMitigateUnconditionally = true; });
        Check(post);
        new DmarcMitigation(Services()).Process(post);
        Assert.Equal("Anne via Dev Team <dev@example.org>", Show(post.Message.From));
    }

    [Fact]
    public void A_post_queued_without_the_checks_note_is_looked_up_in_the_pipeline()
    {
        var post = Context(Post(), l => l.DmarcMitigateAction = DmarcMitigateAction.MungeFrom);
        new DmarcMitigation(Services()).Process(post);
        Assert.Equal("reject", post.Metadata.Dmarc!.Policy);
        Assert.Equal("Anne Smith via Dev Team <dev@example.org>", Show(post.Message.From));
    }

    /// <summary>The bytes of the message/rfc822 part's message, located by MimeKit's parser offsets.</summary>
    internal static byte[] EmbeddedBytes(byte[] wire)
    {
        using var stream = new MemoryStream(wire);
        var parser = new MimeParser(stream);
        long begin = -1, end = -1;
        parser.MimeMessageBegin += (_, e) =>
        {
            if (e.Parent is MessagePart)
            {
                begin = e.BeginOffset;
            }
        };
        parser.MimeMessageEnd += (_, e) =>
        {
            if (e.Parent is MessagePart)
            {
                end = e.EndOffset;
            }
        };
        parser.ParseMessage();
        Assert.True(begin >= 0 && end > begin, "a message/rfc822 part");
        return wire[(int)begin..(int)end];
    }
}
