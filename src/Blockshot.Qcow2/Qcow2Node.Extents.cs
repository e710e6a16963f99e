using Blockshot.Core;
using Blockshot.Core.Extents;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>
    /// Describes what reads of the range return: data (allocated here or in the backing chain), or
    /// hole+zero for zero clusters and for ranges no image of the chain allocates.
    /// </summary>
    public override async ValueTask GetExtentsAsync(long offset, long length, ExtentList extents)
    {
        var end = offset + length;
        var pos = offset;
        while (pos < end && !extents.IsFull)
        {
            var run = await LookupLockedAsync(pos, end).ConfigureAwait(false);
            switch (run.Kind)
            {
                case RunKind.Data:
                case RunKind.Compressed:
                    extents.Add(run.Length, AllocationFlags.Data);
                    break;
                case RunKind.Zero:
                    extents.Add(run.Length, AllocationFlags.HoleZero);
                    break;
                default:
                    if (!await AddBackingExtentsAsync(pos, run.Length, extents).ConfigureAwait(false))
                    {
                        return;
                    }
                    break;
            }
            pos += run.Length;
        }
    }

    private async ValueTask<MappedRun> LookupLockedAsync(long pos, long end)
    {
        await _meta.WaitAsync().ConfigureAwait(false);
        try
        {
            return await LookupAsync(pos, end).ConfigureAwait(false);
        }
        finally
        {
            _meta.Release();
        }
    }

    /// <summary>Appends the backing node's extents for an unallocated run; false when the backing stopped early.</summary>
    private async ValueTask<bool> AddBackingExtentsAsync(long pos, long length, ExtentList extents)
    {
        var backing = _backing;
        var inBacking = backing is null ? 0 : Math.Clamp(backing.Size - pos, 0, length);
        if (inBacking > 0)
        {
            var sub = new ExtentList();
            sub.Reset(pos, inBacking);
            await backing!.GetExtentsAsync(pos, inBacking, sub).ConfigureAwait(false);
            foreach (var e in sub.Items)
            {
                extents.Add(e.Length, e.Flags);
            }
            if (sub.End < pos + inBacking)
            {
                return false;
            }
        }
        if (inBacking < length)
        {
            extents.Add(length - inBacking, AllocationFlags.HoleZero);
        }
        return true;
    }

    /// <summary>
    /// Appends allocation depths for the range: 1 where this image allocates (data or zero clusters),
    /// n where the (n−1)-th backing image does, 0 where no image of the chain does. Past the end of a
    /// shorter backing image the zeros read there count as that image's, as the reference server
    /// reports them.
    /// </summary>
    internal async ValueTask QueryAllocationDepthAsync(long offset, long length, ExtentList extents, uint depth)
    {
        var end = offset + length;
        var pos = offset;
        while (pos < end && !extents.IsFull)
        {
            var run = await LookupLockedAsync(pos, end).ConfigureAwait(false);
            if (run.Kind != RunKind.Unallocated)
            {
                extents.Add(run.Length, depth);
            }
            else if (_backing is Qcow2Node q)
            {
                var inBacking = Math.Clamp(q.Size - pos, 0, run.Length);
                if (inBacking > 0)
                {
                    var sub = new ExtentList();
                    sub.Reset(pos, inBacking);
                    await q.QueryAllocationDepthAsync(pos, inBacking, sub, depth + 1).ConfigureAwait(false);
                    foreach (var e in sub.Items)
                    {
                        extents.Add(e.Length, e.Flags);
                    }
                    if (sub.End < pos + inBacking)
                    {
                        return;
                    }
                }
                extents.Add(run.Length - inBacking, depth + 1);
            }
            else if (_backing is not null)
            {
                extents.Add(run.Length, depth + 1);
            }
            else
            {
                extents.Add(run.Length, 0);
            }
            pos += run.Length;
        }
    }

    private sealed class AllocationDepthContext(Qcow2Node node) : BlockStatusContext
    {
        public override string Name => "qemu:allocation-depth";

        public override ValueTask QueryAsync(long offset, long length, ExtentList extents) =>
            node.QueryAllocationDepthAsync(offset, length, extents, 1);
    }
}
