using Blockshot.Core;
using Blockshot.Core.Extents;

namespace Blockshot.Drivers.Tests;

public class MemoryNodeConformanceTests : BlockNodeConformance
{
    protected override bool TrimReadsZero => true;

    protected override ValueTask<BlockNode> CreateNodeAsync(long size) => new(new MemoryNode(size));
}

public class MemoryNodeTests
{
    [Fact]
    public async Task Storage_is_allocated_on_write_and_freed_by_whole_page_trims()
    {
        await using var node = new MemoryNode(1L << 40);
        Assert.Equal(0, node.AllocatedBytes);
        await node.WriteAsync(5L << 30, new byte[10000], IoFlags.None);
        Assert.Equal(3 * 4096, node.AllocatedBytes);
        await node.TrimAsync(5L << 30, 8192, IoFlags.None);
        Assert.Equal(4096, node.AllocatedBytes);
    }

    [Fact]
    public async Task Extents_of_a_huge_sparse_device_are_few_and_cover_it()
    {
        await using var node = new MemoryNode(1L << 40);
        await node.WriteAsync(1L << 30, new byte[] { 1 }, IoFlags.None);
        var list = new ExtentList();
        list.Reset(0, node.Size);
        await node.GetExtentsAsync(0, node.Size, list);
        Assert.Equal(3, list.Count);
        Assert.Equal(new Extent(0, 1L << 30, AllocationFlags.HoleZero), list[0]);
        Assert.Equal(new Extent(1L << 30, 4096, AllocationFlags.Data), list[1]);
        Assert.Equal(node.Size, list.End);
    }

    [Fact]
    public async Task Resize_grows_with_zeros_and_shrink_drops_the_tail()
    {
        await using var node = new MemoryNode(8192);
        await node.WriteAsync(4000, Patterns.Make(4192, 4000, 1), IoFlags.None);
        await node.ResizeAsync(6000);
        await node.ResizeAsync(1 << 20);
        var back = new byte[8192];
        await node.ReadAsync(0, back);
        Assert.Equal(Patterns.Make(2000, 4000, 1), back.AsSpan(4000, 2000).ToArray());
        Assert.True(back.AsSpan(6000).IndexOfAnyExcept((byte)0) < 0);
    }
}

public class NullNodeTests
{
    [Fact]
    public async Task Reads_zeros_discards_writes_and_reports_holes()
    {
        await using var node = new NullNode(1 << 20);
        await node.WriteAsync(0, new byte[] { 9, 9 }, IoFlags.None);
        var b = new byte[] { 1, 1 };
        await node.ReadAsync(0, b);
        Assert.Equal(new byte[2], b);
        var list = new ExtentList();
        list.Reset(0, node.Size);
        await node.GetExtentsAsync(0, node.Size, list);
        Assert.Equal(new Extent(0, 1 << 20, AllocationFlags.HoleZero), Assert.Single(list.Items.ToArray()));
    }
}
