using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots.Tests;

public class PolicyTests
{
    private static DiffStore SmallStore(long limit, DiffStoreOptions? options = null) =>
        new NodeDiffStore(new MemoryNode(1L << 30), 64 << 10, (options ?? new DiffStoreOptions()) with { InitialBytes = 64 << 10, GrowStepBytes = 64 << 10, LimitBytes = limit });

    [Fact]
    public async Task Overflow_breaks_the_snapshot_not_the_device_and_raises_events()
    {
        var store = SmallStore(4 * 65536);
        var events = new List<string>();
        store.LowSpace += (_, e) => events.Add($"low {e.UsedBytes}");
        store.Full += (_, e) => events.Add($"full {e.UsedBytes}");
        await using var rig = new Rig(store: store);
        await rig.FillAsync(1);
        var snap = await rig.TakeAsync("small");
        var failures = new List<SnapshotFailedEventArgs>();
        rig.Filter.SnapshotFailed += (_, e) => failures.Add(e);
        await rig.FillAsync(2); // 128 chunks into a 4-chunk store
        var now = await Rig.ReadAllAsync(rig.Slot);
        var expected = new byte[rig.Size];
        Patterns.Fill(expected, 0, 2);
        Assert.Equal(-1, Patterns.FirstDifference(expected, now));
        Assert.Equal(SnapshotState.Failed, snap.State);
        Assert.Contains("full", snap.FailureReason);
        Assert.Single(failures);
        var e = await Assert.ThrowsAsync<BlockException>(() => snap.Image.ReadAsync(0, new byte[1]).AsTask());
        Assert.Equal(BlockError.Io, e.Error);
        Assert.Contains(events, x => x.StartsWith("low", StringComparison.Ordinal));
        Assert.Contains(events, x => x.StartsWith("full", StringComparison.Ordinal));
        await WaitForAsync(() => store.UsedBytes == 0);
    }

    [Fact]
    public async Task Fail_write_refuses_the_write_with_enospc_and_keeps_the_snapshot_valid()
    {
        await using var rig = new Rig(store: SmallStore(2 * 65536));
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("keep", new SnapshotOptions { OnOverflow = OverflowPolicy.FailWrite });
        await rig.Slot.WriteAsync(0, new byte[131072], IoFlags.None); // fills the store exactly
        var e = await Assert.ThrowsAsync<BlockException>(() => rig.Slot.WriteAsync(4 << 20, new byte[10], IoFlags.None).AsTask());
        Assert.Equal(BlockError.NoSpace, e.Error);
        Assert.Equal(SnapshotState.Active, snap.State);
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(snap.Image)));
        var b = new byte[10];
        await rig.Slot.ReadAsync(4 << 20, b);
        Assert.Equal(before.AsSpan(4 << 20, 10).ToArray(), b);
    }

    [Fact]
    public async Task Wait_holds_the_writer_until_space_appears()
    {
        await using var rig = new Rig(store: SmallStore(2 * 65536));
        await rig.FillAsync(1);
        var snap = await rig.TakeAsync("patient", new SnapshotOptions { OnOverflow = OverflowPolicy.Wait, WaitTimeout = TimeSpan.FromSeconds(20), AfterWait = OverflowPolicy.FailWrite });
        await rig.Slot.WriteAsync(0, new byte[131072], IoFlags.None);
        var blocked = rig.Slot.WriteAsync(4 << 20, new byte[10], IoFlags.None).AsTask();
        await Task.Delay(300);
        Assert.False(blocked.IsCompleted, "the writer did not wait for space");
        await snap.Image.TrimAsync(0, 65536, IoFlags.None); // a reader frees a chunk
        await blocked.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(SnapshotState.Active, snap.State);
    }

    [Fact]
    public async Task Wait_falls_back_to_break_after_the_timeout()
    {
        await using var rig = new Rig(store: SmallStore(65536));
        await rig.FillAsync(1);
        var snap = await rig.TakeAsync("impatient", new SnapshotOptions { OnOverflow = OverflowPolicy.Wait, WaitTimeout = TimeSpan.FromMilliseconds(200), AfterWait = OverflowPolicy.BreakSnapshot });
        await rig.Slot.WriteAsync(0, new byte[65536], IoFlags.None);
        await rig.Slot.WriteAsync(1 << 20, new byte[1], IoFlags.None);
        Assert.Equal(SnapshotState.Failed, snap.State);
    }

    [Fact]
    public async Task Store_io_errors_follow_the_policy()
    {
        var faulty = new FaultyNode(new MemoryNode(1L << 30));
        var store = new NodeDiffStore(faulty, 64 << 10, new DiffStoreOptions());
        await using var rig = new Rig(store: store);
        await rig.FillAsync(1);
        var keep = await rig.TakeAsync("keep", new SnapshotOptions { OnOverflow = OverflowPolicy.FailWrite });
        faulty.FailWrites = true;
        var e = await Assert.ThrowsAsync<BlockException>(() => rig.Slot.WriteAsync(0, new byte[1], IoFlags.None).AsTask());
        Assert.Equal(BlockError.Io, e.Error);
        Assert.Equal(SnapshotState.Active, keep.State);
        await rig.DestroyAsync(keep);

        var brk = await rig.TakeAsync("break");
        await rig.Slot.WriteAsync(0, new byte[1], IoFlags.None);
        Assert.Equal(SnapshotState.Failed, brk.State);
        Assert.Contains("difference storage failed", brk.FailureReason);
    }

    [Fact]
    public async Task Origin_read_errors_during_a_copy_follow_the_policy()
    {
        var faulty = new FaultyNode(new MemoryNode(8 << 20));
        await using var rig = new Rig(origin: faulty);
        await rig.FillAsync(1);
        var keep = await rig.TakeAsync("keep", new SnapshotOptions { OnOverflow = OverflowPolicy.FailWrite });
        faulty.FailReads = true;
        var e = await Assert.ThrowsAsync<BlockException>(() => rig.Slot.WriteAsync(0, new byte[1], IoFlags.None).AsTask());
        Assert.Equal(BlockError.Io, e.Error);
        Assert.Equal(SnapshotState.Active, keep.State);
        await rig.DestroyAsync(keep);

        var brk = await rig.TakeAsync("break");
        await rig.Slot.WriteAsync(0, new byte[1], IoFlags.None); // the write itself succeeds
        Assert.Equal(SnapshotState.Failed, brk.State);
        Assert.Contains("origin", brk.FailureReason);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(25);
        }
        Assert.True(condition());
    }
}
