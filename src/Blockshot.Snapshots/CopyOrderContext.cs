using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Snapshots.Cbw;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots;

/// <summary>
/// The <c>blockshot:copy-order</c> status context of a snapshot image: per chunk, whether it still
/// lives on the origin, in RAM, on disk, reads as zeros or was discarded (<see cref="CopyOrder"/>), so a
/// reader can copy chunks that pin memory first and skip what costs nothing.
/// </summary>
internal sealed class CopyOrderContext(SnapshotImage image) : BlockStatusContext
{
    /// <summary>The context's name.</summary>
    public const string ContextName = "blockshot:copy-order";

    public override string Name => ContextName;

    public override async ValueTask QueryAsync(long offset, long length, ExtentList extents)
    {
        var filter = image.Snapshot.Filter;
        var table = image.Snapshot.Table;
        var first = filter.ChunkOf(offset);
        var last = filter.ChunkOf(offset + Math.Max(length, 1) - 1);
        using (await filter.Locks.AcquireAsync(filter.ChunkOffset(first), filter.ChunkOffset(last - first + 1), shared: true).ConfigureAwait(false))
        {
            var end = offset + length;
            while (offset < end && !extents.IsFull)
            {
                var chunk = filter.ChunkOf(offset);
                var n = Math.Min(end - offset, filter.ChunkOffset(chunk + 1) - offset);
                var entry = table[chunk];
                var flags = entry switch
                {
                    ChunkTable.None => CopyOrder.Origin,
                    ChunkTable.Zero => CopyOrder.Zero,
                    ChunkTable.Discarded => CopyOrder.Discarded,
                    _ => filter.Store.Tier(ChunkTable.ToSlot(entry)),
                };
                extents.Add(n, flags);
                offset += n;
            }
        }
    }
}
