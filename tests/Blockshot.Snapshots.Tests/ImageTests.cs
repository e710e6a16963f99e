using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots.Tests;

public class ImageTests
{
    [Fact]
    public async Task Writes_to_a_writable_image_go_to_storage_and_never_to_the_origin()
    {
        await using var rig = new Rig();
        await rig.FillAsync(1);
        var origin = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("w", new SnapshotOptions { Writable = true });
        var expected = (byte[])origin.Clone();
        var rng = new Random(5);
        var offsets = new long[] { 0, 1, 65535, 65536 - 700, 3 * 65536 + 10, rig.Size - 1000 };
        foreach (var at in offsets)
        {
            var n = (int)Math.Min(rng.Next(1, 150_000), rig.Size - at);
            var data = Patterns.Make(n, at, (int)at);
            await snap.Image.WriteAsync(at, data, IoFlags.None);
            data.CopyTo(expected, at);
        }
        await snap.Image.WriteZeroesAsync(2 << 20, 200_000, IoFlags.None);
        expected.AsSpan(2 << 20, 200_000).Clear();
        Assert.Equal(-1, Patterns.FirstDifference(expected, await Rig.ReadAllAsync(snap.Image)));
        Assert.Equal(-1, Patterns.FirstDifference(origin, await Rig.ReadAllAsync(rig.Slot)));

        // The origin moves on; the image keeps its own writes and the take's data elsewhere.
        await rig.FillAsync(2);
        Assert.Equal(-1, Patterns.FirstDifference(expected, await Rig.ReadAllAsync(snap.Image)));
    }

    [Fact]
    public async Task Reads_across_chunks_in_any_slot_order_return_the_take()
    {
        // Chunks copied in an order that puts runs of them in consecutive slots, in reverse slots, and
        // next to chunks still on the origin; reads that start and end inside chunks must still see the take.
        await using var rig = new Rig();
        await rig.FillAsync(1);
        var taken = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("runs");
        var chunks = new[] { 10, 11, 12, 13, 30, 29, 28, 27, 50, 52, 51, 53, 70, 90, 91 };
        foreach (var chunk in chunks)
        {
            await rig.Slot.WriteAsync((chunk * 65536L) + 100, new byte[] { 1, 2, 3 }, IoFlags.None);
        }
        var rng = new Random(9);
        for (var i = 0; i < 200; i++)
        {
            var at = rng.NextInt64(0, rig.Size - 1);
            var n = (int)Math.Min(rng.Next(1, 6 * 65536), rig.Size - at);
            var back = new byte[n];
            await snap.Image.ReadAsync(at, back);
            Assert.Equal(-1, Patterns.FirstDifference(taken.AsSpan((int)at, n), back));
        }
        Assert.Equal(-1, Patterns.FirstDifference(taken, await Rig.ReadAllAsync(snap.Image)));
    }

    [Fact]
    public async Task A_read_only_image_refuses_writes()
    {
        await using var rig = new Rig();
        var snap = await rig.TakeAsync("ro");
        var e = await Assert.ThrowsAsync<BlockException>(() => snap.Image.WriteAsync(0, new byte[1], IoFlags.None).AsTask());
        Assert.Equal(BlockError.ReadOnly, e.Error);
        Assert.False(snap.Image.Capabilities.CanWrite);
        Assert.True(snap.Image.Capabilities.Has(NodeFeatures.Trim));
    }

    [Fact]
    public async Task Trim_on_the_image_frees_storage_and_later_reads_of_it_fail()
    {
        await using var rig = new Rig();
        await rig.FillAsync(1);
        var snap = await rig.TakeAsync("once");
        await rig.FillAsync(2);
        var used = rig.Store.UsedBytes;
        Assert.Equal(rig.Size, used);
        await snap.Image.TrimAsync(65536 + 100, 4 * 65536, IoFlags.None); // chunks 2..4 whole; 1 and 5 partial
        Assert.Equal(used - (3 * 65536), rig.Store.UsedBytes);
        var e = await Assert.ThrowsAsync<BlockException>(() => snap.Image.ReadAsync(2 * 65536, new byte[10]).AsTask());
        Assert.Equal(BlockError.Io, e.Error);
        Assert.Contains("discarded", e.Message);
        await snap.Image.ReadAsync(65536, new byte[65536]);   // partial chunk kept
        await snap.Image.ReadAsync(5 * 65536, new byte[65536]);
    }

    [Fact]
    public async Task Discarded_chunks_are_not_copied_again_when_the_origin_changes()
    {
        await using var rig = new Rig();
        await rig.FillAsync(1);
        var snap = await rig.TakeAsync("once");
        await snap.Image.TrimAsync(0, rig.Size, IoFlags.None);
        await rig.FillAsync(2);
        Assert.Equal(0, rig.Store.UsedBytes);
        Assert.Equal(0, snap.CopiedChunks);
    }

    [Fact]
    public async Task Extents_show_the_origin_as_it_was_at_the_take_and_copy_order_says_where_chunks_live()
    {
        await using var rig = new Rig();
        await rig.Slot.WriteAsync(1 << 20, Patterns.Make(65536, 1 << 20, 1), IoFlags.None);
        var snap = await rig.TakeAsync("s");
        await rig.Slot.WriteAsync(1 << 20, new byte[] { 9 }, IoFlags.None);     // copied: data
        await rig.Slot.WriteAsync(3 << 20, new byte[] { 9 }, IoFlags.None);     // was a hole: zero chunk

        var list = new ExtentList();
        list.Reset(0, rig.Size);
        await snap.Image.GetExtentsAsync(0, rig.Size, list);
        Assert.Equal(rig.Size, list.End);
        foreach (var e in list.Items)
        {
            var isData = e.Offset < (1 << 20) + 65536 && e.End > 1 << 20;
            Assert.Equal(isData ? AllocationFlags.Data : AllocationFlags.HoleZero, e.Flags & AllocationFlags.HoleZero);
        }

        var order = snap.Image.FindStatusContext("blockshot:copy-order")!;
        list.Reset(0, rig.Size);
        await order.QueryAsync(0, rig.Size, list);
        Assert.Contains(list.Items.ToArray(), e => e.Offset == 1 << 20 && e.Flags == CopyOrder.Disk);
        Assert.Contains(list.Items.ToArray(), e => e.Offset == 3 << 20 && e.Flags == CopyOrder.Zero);
        Assert.Equal(CopyOrder.Origin, list[0].Flags);
    }
}

/// <summary>The conformance suite against a writable snapshot image of an all-zero device.</summary>
public class WritableImageConformanceTests : BlockNodeConformance
{
    private readonly List<Rig> _rigs = [];

    protected override bool TrimReadsZero => false; // whole chunks read as zero, partial ones keep their data

    protected override async ValueTask<BlockNode> CreateNodeAsync(long size)
    {
        var rig = new Rig(size: size);
        _rigs.Add(rig);
        var snap = await rig.TakeAsync("c", new SnapshotOptions { Writable = true });
        return snap.Image;
    }

    protected override async ValueTask CleanupAsync()
    {
        foreach (var rig in _rigs)
        {
            await rig.DisposeAsync();
        }
    }
}
