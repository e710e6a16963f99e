namespace Blockshot.Tracking;

/// <summary>
/// The coarse layer of the sidecar: for each region of tracking blocks, the latest period whose marks
/// are durable for the whole region. The first change of a period anywhere in a region makes the whole
/// region's mark durable, so the next first changes in that region need no flush of their own. What the
/// sidecar holds for a block is the larger of its own mark and its region's: a superset of the map in
/// memory, which stays exact. One byte per region; replaced, never cleared, when a generation starts.
/// </summary>
internal sealed class DurableRegions
{
    private readonly byte[] _marks;
    private readonly int _shift;
    private readonly long _blockCount;

    /// <param name="blockCount">Tracking blocks of the device.</param>
    /// <param name="regionShift">Log2 of the blocks per region (0: a region is one block).</param>
    public DurableRegions(long blockCount, int regionShift)
    {
        _shift = regionShift;
        _blockCount = blockCount;
        _marks = new byte[(blockCount + (1L << regionShift) - 1) >> regionShift];
    }

    /// <summary>Bytes of memory the marks take.</summary>
    public long MemoryBytes => _marks.Length;

    /// <summary>
    /// Raises the regions of blocks <c>[first, last]</c> to <paramref name="period"/>, adding the sidecar
    /// pages that must be written to <paramref name="pages"/>. Returns false when every region already held
    /// the period: its mark is durable, or queued for a commit the caller can wait for. Call under the
    /// tracker's commit lock.
    /// </summary>
    public bool Cover(long first, long last, byte period, HashSet<long> pages)
    {
        var raised = false;
        for (var r = first >> _shift; r <= last >> _shift; r++)
        {
            if (_marks[r] >= period)
            {
                continue;
            }
            Volatile.Write(ref _marks[r], period);
            raised = true;
            var regionFirst = r << _shift;
            var regionLast = regionFirst + (1L << _shift) - 1;
            for (var p = regionFirst >> ChangeMap.PageShift; p <= regionLast >> ChangeMap.PageShift; p++)
            {
                pages.Add(p);
            }
        }
        return raised;
    }

    /// <summary>Raises each block of sidecar page <paramref name="page"/> (its bytes in <paramref name="bytes"/>) to its region's mark.</summary>
    public void Render(long page, Span<byte> bytes)
    {
        var firstBlock = page << ChangeMap.PageShift;
        var end = (int)Math.Clamp(_blockCount - firstBlock, 0, ChangeMap.PageSize);
        for (var i = 0; i < end;)
        {
            var r = (firstBlock + i) >> _shift;
            var run = (int)Math.Min(end - i, ((r + 1) << _shift) - (firstBlock + i));
            var mark = Volatile.Read(ref _marks[r]);
            if (mark != 0)
            {
                foreach (ref var b in bytes.Slice(i, run))
                {
                    b = Math.Max(b, mark);
                }
            }
            i += run;
        }
    }
}
