using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Drivers;

namespace Blockshot.Tracking.Tests;

public class TrackerTests
{
    private const int Block = 64 << 10;

    [Fact]
    public async Task Random_workloads_over_many_periods_mark_exactly_the_blocks_written()
    {
        const long Size = 32L << 20;
        await using var device = new MemoryNode(Size);
        await using var tracker = await ChangeTracker.OpenAsync(device, new TrackerOptions { BlockSize = Block });
        var rng = new Random(11);
        var written = new List<HashSet<long>> { new() }; // written[p - 1] = blocks written in period p
        var frozen = new List<FrozenMap>();
        for (var period = 1; period <= 12; period++)
        {
            for (var i = 0; i < rng.Next(5, 60); i++)
            {
                var length = rng.Next(1, 300_000);
                var offset = rng.NextInt64(0, Size - length);
                switch (rng.Next(3))
                {
                    case 0:
                        await tracker.WriteAsync(offset, new byte[length], IoFlags.None);
                        break;
                    case 1:
                        await tracker.WriteZeroesAsync(offset, length, IoFlags.None);
                        break;
                    default:
                        await tracker.TrimAsync(offset, length, IoFlags.None);
                        break;
                }
                for (var b = offset / Block; b <= (offset + length - 1) / Block; b++)
                {
                    written[^1].Add(b);
                }
            }
            frozen.Add(tracker.AdvancePeriod());
            written.Add([]);
        }
        for (var p = 1; p <= frozen.Count; p++)
        {
            for (var since = 0; since < p; since++)
            {
                var expected = new HashSet<long>();
                for (var q = since + 1; q <= p; q++)
                {
                    expected.UnionWith(written[q - 1]);
                }
                var actual = Enumerable.Range(0, (int)(Size / Block)).Where(b => frozen[p - 1].ChangedSince(b, (byte)since)).Select(b => (long)b).ToHashSet();
                Assert.True(expected.SetEquals(actual), $"snapshot {p}, since {since}: {expected.Count} expected, {actual.Count} marked");
            }
        }
    }

    [Fact]
    public async Task The_map_stays_frozen_at_the_take_while_writes_go_on_and_mark_dirty_counts()
    {
        await using var device = new MemoryNode(8 << 20);
        await using var tracker = await ChangeTracker.OpenAsync(device, new TrackerOptions { BlockSize = Block });
        await tracker.WriteAsync(0, new byte[100], IoFlags.None);
        var atTake = tracker.AdvancePeriod();
        var before = atTake.CountChangedSince(0);
        await tracker.WriteAsync(1 << 20, new byte[10 << 20 >> 4], IoFlags.None);
        await tracker.MarkDirtyAsync(5 << 20, 200_000);
        Assert.Equal(before, atTake.CountChangedSince(0));
        var now = tracker.Freeze();
        Assert.True(now.ChangedSince((5 << 20) / Block, 1));
        Assert.True(now.ChangedSince(((5 << 20) + 199_999) / Block, 1));
        Assert.False(now.ChangedSince(((5 << 20) + 200_000) / Block + 1, 1));
        Assert.Equal(2, tracker.Period);
        var info = tracker.Info();
        Assert.False(info.Persistent);
        Assert.Equal(2, info.Period);
        Assert.True(info.ChangedInPeriod > 0);
    }

    [Fact]
    public async Task A_dirty_bitmap_context_describes_changed_bytes()
    {
        await using var device = new MemoryNode(4 << 20);
        await using var tracker = await ChangeTracker.OpenAsync(device, new TrackerOptions { BlockSize = Block });
        tracker.AdvancePeriod();
        await tracker.WriteAsync(Block + 10, new byte[10], IoFlags.None);
        await tracker.WriteAsync(3 * Block, new byte[2 * Block], IoFlags.None);
        var map = tracker.AdvancePeriod();
        var context = DirtyBitmapContext.For(tracker, map, "snap2", since: 1);
        Assert.Equal("qemu:dirty-bitmap:snap2", context.Name);
        var list = new ExtentList();
        list.Reset(0, device.Size);
        await context.QueryAsync(0, device.Size, list);
        Assert.Equal([new Extent(0, Block, 0), new Extent(Block, Block, 1), new Extent(2 * Block, Block, 0), new Extent(3 * Block, 2 * Block, 1), new Extent(5 * Block, device.Size - 5 * Block, 0)], list.Items.ToArray());
    }

    [Fact]
    public async Task Wrapping_past_255_periods_starts_a_new_generation()
    {
        await using var device = new MemoryNode(1 << 20);
        await using var tracker = await ChangeTracker.OpenAsync(device, new TrackerOptions { BlockSize = Block });
        var first = tracker.Generation;
        string? reason = null;
        tracker.GenerationStarted += (_, r) => reason = r;
        for (var i = 0; i < 254; i++)
        {
            tracker.AdvancePeriod();
        }
        Assert.Equal(255, tracker.Period);
        Assert.Equal(first, tracker.Generation);
        tracker.AdvancePeriod();
        Assert.NotEqual(first, tracker.Generation);
        Assert.Equal(1, tracker.Period);
        Assert.Contains("wrapped", reason);
    }

    [Fact]
    public async Task An_in_place_resize_starts_a_new_generation_with_a_map_of_the_new_size()
    {
        using var dir = new TempDir();
        await using var device = new MemoryNode(16 << 20);
        var options = new TrackerOptions { BlockSize = 4096, SidecarPath = dir.File("disk.cbt") };
        var tracker = await ChangeTracker.OpenAsync(device, options);
        try
        {
            string? reason = null;
            tracker.GenerationStarted += (_, r) => reason = r;
            await tracker.WriteAsync(0, new byte[4096], IoFlags.None);
            var first = tracker.Generation;

            await tracker.ResizeAsync(24 << 20);
            Assert.Equal(24L << 20, device.Size);
            Assert.Equal(24L << 20, tracker.DeviceSize);
            Assert.NotEqual(first, tracker.Generation);
            Assert.Equal($"the device was resized from {16 << 20} to {24 << 20} bytes", reason);
            Assert.Equal(0, tracker.Info().ChangedBlocks);
            Assert.Equal(6144, tracker.Freeze().BlockCount);

            // The new map covers the new end (a second map page), and it persists: a reopen keeps it.
            await tracker.WriteAsync((24 << 20) - 4096, new byte[4096], IoFlags.None);
            await tracker.CloseAsync();
            await tracker.DisposeAsync();
            var second = tracker.Generation;
            tracker = await ChangeTracker.OpenAsync(device, options);
            Assert.Equal(second, tracker.Generation);
            Assert.True(tracker.Freeze().ChangedSince(6143, 0));
            Assert.Equal(1, tracker.Info().ChangedBlocks);

            // A shrink drops the old generation with its marks.
            await tracker.ResizeAsync(1 << 20);
            Assert.NotEqual(second, tracker.Generation);
            Assert.Equal(256, tracker.Freeze().BlockCount);
            await Assert.ThrowsAsync<BlockException>(() => tracker.MarkDirtyAsync(1 << 20, 4096).AsTask());
        }
        finally
        {
            await tracker.DisposeAsync();
        }
    }
}
