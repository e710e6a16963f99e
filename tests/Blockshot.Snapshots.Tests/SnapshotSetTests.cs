using Blockshot.Core;
using Blockshot.Drivers;

namespace Blockshot.Snapshots.Tests;

public class SnapshotSetTests
{
    private static SnapshotTakeRequest Request(Rig rig, string name) =>
        new(rig.Slot, _ => rig.Filter, name, new SnapshotOptions());

    [Fact]
    public async Task A_set_takes_every_device_at_one_instant_between_freeze_and_thaw()
    {
        await using var a = new Rig();
        await using var b = new Rig();
        await a.FillAsync(1);
        await b.FillAsync(2);
        var beforeA = await Rig.ReadAllAsync(a.Slot);
        var beforeB = await Rig.ReadAllAsync(b.Slot);
        var log = new List<string>();
        var hooks = new SnapshotHooks
        {
            Freeze = _ => { log.Add($"freeze suspended={a.Slot.IsSuspended}"); return Task.CompletedTask; },
            WhileSuspended = () => { log.Add($"armed suspended={a.Slot.IsSuspended && b.Slot.IsSuspended}"); return default; },
            Thaw = _ => { log.Add($"thaw suspended={a.Slot.IsSuspended || b.Slot.IsSuspended}"); return Task.CompletedTask; },
        };
        var snaps = await SnapshotSet.TakeAsync([Request(a, "set"), Request(b, "set")], hooks);
        Assert.Equal(["freeze suspended=False", "armed suspended=True", "thaw suspended=False"], log);
        await a.FillAsync(3);
        await b.FillAsync(4);
        Assert.Equal(-1, Patterns.FirstDifference(beforeA, await Rig.ReadAllAsync(snaps[0].Image)));
        Assert.Equal(-1, Patterns.FirstDifference(beforeB, await Rig.ReadAllAsync(snaps[1].Image)));
        Assert.Same(a.Filter, a.Slot.Current);
    }

    [Fact]
    public async Task A_failing_freeze_hook_aborts_with_nothing_suspended_and_no_snapshot()
    {
        await using var a = new Rig();
        var thawed = false;
        var hooks = new SnapshotHooks
        {
            Freeze = _ => throw new InvalidOperationException("fsfreeze: device busy"),
            Thaw = _ => { thawed = true; return Task.CompletedTask; },
        };
        await Assert.ThrowsAsync<InvalidOperationException>(() => SnapshotSet.TakeAsync([Request(a, "x")], hooks));
        Assert.False(a.Slot.IsSuspended);
        Assert.Empty(a.Filter.Snapshots);
        Assert.Same(a.Origin, a.Slot.Current);
        Assert.False(thawed, "thaw ran although the freeze never succeeded");
    }

    [Fact]
    public async Task A_hook_that_hangs_times_out_and_the_thaw_still_runs()
    {
        await using var a = new Rig();
        var thawed = false;
        var hooks = new SnapshotHooks
        {
            Timeout = TimeSpan.FromMilliseconds(200),
            Freeze = _ => Task.CompletedTask,
            WhileSuspended = () => new ValueTask(Task.Delay(Timeout.Infinite)),
            Thaw = _ => { thawed = true; return Task.CompletedTask; },
        };
        await Assert.ThrowsAsync<TimeoutException>(() => SnapshotSet.TakeAsync([Request(a, "x")], hooks));
        Assert.True(thawed);
        Assert.False(a.Slot.IsSuspended);
        Assert.Empty(a.Filter.Snapshots);
        Assert.Same(a.Origin, a.Slot.Current);

        var slowFreeze = new SnapshotHooks { Timeout = TimeSpan.FromMilliseconds(200), Freeze = ct => Task.Delay(Timeout.Infinite, ct) };
        await Assert.ThrowsAsync<TimeoutException>(() => SnapshotSet.TakeAsync([Request(a, "y")], slowFreeze));
        Assert.False(a.Slot.IsSuspended);
    }

    [Fact]
    public async Task A_device_that_cannot_drain_aborts_the_set_and_resumes_the_others()
    {
        await using var a = new Rig();
        var stuckNode = new StuckNode(new MemoryNode(8 << 20));
        await using var b = new Rig(origin: stuckNode);
        var stuckRead = b.Slot.ReadAsync(0, new byte[1]).AsTask();
        await stuckNode.Entered.Task;
        var hooks = new SnapshotHooks { SuspendTimeout = TimeSpan.FromMilliseconds(200) };
        await Assert.ThrowsAsync<TimeoutException>(() => SnapshotSet.TakeAsync([Request(a, "x"), Request(b, "x")], hooks));
        Assert.False(a.Slot.IsSuspended);
        Assert.False(b.Slot.IsSuspended);
        Assert.Empty(a.Filter.Snapshots);
        stuckNode.Release.SetResult();
        await stuckRead;
        await a.Slot.WriteAsync(0, new byte[1], IoFlags.None);
    }

    private sealed class StuckNode(BlockNode next) : FilterNode(next, Ownership.Dispose)
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override string Kind => "stuck";

        public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
        {
            Entered.TrySetResult();
            await Release.Task;
            await Next.ReadAsync(offset, buffer);
        }
    }
}
