// One contract, run against a mock file system and a real directory (as the generic host's
// compliance suites do). Crash safety itself is proven on a real disk with a real process
// elsewhere; this pins down the switchboard's API semantics.
using System.IO.Abstractions;
using System.IO.Abstractions.TestingHelpers;
using System.Text;
using Mailman.Queues;
using Microsoft.Extensions.Time.Testing;

namespace Mailman.Tests.Queues;

public abstract class SwitchboardContract : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));

    protected abstract IFileSystem FileSystem { get; }

    protected abstract string Root { get; }

    public virtual void Dispose() => GC.SuppressFinalize(this);

    private Switchboard Queue(string name = "in") => new(FileSystem, FileSystem.Path.Combine(Root, name), name, _time);

    private static EntryMetadata Meta(string list = "dev@example.org") => new() { List = list, Sender = "a@example.com" };

    [Fact]
    public void Enqueued_entries_are_claimed_oldest_first_and_read_back_exactly()
    {
        var q = Queue();
        var first = q.Enqueue(Meta(), "first"u8);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var second = q.Enqueue(Meta(), "second"u8);

        var claim = q.TryClaim()!;
        Assert.Equal(first, claim.Name);
        var loaded = q.Load(claim);
        Assert.Equal("first", Encoding.ASCII.GetString(loaded.Message));
        Assert.Equal("dev@example.org", loaded.Metadata.List);
        Assert.Equal([second], q.Pending());
        Assert.Equal([first], q.Claimed());

        q.Finish(claim);
        Assert.Empty(q.Claimed());
        Assert.Equal(second, q.TryClaim()!.Name);
        Assert.Null(q.TryClaim());
    }

    [Fact]
    public void Recipients_stream_back_in_order_with_their_count_and_can_be_skipped()
    {
        var q = Queue("out");
        var recipients = Enumerable.Range(0, 2500).Select(i => new Recipient($"m{i}@example.com", i % 2 == 0 ? $"Name {i}" : "")).ToList();
        q.Enqueue(Meta(), "msg"u8, recipients);
        var loaded = q.Load(q.TryClaim()!);
        Assert.Equal(2500, loaded.Metadata.RecipientCount);
        Assert.Equal(recipients, q.Recipients(loaded));
        Assert.Equal(recipients.Skip(2000), q.Recipients(loaded, skip: 2000));
    }

    [Fact]
    public void A_name_with_tab_or_newline_cannot_break_the_record_format()
    {
        var q = Queue("out");
        q.Enqueue(Meta(), "msg"u8, [new Recipient("a@example.com", "Evil\tName\r\nX: y"), new Recipient("b@example.com", "")]);
        var loaded = q.Load(q.TryClaim()!);
        Assert.Equal([new Recipient("a@example.com", "Evil Name  X: y"), new Recipient("b@example.com", "")], q.Recipients(loaded));
    }

    [Fact]
    public void A_claimed_entry_cannot_be_claimed_again()
    {
        var q = Queue();
        var name = q.Enqueue(Meta(), "x"u8);
        Assert.NotNull(q.Claim(name));
        Assert.Null(q.Claim(name));
        Assert.Null(q.TryClaim());
    }

    [Fact]
    public void Recovery_puts_claimed_entries_back_then_sets_them_aside_after_the_limit()
    {
        var q = Queue();
        var bad = Queue("bad");
        var name = q.Enqueue(Meta(), "x"u8, [new Recipient("a@example.com", "A")]);
        for (var crash = 1; crash <= 2; crash++)
        {
            q.TryClaim();
            Assert.Equal((1, 0), q.Recover(bad, maxRecoveries: 2));
            Assert.Equal([name], q.Pending());
            Assert.Equal(crash, q.ReadMetadata(name).Recoveries);
        }

        q.TryClaim();
        Assert.Equal((0, 1), q.Recover(bad, maxRecoveries: 2));
        Assert.Empty(q.Pending());
        var inBad = bad.Load(bad.TryClaim()!);
        Assert.Contains("crashed", inBad.Metadata.Error, StringComparison.Ordinal);
        Assert.Equal([new Recipient("a@example.com", "A")], bad.Recipients(inBad));
    }

    // Review 137: the delivery's cut, the checkpoint's first record, written before any copy,
    // counted as progress: one kill more than MaxRecoveries allows went by before the entry was
    // set aside. A chunk recorded is progress, and starts the count again.
    [Fact]
    public void A_checkpoint_holding_only_the_cut_is_no_progress_and_a_chunk_recorded_is()
    {
        var q = Queue("out");
        var bad = Queue("bad");
        var shunt = Queue("shunt");
        var name = q.Enqueue(Meta(), "x"u8, [new Recipient("a@example.com", "A")]);
        void Crash(bool chunk)
        {
            var claim = q.TryClaim()!;
            using (var checkpoint = DeliveryCheckpoint.Open(FileSystem, q, claim))
            {
                checkpoint.Start(20, 100);
                if (chunk)
                {
                    checkpoint.Record(checkpoint.ChunksRecorded, 1, []);
                }
            }

            q.Recover(bad, maxRecoveries: 2, shunt: shunt);
        }

        Crash(chunk: false);
        Assert.Equal(1, q.ReadMetadata(name).Recoveries);
        Crash(chunk: true);
        Assert.Equal(0, q.ReadMetadata(name).Recoveries);
        Crash(chunk: false);
        Crash(chunk: false);
        Assert.Equal(2, q.ReadMetadata(name).Recoveries);
        Crash(chunk: false);
        Assert.Equal([name], shunt.Pending()); // three crashes without progress, as for an entry without a checkpoint
    }

    // Review 59: four kills while the relay hung sent a healthy post to bad, where no verb
    // reaches; with a shunt queue it waits there, and unshunt's Restore puts it back afresh.
    [Fact]
    public void An_entry_crashed_on_too_often_goes_to_shunt_and_comes_back_with_its_count_reset()
    {
        var q = Queue();
        var bad = Queue("bad");
        var shunt = Queue("shunt");
        var name = q.Enqueue(Meta(), "x"u8, [new Recipient("a@example.com", "A")]);
        for (var crash = 1; crash <= 3; crash++)
        {
            q.TryClaim();
            q.Recover(bad, maxRecoveries: 2, shunt: shunt);
        }

        Assert.Empty(q.Pending());
        Assert.Empty(bad.Pending());
        Assert.Equal([name], shunt.Pending());
        Assert.Contains("crashed", shunt.ReadState(name)!.Error, StringComparison.Ordinal);

        Assert.True(shunt.Restore(name, q));
        Assert.Equal(0, q.ReadMetadata(name).Recoveries);
    }

    [Fact]
    public void A_forwarded_entry_keeps_its_name_and_forwarding_it_again_writes_nothing()
    {
        var pipeline = Queue("pipeline");
        var outgoing = Queue("out");
        var claim = pipeline.Claim(pipeline.Enqueue(Meta(), "post"u8))!;

        Assert.Equal(claim.Name, outgoing.Enqueue(Meta(), "flattened"u8, [new Recipient("a@example.com", "")], claim.Name));
        Assert.Equal(claim.Name, outgoing.Enqueue(Meta(), "again"u8, [new Recipient("a@example.com", "")], claim.Name));

        Assert.Equal([claim.Name], outgoing.Pending());
        Assert.Equal("flattened", Encoding.ASCII.GetString(outgoing.Load(outgoing.Claim(claim.Name)!).Message));
        Assert.Throws<ArgumentException>(() => outgoing.Enqueue(Meta(), "x"u8, name: "../etc/passwd"));
    }

    [Fact]
    public void A_named_entry_is_written_over_the_temporary_file_a_killed_writer_left()
    {
        // Review 88: a notice owed by a killed `members add --welcome` failed once with "already
        // exists" on the temporary file of its own name, until the next sweep removed it.
        var outgoing = Queue("out");
        const string Name = "01796531184224075-605ee2a7";
        FileSystem.Directory.CreateDirectory(FileSystem.Path.Combine(Root, "out"));
        FileSystem.File.WriteAllText(FileSystem.Path.Combine(Root, "out", Name + Switchboard.TempExtension), "half a notice");

        Assert.Equal(Name, outgoing.Enqueue(Meta(), "notice"u8, [new Recipient("a@example.com", "")], Name));
        Assert.Equal("notice", Encoding.ASCII.GetString(outgoing.Load(outgoing.Claim(Name)!).Message));
        Assert.False(FileSystem.File.Exists(FileSystem.Path.Combine(Root, "out", Name + Switchboard.TempExtension)));
    }

    [Fact]
    public void Recovery_drops_a_claim_whose_entry_a_crashed_run_had_already_forwarded()
    {
        // The run wrote out/NAME, then died before finishing its pipeline claim.
        var pipeline = Queue("pipeline");
        var outgoing = Queue("out");
        var forwarded = pipeline.Claim(pipeline.Enqueue(Meta(), "post"u8))!;
        outgoing.Enqueue(Meta(), "flattened"u8, [new Recipient("a@example.com", "")], forwarded.Name);
        var interrupted = pipeline.Claim(pipeline.Enqueue(Meta(), "other post"u8))!;

        var (recovered, toBad) = pipeline.Recover(Queue("bad"), 3, name => outgoing.Holds(name));

        Assert.Equal((2, 0), (recovered, toBad));
        Assert.Empty(pipeline.Claimed());
        Assert.Equal([interrupted.Name], pipeline.Pending());
        Assert.Equal([forwarded.Name], outgoing.Pending());
    }

    [Fact]
    public void Truncated_or_foreign_files_are_reported_as_corrupt()
    {
        var q = Queue();
        var name = q.Enqueue(Meta(), "a message of some length"u8);
        var path = FileSystem.Path.Combine(Root, "in", name + ".msg");
        var bytes = FileSystem.File.ReadAllBytes(path);
        FileSystem.File.WriteAllBytes(path, bytes[..(bytes.Length - 20)]);
        Assert.Throws<CorruptEntryException>(() => q.Load(q.TryClaim()!));

        var other = "01795868930980604-0000beef";
        FileSystem.File.WriteAllText(FileSystem.Path.Combine(Root, "in", other + ".msg"), "From: x\n\nnot ours");
        Assert.Throws<CorruptEntryException>(() => q.Load(q.Claim(other)!));
    }

    [Fact]
    public void Temporary_files_of_interrupted_writes_are_never_claimed_and_are_removed_at_recovery()
    {
        var q = Queue();
        var temp = FileSystem.Path.Combine(Root, "in", "01795868930980604-0000cafe.tmp");
        FileSystem.File.WriteAllText(temp, "MAILMAN-QUEUE/1\n{\"Ver");
        Assert.Null(q.TryClaim());
        q.Recover(Queue("bad"), 3);
        Assert.False(FileSystem.File.Exists(temp));
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("01795868930980604-0000cafe/../x")]
    [InlineData("x")]
    public void Names_that_are_not_queue_names_never_become_paths(string name)
        => Assert.Throws<ArgumentException>(() => Queue().Claim(name));
}

public sealed class SwitchboardOnMockFileSystem : SwitchboardContract
{
    private readonly MockFileSystem _fs = new();

    protected override IFileSystem FileSystem => _fs;

    protected override string Root => "/instance/queues";
}

public sealed class SwitchboardOnRealDisk : SwitchboardContract
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "mailman-sb-" + Guid.NewGuid().ToString("N")[..12]);

    protected override IFileSystem FileSystem { get; } = new FileSystem();

    protected override string Root => _root;

    public override void Dispose()
    {
        Directory.Delete(_root, recursive: true);
        base.Dispose();
    }

    [Fact]
    public void A_named_entry_leaves_the_temporary_file_of_a_live_writer_alone()
    {
        var outgoing = new Switchboard(FileSystem, Path.Combine(_root, "out"), "out", TimeProvider.System);
        const string Name = "01796531184224075-605ee2a8";
        var temp = Path.Combine(_root, "out", Name + Switchboard.TempExtension);
        using (var writer = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            writer.Write("being written"u8);
            writer.Flush();
            Assert.ThrowsAny<IOException>(() => outgoing.Enqueue(new EntryMetadata { List = "dev@example.org" }, "notice"u8, [new Recipient("a@example.com", "")], Name));
        }

        Assert.Equal("being written", File.ReadAllText(temp));
        Assert.Empty(outgoing.Pending());
    }

    // ci98: a start-up sweep between an inject's last write and its rename took the complete
    // file (the writer had closed it), and the inject failed "Could not find file NAME.tmp".
    [Fact]
    public void A_start_up_sweep_while_an_entry_is_being_written_leaves_it_to_its_writer()
    {
        var incoming = new Switchboard(FileSystem, Path.Combine(_root, "in"), "in", TimeProvider.System);
        var daemon = new Switchboard(FileSystem, Path.Combine(_root, "in"), "in", TimeProvider.System);
        var bad = new Switchboard(FileSystem, Path.Combine(_root, "bad"), "bad", TimeProvider.System);
        var name = incoming.Enqueue(new EntryMetadata { List = "dev@example.org" }, s => s.Write("the post"u8), null, keepFree: size =>
        {
            daemon.Recover(bad, 3);
            return 0;
        });
        Assert.Equal([name], incoming.Pending());
    }

    // A writer makes its file an instant before it locks it: an empty file just made is left alone
    // (not even probed: the probe's lock would fail the writer's), one left empty for long is not.
    [Fact]
    public void An_empty_temporary_file_just_made_stays_and_one_made_long_ago_goes()
    {
        var incoming = new Switchboard(FileSystem, Path.Combine(_root, "in"), "in", TimeProvider.System);
        var bad = new Switchboard(FileSystem, Path.Combine(_root, "bad"), "bad", TimeProvider.System);
        var fresh = Path.Combine(_root, "in", "01796531184224075-605ee2a8" + Switchboard.TempExtension);
        var old = Path.Combine(_root, "in", "01796531184224076-605ee2a9" + Switchboard.TempExtension);
        var ahead = Path.Combine(_root, "in", "01796531184224077-605ee2aa" + Switchboard.TempExtension);
        var link = Path.Combine(_root, "in", "01796531184224078-605ee2ab" + Switchboard.TempExtension);
        File.WriteAllBytes(fresh, []);
        File.WriteAllBytes(old, []);
        File.WriteAllBytes(ahead, []);
        File.SetLastWriteTimeUtc(old, DateTime.UtcNow - TimeSpan.FromSeconds(30));
        File.SetLastWriteTimeUtc(ahead, DateTime.UtcNow + TimeSpan.FromHours(1)); // the clock stepped back since
        File.CreateSymbolicLink(link, "/nonexistent/x");
        incoming.Recover(bad, 3);
        Assert.True(File.Exists(fresh));
        Assert.False(File.Exists(old));
        Assert.False(File.Exists(ahead));
        Assert.Null(new FileInfo(link).LinkTarget);
    }

    // Review 120: a daemon killed while writing a hop leaves the next queue's NAME.tmp, empty (a
    // small entry is flushed at its end); started again at once, the hop under the same name took
    // it for a live writer's and shunted the post.
    [Fact]
    public void A_named_entry_goes_over_the_empty_temporary_file_of_a_killed_writer()
    {
        var outgoing = new Switchboard(FileSystem, Path.Combine(_root, "out"), "out", TimeProvider.System);
        const string Name = "01796531184224075-605ee2a8";
        Directory.CreateDirectory(Path.Combine(_root, "out"));
        File.WriteAllBytes(Path.Combine(_root, "out", Name + Switchboard.TempExtension), []);
        outgoing.Enqueue(new EntryMetadata { List = "dev@example.org" }, "the post"u8, [new Recipient("a@example.com", "")], Name);
        Assert.Equal([Name], outgoing.Pending());
    }

    // Review 120: a writer holds its lock until just after the rename; the runner woken by the
    // rename found the entry locked and paused its queue with an error. It waits for the close.
    [Fact]
    public void A_reader_that_finds_an_entry_still_locked_by_its_writer_waits_for_it()
    {
        var incoming = new Switchboard(FileSystem, Path.Combine(_root, "in"), "in", TimeProvider.System);
        var name = incoming.Enqueue(new EntryMetadata { List = "dev@example.org" }, "the post"u8);
        var writer = new FileStream(Path.Combine(_root, "in", name + Switchboard.EntryExtension), FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        var waited = 0;
        incoming.WaitedForWriter = _ =>
        {
            waited++;
            writer.Dispose();
        };
        var claim = incoming.TryClaim();
        Assert.NotNull(claim);
        Assert.Equal("dev@example.org", incoming.LoadHead(claim).Metadata.List);
        Assert.Equal(1, waited);
    }

    // Review 122: an entry locked for good (a stopped writer, a tool) is no instant to wait out:
    // its reader is told, and the queue passes over it for a while.
    [Fact]
    public void An_entry_locked_for_good_is_reported_and_passed_over_for_a_while()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var incoming = new Switchboard(FileSystem, Path.Combine(_root, "in"), "in", time);
        var first = incoming.Enqueue(new EntryMetadata { List = "dev@example.org" }, "first"u8);
        time.Advance(TimeSpan.FromMilliseconds(1));
        var second = incoming.Enqueue(new EntryMetadata { List = "dev@example.org" }, "second"u8);
        using (new FileStream(Path.Combine(_root, "in", first + Switchboard.EntryExtension), FileMode.Open, FileAccess.Read, FileShare.None))
        {
            var claim = incoming.TryClaim()!;
            Assert.Equal(first, claim.Name);
            Assert.Throws<EntryLockedException>(() => incoming.LoadHead(claim));
            incoming.Unclaim(claim);
            incoming.PassOver(first, TimeSpan.FromSeconds(10));
            Assert.Equal(second, incoming.TryClaim()!.Name);
            Assert.Null(incoming.TryClaim());
            Assert.False(incoming.HasWaiting()); // no work now: `serve --exit-when-idle` ends, leaving it
        }

        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(incoming.HasWaiting());
        Assert.Equal(first, incoming.TryClaim()!.Name);
    }

    // Review 123: what another process holding a queue file locked did beyond the claim: the
    // retry queue paused (and `serve --exit-when-idle` stopped with 70), every start stopped (73),
    // unshunt guessed where an entry came from, a delivery went on unrecorded.
    [Fact]
    public void Entries_checkpoints_and_state_files_another_process_holds_wait_and_stop_nothing()
    {
        static FileStream Hold(string path) => new(path, FileMode.Open, FileAccess.Read, FileShare.None);
        var meta = new EntryMetadata { List = "dev@example.org", NotBefore = DateTimeOffset.UtcNow.AddHours(-1) };

        var retry = new Switchboard(FileSystem, Path.Combine(_root, "retry"), "retry", TimeProvider.System);
        var due = retry.Enqueue(meta, "due"u8);
        using (Hold(Path.Combine(_root, "retry", due + Switchboard.EntryExtension)))
        {
            Assert.False(Mailman.Runners.RetryRunner.IsDue(retry, due, DateTimeOffset.UtcNow, TimeSpan.FromDays(1)));
            Assert.False(retry.HasWaiting()); // passed over: no work now
            Assert.Null(retry.TryClaim());
        }

        var outgoing = new Switchboard(FileSystem, Path.Combine(_root, "out"), "out", TimeProvider.System);
        var bad = new Switchboard(FileSystem, Path.Combine(_root, "bad"), "bad", TimeProvider.System);
        var crashed = outgoing.Enqueue(meta, "crashed"u8, [new Recipient("a@example.com", "")]);
        var claim = outgoing.TryClaim()!;
        File.WriteAllBytes(outgoing.CheckpointPath(crashed), []);
        using (Hold(claim.Path))
        {
            outgoing.Recover(bad, 3);
            Assert.Equal([crashed], outgoing.Pending());
        }

        claim = outgoing.TryClaim()!;
        using (Hold(outgoing.CheckpointPath(crashed)))
        {
            Assert.Throws<EntryLockedException>(() => DeliveryCheckpoint.Open(FileSystem, outgoing, claim));
        }

        var shunt = new Switchboard(FileSystem, Path.Combine(_root, "shunt"), "shunt", TimeProvider.System);
        outgoing.SetAside(claim, shunt, "a test");
        Assert.Equal("out", shunt.ReadState(crashed)!.FromQueue);
        using (Hold(Path.Combine(_root, "shunt", crashed + Switchboard.StateExtension)))
        {
            Assert.Throws<EntryLockedException>(() => shunt.ReadState(crashed));
        }
    }

    [Fact]
    public void Entry_files_are_readable_by_the_owner_only()
    {
        var q = new Switchboard(FileSystem, Path.Combine(_root, "in"), "in", TimeProvider.System);
        var name = q.Enqueue(new EntryMetadata { List = "dev@example.org" }, "x"u8);
        var mode = File.GetUnixFileMode(Path.Combine(_root, "in", name + ".msg"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, mode);
    }

    [Fact]
    public void Concurrent_workers_never_claim_the_same_entry()
    {
        var q = new Switchboard(FileSystem, Path.Combine(_root, "in"), "in", TimeProvider.System);
        for (var i = 0; i < 300; i++)
        {
            q.Enqueue(new EntryMetadata { List = "dev@example.org" }, "x"u8);
        }

        var claimed = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 4, _ =>
        {
            while (q.TryClaim() is { } c)
            {
                claimed.Add(c.Name);
            }
        });
        Assert.Equal(300, claimed.Count);
        Assert.Equal(300, claimed.Distinct().Count());
    }
}
