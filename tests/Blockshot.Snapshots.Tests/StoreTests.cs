using System.Diagnostics;
using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Drivers;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots.Tests;

public class StoreTests
{
    [Fact]
    public async Task A_node_store_grows_in_steps_up_to_its_limit_and_reuses_freed_slots()
    {
        var node = new MemoryNode(0);
        await using var store = new NodeDiffStore(node, 65536, new DiffStoreOptions { InitialBytes = 2 * 65536, GrowStepBytes = 3 * 65536, LimitBytes = 6 * 65536 });
        var slots = new List<long>();
        for (var i = 0; i < 6; i++)
        {
            slots.Add(await store.AllocateAsync());
        }
        Assert.Equal([0, 1, 2, 3, 4, 5], slots);
        Assert.Equal(6 * 65536, node.Size);
        Assert.Equal(-1, await store.AllocateAsync());
        await store.FreeAsync(3);
        Assert.Equal(3, await store.AllocateAsync());
    }

    [Fact]
    public async Task A_node_store_grows_ahead_in_the_background_so_allocations_do_not_wait_while_space_is_left()
    {
        // Steps of 4 chunks; the medium's resize waits on a gate. The grow starts once fewer than 2 chunks
        // are left, and the allocations that still fit go on while it waits.
        var gated = new GatedResizeNode(new MemoryNode(0));
        await using var store = new NodeDiffStore(gated, 65536, new DiffStoreOptions { InitialBytes = 4 * 65536, GrowStepBytes = 4 * 65536 });
        gated.Gate.SetResult(); // the initial size
        Assert.Equal(0, await store.AllocateAsync());
        Assert.Equal(1, await store.AllocateAsync());
        gated.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Assert.Equal(2, await store.AllocateAsync()); // 1 left after it: the next step starts growing
        await gated.ResizeStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var fourth = store.AllocateAsync();
        Assert.True(fourth.IsCompletedSuccessfully, "an allocation with space left waited for the grow");
        Assert.Equal(3, await fourth);
        var fifth = store.AllocateAsync().AsTask();
        await Task.Delay(50);
        Assert.False(fifth.IsCompleted, "an allocation with no space left did not wait for the grow");
        gated.Gate.SetResult();
        Assert.Equal(4, await fifth.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(8 * 65536, store.CapacityBytes);
    }

    [Fact]
    public async Task Preparing_a_store_grows_its_first_step_before_any_writer_asks_and_a_tiered_one_grows_on()
    {
        var options = new DiffStoreOptions { InitialBytes = 4 * 65536, GrowStepBytes = 4 * 65536 };
        await using var plain = new NodeDiffStore(new MemoryNode(0), 65536, options);
        await plain.PrepareAsync();
        Assert.Equal(4 * 65536, plain.CapacityBytes);
        Assert.Equal(0, plain.UsedBytes);

        // The RAM tier is taken and touched at once, and recycled: copies never rent fresh memory.
        using var pool = new BufferPool();
        var backing = new NodeDiffStore(new MemoryNode(0), 65536, options);
        var tiered = new TieredDiffStore(backing, 8 * 65536, pool);
        await tiered.PrepareAsync();
        Assert.InRange(pool.Outstanding, 8, 9); // and the flusher's scratch chunk, once it starts
        Assert.True(backing.CapacityBytes >= 4 * 65536);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (backing.CapacityBytes < 8 * 65536 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
        Assert.Equal(8 * 65536, backing.CapacityBytes);
        for (var round = 0; round < 2; round++)
        {
            for (var i = 0; i < 8; i++)
            {
                var slot = await tiered.AllocateAsync();
                await tiered.WriteAsync(slot, 0, Patterns.Make(65536, slot * 65536L, round));
            }
            await tiered.FlushAsync();
            Assert.Equal(8 + 1, pool.Outstanding);
        }
        var back = new byte[65536];
        await tiered.ReadAsync(9, 0, back);
        Assert.Equal(-1, Patterns.FirstDifference(Patterns.Make(65536, 9 * 65536L, 1), back));
        await tiered.DisposeAsync();
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public async Task A_backing_store_behind_a_ram_tier_grows_the_rams_worth_ahead_in_the_background()
    {
        // Steps of 4 chunks and a RAM tier of 16: one allocation sets the backing store growing, step after
        // step, until 16 chunks are free, so writers that fit in the RAM never wait for the medium to grow.
        var backing = new NodeDiffStore(new MemoryNode(0), 65536, new DiffStoreOptions { InitialBytes = 4 * 65536, GrowStepBytes = 4 * 65536 });
        await using var tiered = new TieredDiffStore(backing, 16 * 65536);
        Assert.Equal(16 * 65536, backing.KeepAheadBytes);
        Assert.Equal(0, await tiered.AllocateAsync());
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (backing.CapacityBytes < 17 * 65536 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
        Assert.Equal(20 * 65536, backing.CapacityBytes);
        await using var plain = new NodeDiffStore(new MemoryNode(0), 65536, new DiffStoreOptions { InitialBytes = 4 * 65536, GrowStepBytes = 4 * 65536 });
        Assert.Equal(0, await plain.AllocateAsync());
        await Task.Delay(100);
        Assert.Equal(4 * 65536, plain.CapacityBytes); // 3 free of a 4-chunk step: not low
    }

    [Fact]
    public async Task A_store_that_cannot_grow_is_full_and_the_snapshot_breaks_with_the_reason_while_the_write_goes_on()
    {
        var store = new NodeDiffStore(new FailingResizeNode(new MemoryNode(0)), 65536, new DiffStoreOptions());
        await using var rig = new Rig(size: 1 << 20, store: store);
        await rig.FillAsync(1); // data, so the first write's chunk needs a slot
        var snap = await rig.TakeAsync("grow-fails");
        await rig.Slot.WriteAsync(0, new byte[] { 7 }, IoFlags.None);
        Assert.Equal(SnapshotState.Failed, snap.State);
        Assert.Contains("growing it failed", snap.FailureReason);
        Assert.Contains("injected resize error", snap.FailureReason);
        var back = new byte[1];
        await rig.Origin.ReadAsync(0, back);
        Assert.Equal(7, back[0]);
    }

    private sealed class FailingResizeNode(BlockNode next) : FilterNode(next, Ownership.Dispose)
    {
        public override string Kind => "failing-resize";

        public override ValueTask ResizeAsync(long newSize) =>
            ValueTask.FromException(new BlockException(BlockError.Io, "injected resize error"));
    }

    private sealed class GatedResizeNode(BlockNode next) : FilterNode(next, Ownership.Dispose)
    {
        public TaskCompletionSource Gate { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource ResizeStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override string Kind => "gated";

        public override async ValueTask ResizeAsync(long newSize)
        {
            if (newSize > 4 * 65536)
            {
                ResizeStarted.TrySetResult();
            }
            await Gate.Task;
            ObjectDisposedException.ThrowIf(Disposed, this); // as a closed file descriptor would
            await Next.ResizeAsync(newSize);
        }

        public bool Disposed { get; private set; }

        protected override ValueTask DisposeCoreAsync()
        {
            Disposed = true;
            return base.DisposeCoreAsync();
        }
    }

    [Fact]
    public async Task Disposing_a_store_waits_for_its_background_growth_before_closing_the_medium()
    {
        var gated = new GatedResizeNode(new MemoryNode(0));
        var store = new NodeDiffStore(gated, 65536, new DiffStoreOptions { InitialBytes = 4 * 65536, GrowStepBytes = 4 * 65536 });
        gated.Gate.SetResult(); // the initial size
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(i, await store.AllocateAsync());
        }
        gated.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await gated.ResizeStarted.Task.WaitAsync(TimeSpan.FromSeconds(30)); // the next step is under way
        var disposing = store.DisposeAsync().AsTask();
        await Task.Delay(50);
        Assert.False(gated.Disposed, "the medium was closed under a growth step");
        gated.Gate.SetResult();
        await disposing.WaitAsync(TimeSpan.FromSeconds(30)); // no ObjectDisposedException from the step
        Assert.True(gated.Disposed);
    }

    [Fact]
    public async Task A_fixed_size_node_store_uses_the_whole_device()
    {
        await using var store = new NodeDiffStore(new NullNode(10 * 65536 + 100), 65536, new DiffStoreOptions());
        for (var i = 0; i < 10; i++)
        {
            Assert.True(await store.AllocateAsync() >= 0);
        }
        Assert.Equal(-1, await store.AllocateAsync());
    }

    [Fact]
    public async Task A_multi_store_moves_to_the_next_store_when_one_is_full()
    {
        var a = new NodeDiffStore(new MemoryNode(0), 65536, new DiffStoreOptions { LimitBytes = 2 * 65536 });
        var b = new NodeDiffStore(new MemoryNode(0), 65536, new DiffStoreOptions { LimitBytes = 65536 });
        await using var multi = new MultiDiffStore([a, b]);
        var s1 = await multi.AllocateAsync();
        var s2 = await multi.AllocateAsync();
        var s3 = await multi.AllocateAsync();
        Assert.Equal(-1, await multi.AllocateAsync());
        var data = Patterns.Make(65536, 0, 3);
        await multi.WriteAsync(s3, 0, data);
        var back = new byte[65536];
        await multi.ReadAsync(s3, 0, back);
        Assert.Equal(data, back);
        Assert.Equal(1, b.UsedBytes / 65536);
        Assert.NotEqual(s1, s2);
    }

    [Fact]
    public async Task A_tiered_store_absorbs_writes_at_memory_speed_while_ram_lasts()
    {
        var slow = new FaultyNode(new MemoryNode(0)) { WriteDelay = TimeSpan.FromMilliseconds(100) };
        var backing = new NodeDiffStore(new ResizableFaulty(slow), 65536, new DiffStoreOptions());
        await using var tiered = new TieredDiffStore(backing, 16 * 65536);
        var clock = Stopwatch.StartNew();
        var slots = new List<long>();
        for (var i = 0; i < 16; i++)
        {
            var slot = await tiered.AllocateAsync();
            slots.Add(slot);
            await tiered.WriteAsync(slot, 0, Patterns.Make(65536, slot * 65536, 1));
        }
        Assert.True(clock.ElapsedMilliseconds < 1000, $"16 writes into RAM took {clock.ElapsedMilliseconds} ms");
        Assert.Equal(CopyOrder.Ram, tiered.Tier(slots[^1]));
        await tiered.FlushAsync();
        Assert.Equal(0, tiered.RamChunks);
        Assert.Equal(CopyOrder.Disk, tiered.Tier(slots[0]));
        foreach (var slot in slots)
        {
            var back = new byte[65536];
            await tiered.ReadAsync(slot, 0, back);
            Assert.Equal(-1, Patterns.FirstDifference(Patterns.Make(65536, slot * 65536, 1), back));
        }
    }

    [Fact]
    public async Task A_snapshot_over_a_tiered_store_with_a_slow_disk_stays_correct()
    {
        var slow = new FaultyNode(new MemoryNode(0)) { WriteDelay = TimeSpan.FromMilliseconds(5) };
        var tiered = new TieredDiffStore(new NodeDiffStore(new ResizableFaulty(slow), 65536, new DiffStoreOptions()), 32 * 65536);
        await using var rig = new Rig(size: 8 << 20, store: tiered);
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("t");
        await rig.FillAsync(2);
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(snap.Image)));
        await tiered.FlushAsync();
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(snap.Image)));
    }

    /// <summary>FaultyNode over a resizable node, passing resizes through.</summary>
    private sealed class ResizableFaulty(FaultyNode inner) : FilterNode(inner, Ownership.Dispose)
    {
        public override string Kind => "slow";
    }
}
