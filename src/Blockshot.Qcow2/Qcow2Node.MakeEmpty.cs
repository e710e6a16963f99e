using Blockshot.Core;

namespace Blockshot.Qcow2;

// Emptying the active layer (after a commit), shrinking with data, and importing bitmap contents.
public sealed partial class Qcow2Node
{
    /// <summary>
    /// Deallocates every cluster of the active layer, freeing its host storage: afterwards the image reads
    /// entirely from its backing file (or as zeros without one). Clusters shared with internal snapshots
    /// stay with the snapshots. What a commit does to the image it committed.
    /// </summary>
    public async ValueTask MakeEmptyAsync()
    {
        CheckWritable();
        if (DataFileRaw)
        {
            Qcow2Error.Unsupported("an image with a raw external data file cannot be emptied");
        }
        var end = Align.Up(Size, _g.ClusterSize);
        using (await _ranges.AcquireAsync(0, long.MaxValue).ConfigureAwait(false))
        {
            await ZeroUnitsAsync(0, end, ZeroMode.Deallocate).ConfigureAwait(false);
            MarkBitmapsDirty(0, Size);
        }
        await FlushAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Shrinks the image to <paramref name="newSize"/> (a multiple of 512), discarding whatever it stores
    /// past the new end, as the reference tool's <c>resize --shrink</c> does; growing is
    /// <see cref="ResizeAsync"/>. Nothing may write past the new end meanwhile.
    /// </summary>
    public async ValueTask ShrinkAsync(long newSize)
    {
        CheckWritable();
        var from = Align.Up(newSize, _g.ClusterSize);
        var to = Align.Up(Size, _g.ClusterSize);
        if (newSize >= 0 && newSize < Size && from < to && !DataFileRaw)
        {
            using (await _ranges.AcquireAsync(0, long.MaxValue).ConfigureAwait(false))
            {
                await ZeroUnitsAsync(from, to, ZeroMode.Deallocate).ConfigureAwait(false);
            }
        }
        await ResizeAsync(newSize).ConfigureAwait(false);
    }

    /// <summary>
    /// Sets the bits of bitmap <paramref name="name"/> that cover <paramref name="ranges"/> (guest byte
    /// ranges), as merging a bitmap of another image into this one does.
    /// </summary>
    public ValueTask MarkBitmapDirtyAsync(string name, IReadOnlyList<(long Offset, long Length)> ranges)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        return BitmapOpAsync(name, allowInconsistent: false, b =>
        {
            foreach (var (offset, length) in ranges)
            {
                b.SetRange(offset, length);
            }
        });
    }
}
