using System.Diagnostics;
using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Filters.Fault;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots.Tests;

/// <summary>
/// EIO from the store and from the origin, injected with the product's fault filter, against each
/// overflow policy: break-snapshot, fail-write and wait.
/// </summary>
public class FaultPolicyTests
{
    private const int Chunk = 64 << 10;

    private static (DiffStore Store, FaultState Faults) FaultyStore(FaultRule rule, long limit = long.MaxValue)
    {
        var faults = new FaultState(rule);
        var node = new FaultFilter(new MemoryNode(64L << 20), faults);
        return (new NodeDiffStore(node, Chunk, new DiffStoreOptions { InitialBytes = 64L << 20, LimitBytes = limit }), faults);
    }

    private static (BlockNode Origin, FaultState Faults) FaultyOrigin(FaultRule rule)
    {
        var faults = new FaultState(rule);
        return (new FaultFilter(new MemoryNode(8 << 20), faults), faults);
    }

    [Fact]
    public async Task Break_snapshot_with_a_failing_store_fails_the_snapshot_and_the_device_keeps_working()
    {
        // The store fails its second write: the first copy lands, the second does not.
        var (store, faults) = FaultyStore(new FaultRule(FaultOps.Write, FaultError.Io, After: 1, Count: 1));
        await using var rig = new Rig(store: store);
        await rig.FillAsync(1);
        var snap = await rig.TakeAsync("brk");
        var other = await rig.TakeAsync("other"); // shares the copies; breaks with it
        var failed = new List<SnapshotFailedEventArgs>();
        rig.Filter.SnapshotFailed += (_, e) => failed.Add(e);

        await rig.Slot.WriteAsync(0, Patterns.Make(100, 0, 2), IoFlags.None);
        Assert.Equal(SnapshotState.Active, snap.State);
        await rig.Slot.WriteAsync(Chunk, Patterns.Make(100, Chunk, 2), IoFlags.None); // the store fails here
        Assert.Equal(1, faults.Injected);
        Assert.All(new[] { snap, other }, s =>
        {
            Assert.Equal(SnapshotState.Failed, s.State);
            Assert.Contains("difference storage failed", s.FailureReason);
        });
        Assert.Equal(2, failed.Count);

        // Every read of the snapshot fails with EIO, even of a chunk copied before the failure.
        foreach (var at in new long[] { 0, Chunk, 5 << 20 })
        {
            var e = await Assert.ThrowsAsync<BlockException>(() => snap.Image.ReadAsync(at, new byte[10]).AsTask());
            Assert.Equal(BlockError.Io, e.Error);
        }

        // The device took both writes and keeps taking them.
        await rig.FillAsync(3);
        var expected = new byte[rig.Size];
        Patterns.Fill(expected, 0, 3);
        Assert.Equal(-1, Patterns.FirstDifference(expected, await Rig.ReadAllAsync(rig.Slot)));
        await Waiting.UntilAsync(() => store.UsedBytes == 0, "the broken snapshots kept their storage");
    }

    [Fact]
    public async Task Break_snapshot_with_a_failing_origin_read_fails_the_snapshot_and_the_write_goes_on()
    {
        var (origin, faults) = FaultyOrigin(new FaultRule(FaultOps.Read, FaultError.Io, Offset: 3 * Chunk, Length: 1));
        await using var rig = new Rig(origin: origin);
        await rig.FillAsync(1);
        var snap = await rig.TakeAsync("brk");
        await rig.Slot.WriteAsync(3 * Chunk, Patterns.Make(10, 3 * Chunk, 2), IoFlags.None);
        Assert.True(faults.Injected >= 1);
        Assert.Equal(SnapshotState.Failed, snap.State);
        Assert.Contains("origin", snap.FailureReason);
        Assert.Equal(BlockError.Io, (await Assert.ThrowsAsync<BlockException>(() => snap.Image.ReadAsync(0, new byte[1]).AsTask())).Error);
        var back = new byte[10];
        await rig.Origin.ReadAsync(3 * Chunk + 1000, back); // outside the failing byte
        await rig.Slot.WriteAsync(4 * Chunk, back, IoFlags.None);
    }

    [Fact]
    public async Task Fail_write_with_a_failing_store_refuses_the_write_keeps_the_snapshot_and_a_retry_succeeds()
    {
        var (store, faults) = FaultyStore(new FaultRule(FaultOps.Write, FaultError.Io, Count: 1));
        await using var rig = new Rig(store: store);
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var keep = await rig.TakeAsync("keep", new SnapshotOptions { OnOverflow = OverflowPolicy.FailWrite });
        var lenient = await rig.TakeAsync("lenient"); // break-snapshot, but the refused write breaks nobody

        var data = Patterns.Make(3000, Chunk - 1000, 2);
        var e = await Assert.ThrowsAsync<BlockException>(() => rig.Slot.WriteAsync(Chunk - 1000, data, IoFlags.None).AsTask());
        Assert.Equal(BlockError.Io, e.Error);
        Assert.Equal(SnapshotState.Active, keep.State);
        Assert.Equal(SnapshotState.Active, lenient.State);
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(rig.Slot))); // nothing written

        await rig.Slot.WriteAsync(Chunk - 1000, data, IoFlags.None); // the store works again
        Assert.Equal(1, faults.Injected);
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(keep.Image)));
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(lenient.Image)));
    }

    [Fact]
    public async Task Fail_write_with_a_failing_origin_read_refuses_the_write_with_eio()
    {
        var (origin, _) = FaultyOrigin(new FaultRule(FaultOps.Read, FaultError.Io, Offset: 2 * Chunk, Length: 1, Count: 1));
        await using var rig = new Rig(origin: origin);
        await rig.FillAsync(1);
        var before = new byte[rig.Size]; // not read back: a read of chunk 2 would use up the fault
        Patterns.Fill(before, 0, 1);
        var keep = await rig.TakeAsync("keep", new SnapshotOptions { OnOverflow = OverflowPolicy.FailWrite });
        var e = await Assert.ThrowsAsync<BlockException>(() => rig.Slot.WriteAsync(2 * Chunk, new byte[5], IoFlags.None).AsTask());
        Assert.Equal(BlockError.Io, e.Error);
        Assert.Equal(SnapshotState.Active, keep.State);
        await rig.Slot.WriteAsync(2 * Chunk, new byte[5], IoFlags.None);
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(keep.Image)));
    }

    [Fact]
    public async Task Fail_write_on_overflow_refuses_with_enospc_until_a_reader_frees_space()
    {
        await using var rig = new Rig(store: new NodeDiffStore(new MemoryNode(2L * Chunk), Chunk, new DiffStoreOptions { LimitBytes = 2L * Chunk }));
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var keep = await rig.TakeAsync("keep", new SnapshotOptions { OnOverflow = OverflowPolicy.FailWrite });
        await rig.Slot.WriteAsync(0, new byte[2 * Chunk], IoFlags.None);
        for (var i = 0; i < 3; i++)
        {
            var e = await Assert.ThrowsAsync<BlockException>(() => rig.Slot.WriteZeroesAsync(10 * Chunk, 10, IoFlags.None).AsTask());
            Assert.Equal(BlockError.NoSpace, e.Error);
        }
        Assert.Equal(SnapshotState.Active, keep.State);
        await keep.Image.TrimAsync(0, Chunk, IoFlags.None);
        await rig.Slot.WriteZeroesAsync(10 * Chunk, 10, IoFlags.None);
        var rest = new byte[rig.Size - Chunk];
        await keep.Image.ReadAsync(Chunk, rest);
        Assert.Equal(-1, Patterns.FirstDifference(before.AsSpan(Chunk), rest));
    }

    [Fact]
    public async Task Wait_waits_the_whole_timeout_then_falls_back_to_fail_write()
    {
        await using var rig = new Rig(store: new NodeDiffStore(new MemoryNode(Chunk), Chunk, new DiffStoreOptions { LimitBytes = Chunk }));
        await rig.FillAsync(1);
        var snap = await rig.TakeAsync("w", new SnapshotOptions
        {
            OnOverflow = OverflowPolicy.Wait,
            WaitTimeout = TimeSpan.FromMilliseconds(600),
            AfterWait = OverflowPolicy.FailWrite,
        });
        await rig.Slot.WriteAsync(0, new byte[1], IoFlags.None);
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<BlockException>(() => rig.Slot.WriteAsync(Chunk, new byte[1], IoFlags.None).AsTask());
        Assert.Equal(BlockError.NoSpace, e.Error);
        Assert.True(clock.ElapsedMilliseconds >= 550, $"gave up after {clock.ElapsedMilliseconds} ms");
        Assert.Equal(SnapshotState.Active, snap.State);
    }

    [Fact]
    public async Task Wait_with_a_store_error_falls_back_at_once_there_being_no_space_to_wait_for()
    {
        var (store, _) = FaultyStore(new FaultRule(FaultOps.Write, FaultError.Io, Count: 1));
        await using var rig = new Rig(store: store);
        await rig.FillAsync(1);
        var snap = await rig.TakeAsync("w", new SnapshotOptions
        {
            OnOverflow = OverflowPolicy.Wait,
            WaitTimeout = TimeSpan.FromSeconds(30),
            AfterWait = OverflowPolicy.FailWrite,
        });
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<BlockException>(() => rig.Slot.WriteAsync(0, new byte[1], IoFlags.None).AsTask());
        Assert.Equal(BlockError.Io, e.Error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.Equal(SnapshotState.Active, snap.State);
    }

    [Fact]
    public async Task A_tiered_store_whose_disk_fails_makes_later_copies_follow_the_policy_and_flushes_fail()
    {
        var faults = new FaultState(new FaultRule(FaultOps.Write, FaultError.Io));
        var backing = new NodeDiffStore(new FaultFilter(new MemoryNode(64L << 20), faults), Chunk, new DiffStoreOptions());
        var tiered = new TieredDiffStore(backing, 64L * Chunk);
        await using var rig = new Rig(store: tiered);
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var keep = await rig.TakeAsync("keep", new SnapshotOptions { OnOverflow = OverflowPolicy.FailWrite });

        // The first copy lands in RAM; the flusher's write to the disk fails in the background.
        await rig.Slot.WriteAsync(0, new byte[1], IoFlags.None);
        await Waiting.UntilAsync(() => faults.Injected > 0, "the flusher never wrote the disk");
        var flush = await Assert.ThrowsAsync<BlockException>(() => tiered.FlushAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(BlockError.Io, flush.Error);

        var e = await Assert.ThrowsAsync<BlockException>(() => rig.Slot.WriteAsync(5 * Chunk, new byte[1], IoFlags.None).AsTask());
        Assert.Equal(BlockError.Io, e.Error);
        Assert.Equal(SnapshotState.Active, keep.State);
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(keep.Image))); // the RAM copy still reads
    }
}
