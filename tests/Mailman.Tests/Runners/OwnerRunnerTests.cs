// The owner runner against a real temp instance: owner mail goes to every owner as one out entry
// under its own name, unchanged but for the trace header, with the list's VERP sender per owner;
// mail that could loop, or that has nobody to go to, is kept in bad with the reason.
using System.Text;
using Mailman.Lists;
using Mailman.Queues;
using Mailman.TestSupport;
using MimeKit;

namespace Mailman.Tests.Runners;

public sealed class OwnerRunnerTests : IDisposable
{
    private const string List = "dev@example.org";
    private readonly TempInstance _instance = new();

    public OwnerRunnerTests() => _instance.CreateList(List);

    public void Dispose() => _instance.Dispose();

    private void Owners(params string[] people)
    {
        using var store = new ListStore(_instance.Paths.Database);
        store.AddRole(ListName.Parse(List), ListRole.Owner, people.Select(Member.Parse));
    }

    private static byte[] Mail(string headers = "From: Stranger <stranger@example.net>\n", string body = "Who runs this list?\n.dot line\n", string id = "q1@example.net")
        => Encoding.UTF8.GetBytes($"{headers}To: dev-owner@example.org\nSubject: A question\nMessage-Id: <{id}>\n\n{body}");

    private static string Enqueue(RunnerHarness h, byte[] raw, string? sender = "stranger@example.net")
        => h.Queues[QueueSet.Owner].Enqueue(new EntryMetadata { List = List, Sender = sender, Destination = "dev-owner@example.org" }, raw);

    // Review 110: one transaction to dev-owner+0@ ... +49@ was fifty forwards of one message.
    [Fact]
    public void Owner_mail_the_list_took_in_already_is_forwarded_once()
    {
        Owners("olga@example.com");
        using var h = new RunnerHarness(_instance);
        var first = Enqueue(h, Mail());
        var again = Enqueue(h, Mail());
        Assert.Equal(2, RunnerHarness.Drain(h.Owner));
        var forwarded = Assert.Single(h.Queues[QueueSet.Out].Pending());
        var discarded = forwarded == first ? again : first;
        Assert.Contains(h.Logs.Lines, l => l.Contains($"Owner mail q1@example.net for dev@example.org from stranger@example.net discarded, entry {discarded}: a duplicate of entry {forwarded}", StringComparison.Ordinal));
        Assert.Empty(h.Queues[QueueSet.Bad].Pending());
    }

    [Fact]
    public void Owner_mail_goes_to_every_owner_unchanged_but_for_the_trace_header_with_the_lists_VERP_sender()
    {
        Owners("Olga <olga@example.com>", "oscar@example.net");
        using var sink = SmtpSink.Start();
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = sink.Port);
        var id = Enqueue(h, Mail());

        Assert.Equal(1, RunnerHarness.Drain(h.Owner));
        var outQueue = h.Queues[QueueSet.Out];
        Assert.Equal([id], outQueue.Pending());
        var metadata = outQueue.ReadMetadata(id);
        Assert.Equal("owner forward", metadata.Purpose);
        Assert.True(metadata.Personalized);
        Assert.Null(metadata.SlotNonce);
        Assert.Null(metadata.EnvelopeSender);

        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
        var copies = sink.WaitFor(2);
        Assert.Equal(["olga@example.com", "oscar@example.net"], copies.Select(c => Assert.Single(c.Recipients)).Order());
        foreach (var copy in copies)
        {
            var owner = copy.Recipients[0];
            Assert.Equal($"dev-bounces+{owner.Replace('@', '=')}@example.org", copy.MailFrom);
            Assert.Equal("dev-owner@example.org", copy.Header("X-BeenThere"));
            Assert.Equal("dev-owner@example.org", copy.Header("To"));
            Assert.Equal("Stranger <stranger@example.net>", copy.Header("From"));
            Assert.Equal("<q1@example.net>", copy.Header("Message-Id"));
            Assert.Equal("Who runs this list?\n.dot line", copy.Body.Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n'));
        }

        Assert.Empty(h.Queues[QueueSet.Owner].Pending());
        Assert.Empty(h.Queues[QueueSet.Bad].Pending());
    }

    [Theory]
    [InlineData("From: x@example.net\nTo: dev-owner@example.org\nSubject: only headers")]
    [InlineData("From: x@example.net\nTo: dev-owner@example.org\nSubject: only headers\n")]
    [InlineData("From: x@example.net\nTo: dev-owner@example.org\nSubject: folded\n end")]
    public void Owner_mail_of_headers_only_is_delivered(string raw)
    {
        // Review 27: without a newline after the last header line the forward had no end of
        // header block and the outgoing runner shunted it for good.
        Owners("olga@example.com");
        using var sink = SmtpSink.Start();
        using var h = new RunnerHarness(_instance, o => o.Smtp.Port = sink.Port);
        Enqueue(h, Encoding.UTF8.GetBytes(raw));
        Assert.Equal(1, RunnerHarness.Drain(h.Owner));
        Assert.Equal(1, RunnerHarness.Drain(h.Outgoing));
        var copy = Assert.Single(sink.WaitFor(1));
        Assert.Equal("x@example.net", copy.Header("From"));
        Assert.Empty(h.Queues[QueueSet.Shunt].Pending());
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
        Assert.Contains(h.Logs.Lines, l => l.Contains("Owner mail (none) for dev@example.org from", StringComparison.Ordinal)); // review 49: "Owner mail null"
    }

    [Theory]
    [InlineData("From: a@example.net\nX-BeenThere: dev@example.org\n", "a@example.net", "already went through")]
    [InlineData("From: a@example.net\nX-BeenThere: DEV-owner@example.org\n", "a@example.net", "already went through")]
    [InlineData("From: dev-bounces@example.org\n", "a@example.net", "from the list itself")]
    [InlineData("From: a@example.net\n", "dev-bounces+olga=example.com@example.org", "from the list itself")]
    [InlineData("From: Olga <olga@example.com>\nAuto-Submitted: auto-replied\n", "olga@example.com", "automatic reply")]
    public void Mail_that_could_loop_is_kept_in_bad_with_the_reason(string headers, string sender, string why)
    {
        Owners("olga@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Enqueue(h, Mail(headers), sender);

        Assert.Equal(1, RunnerHarness.Drain(h.Owner));
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
        var kept = h.Queues[QueueSet.Bad].ReadMetadata(Assert.Single(h.Queues[QueueSet.Bad].Pending()));
        Assert.Equal(QueueSet.Owner, kept.FromQueue);
        Assert.Contains(why, kept.Error, StringComparison.Ordinal);
        Assert.Equal([id], h.Queues[QueueSet.Bad].Pending());
    }

    [Fact]
    public void An_owners_ordinary_mail_and_an_automatic_reply_from_a_stranger_are_forwarded()
    {
        Owners("olga@example.com");
        using var h = new RunnerHarness(_instance);
        Enqueue(h, Mail("From: Olga <olga@example.com>\n"), "olga@example.com");
        Enqueue(h, Mail("From: a@example.net\nAuto-Submitted: auto-replied\n", id: "q2@example.net"), "a@example.net");
        Assert.Equal(2, RunnerHarness.Drain(h.Owner));
        Assert.Equal(2, h.Queues[QueueSet.Out].Pending().Count);
        Assert.Empty(h.Queues[QueueSet.Bad].Pending());
    }

    [Fact]
    public void Without_owners_the_site_owner_gets_it_and_without_either_it_is_kept()
    {
        using (var h = new RunnerHarness(_instance, o => o.SiteOwner = "site@example.com"))
        {
            var id = Enqueue(h, Mail());
            RunnerHarness.Drain(h.Owner);
            var entry = h.Queues[QueueSet.Out].Load(h.Queues[QueueSet.Out].Claim(id)!);
            Assert.Equal(["site@example.com"], h.Queues[QueueSet.Out].Recipients(entry).Select(r => r.Address));
        }

        using (var h = new RunnerHarness(_instance))
        {
            Enqueue(h, Mail(id: "q2@example.net"));
            RunnerHarness.Drain(h.Owner);
            var kept = h.Queues[QueueSet.Bad].ReadMetadata(Assert.Single(h.Queues[QueueSet.Bad].Pending()));
            Assert.Contains("no owner", kept.Error, StringComparison.Ordinal);
        }
    }

    // Review 84: a site owner written with the root dot ("other@example.org.") was not seen as
    // list other's address: the MTA gave it the owner mail as a post.
    [Theory]
    [InlineData("other@example.org.")]
    [InlineData("Other-Request@EXAMPLE.org.")]
    public void A_site_owner_that_is_an_address_of_a_list_here_however_spelled_is_never_sent_to(string siteOwner)
    {
        _instance.CreateList("other@example.org");
        using var h = new RunnerHarness(_instance, o => o.SiteOwner = siteOwner);
        Enqueue(h, Mail());
        RunnerHarness.Drain(h.Owner);
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
        Assert.Contains("no owner, and Mailman:SiteOwner is an address of a list here", h.Queues[QueueSet.Bad].ReadMetadata(Assert.Single(h.Queues[QueueSet.Bad].Pending())).Error, StringComparison.Ordinal);
    }

    // Review 107: owners that are all addresses of lists here were kept as "has no owner".
    [Fact]
    public void Owners_that_are_all_addresses_of_lists_here_are_named_when_the_mail_is_kept()
    {
        _instance.CreateList("other@example.org");
        Owners("other@example.org");
        using var h = new RunnerHarness(_instance);
        Enqueue(h, Mail());
        RunnerHarness.Drain(h.Owner);
        Assert.Empty(h.Queues[QueueSet.Out].Pending());
        Assert.Contains("has no owner but addresses of lists here (other@example.org) and Mailman:SiteOwner is not set", h.Queues[QueueSet.Bad].ReadMetadata(Assert.Single(h.Queues[QueueSet.Bad].Pending())).Error, StringComparison.Ordinal);
    }

    [Fact]
    public void An_owner_that_is_an_address_of_a_list_here_is_never_sent_to_and_a_deleted_list_keeps_its_mail()
    {
        _instance.CreateList("other@example.org");
        Owners("other@example.org", "olga@example.com");
        using var h = new RunnerHarness(_instance);
        var id = Enqueue(h, Mail());
        RunnerHarness.Drain(h.Owner);
        var entry = h.Queues[QueueSet.Out].Load(h.Queues[QueueSet.Out].Claim(id)!);
        Assert.Equal(["olga@example.com"], h.Queues[QueueSet.Out].Recipients(entry).Select(r => r.Address));
        Assert.Contains(h.Logs.Lines, l => l.Contains("not forwarded to other@example.org: addresses of lists here", StringComparison.Ordinal));

        using (var store = new ListStore(_instance.Paths.Database))
        {
            store.DeleteList(ListName.Parse(List));
        }

        Enqueue(h, Mail());
        RunnerHarness.Drain(h.Owner);
        var kept = h.Queues[QueueSet.Bad].ReadMetadata(Assert.Single(h.Queues[QueueSet.Bad].Pending()));
        Assert.Contains("no such list", kept.Error, StringComparison.Ordinal);
    }
}
