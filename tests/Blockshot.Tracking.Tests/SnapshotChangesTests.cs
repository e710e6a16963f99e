using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Drivers;

namespace Blockshot.Tracking.Tests;

public class SnapshotChangesTests
{
    private const int Block = 64 << 10;

    [Fact]
    public async Task Saved_changes_read_back_exactly_and_a_torn_or_foreign_file_reads_as_nothing()
    {
        using var dir = new TempDir();
        await using var device = new MemoryNode(600L << 20); // more than one map page of blocks
        await using var tracker = await ChangeTracker.OpenAsync(device, new TrackerOptions { BlockSize = Block });
        await tracker.WriteAsync(0, new byte[10], IoFlags.None);
        tracker.AdvancePeriod();
        long[] blocks = [3, 4, 4095, 4096, 9000];
        foreach (var b in blocks)
        {
            await tracker.WriteAsync(b * Block, new byte[Block], IoFlags.None);
        }
        var changes = SnapshotChanges.AtTake(tracker, tracker.AdvancePeriod(), since: 1);
        await tracker.WriteAsync(20 * Block, new byte[1], IoFlags.None); // after the take: not in the set
        var path = dir.File("take");
        changes.Save(path, tracker.Generation);

        var loaded = SnapshotChanges.Load(path, tracker, tracker.Generation, since: 1);
        Assert.NotNull(loaded);
        Assert.Equal(SnapshotChangesKind.Exact, loaded.Kind);
        Assert.Equal(blocks, Enumerable.Range(0, 9600).Where(b => loaded.IsChanged(b)).Select(b => (long)b).ToArray());
        Assert.Equal(5, loaded.CountChanged());

        Assert.Null(SnapshotChanges.Load(path, tracker, Guid.NewGuid(), since: 1));
        Assert.Null(SnapshotChanges.Load(path, tracker, tracker.Generation, since: 2));
        Assert.Null(SnapshotChanges.Load(dir.File("missing"), tracker, tracker.Generation, since: 1));
        var bytes = File.ReadAllBytes(path);
        bytes[100] ^= 1;
        File.WriteAllBytes(path, bytes);
        Assert.Null(SnapshotChanges.Load(path, tracker, tracker.Generation, since: 1));
    }

    [Fact]
    public async Task Image_writes_join_the_set_and_everything_covers_every_byte()
    {
        await using var device = new MemoryNode(8 << 20);
        await using var tracker = await ChangeTracker.OpenAsync(device, new TrackerOptions { BlockSize = Block });
        await tracker.WriteAsync(2 * Block, new byte[1], IoFlags.None);
        var changes = SnapshotChanges.AtTake(tracker, tracker.AdvancePeriod(), since: 0);
        changes.MarkWritten((5 * Block) + 1, Block); // blocks 5 and 6
        var context = new DirtyBitmapContext("b", changes);
        var list = new ExtentList();
        list.Reset(0, device.Size);
        await context.QueryAsync(0, device.Size, list);
        Assert.Equal([new Extent(0, 2 * Block, 0), new Extent(2 * Block, Block, 1), new Extent(3 * Block, 2 * Block, 0), new Extent(5 * Block, 2 * Block, 1), new Extent(7 * Block, device.Size - (7 * Block), 0)], list.Items.ToArray());

        var everything = new DirtyBitmapContext("all", SnapshotChanges.Everything(tracker));
        list.Reset(Block, device.Size - Block);
        await everything.QueryAsync(Block, device.Size - Block, list);
        Assert.Equal([new Extent(Block, device.Size - Block, 1)], list.Items.ToArray());
    }
}
