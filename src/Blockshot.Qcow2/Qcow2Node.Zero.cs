using Blockshot.Core;
using Blockshot.Qcow2.Format;
using Blockshot.Qcow2.Internal;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    private enum ZeroMode
    {
        /// <summary>Write-zeroes keeping preallocated clusters.</summary>
        Zero,

        /// <summary>Write-zeroes that may deallocate.</summary>
        ZeroUnmap,

        /// <summary>Trim: the range's content becomes unspecified (reads zeros on version 3 images).</summary>
        Discard,

        /// <summary>Make empty: entries become unallocated, so the range reads from the backing file again.</summary>
        Deallocate,
    }

    /// <summary>
    /// Zeroes through metadata where it can: zero clusters (version 3), zero subclusters (extended L2),
    /// or deallocation (version 2 without a backing file). Unaligned edges are written as zero data,
    /// unless <see cref="IoFlags.FastZero"/> is set and they do not already read as zeros.
    /// </summary>
    public override async ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
    {
        CheckWritable();
        if (length <= 0)
        {
            return;
        }
        var end = offset + length;
        var fast = (flags & IoFlags.FastZero) != 0;
        var lockStart = _g.ClusterStart(offset);
        using (await _ranges.AcquireAsync(lockStart, Align.Up(end, _g.ClusterSize) - lockStart).ConfigureAwait(false))
        {
            if (DataFileRaw)
            {
                await ZeroRawDataFileAsync(offset, length, fast).ConfigureAwait(false);
                MarkBitmapsDirty(offset, length);
                return;
            }
            var metadataZero = IsV3 || _backing is null;
            if (!metadataZero)
            {
                if (fast)
                {
                    BlockThrow.NotSupported("fast zeroing of a version 2 image with a backing file");
                }
                await WriteZeroDataAsync(offset, end).ConfigureAwait(false);
                MarkBitmapsDirty(offset, length);
                return;
            }
            var unit = _g.ExtendedL2 ? _g.SubclusterSize : _g.ClusterSize;
            var bodyStart = Align.Up(offset, unit);
            var bodyEnd = Align.Down(end, unit);
            if (end == Size && Align.Up(end, unit) != end && bodyStart < end)
            {
                // The last partial unit of the image may be zeroed whole.
                bodyEnd = Align.Up(end, unit);
            }
            if (bodyStart >= bodyEnd)
            {
                bodyStart = bodyEnd = end;
            }
            if (fast)
            {
                if ((offset < bodyStart && !await ReadsAsZeroAsync(offset, Math.Min(bodyStart, end)).ConfigureAwait(false))
                    || (bodyEnd < end && bodyEnd >= bodyStart && !await ReadsAsZeroAsync(Math.Max(bodyEnd, offset), end).ConfigureAwait(false)))
                {
                    BlockThrow.NotSupported("fast zeroing of a partial cluster holding data");
                }
            }
            if (offset < bodyStart)
            {
                await WriteZeroDataAsync(offset, Math.Min(bodyStart, end)).ConfigureAwait(false);
            }
            if (bodyStart < bodyEnd)
            {
                await ZeroUnitsAsync(bodyStart, Math.Min(bodyEnd, Align.Up(Size, unit)),
                    (flags & IoFlags.MayTrim) != 0 ? ZeroMode.ZeroUnmap : ZeroMode.Zero).ConfigureAwait(false);
            }
            if (bodyEnd < end && bodyEnd >= offset)
            {
                await WriteZeroDataAsync(Math.Max(bodyEnd, offset), end).ConfigureAwait(false);
            }
            MarkBitmapsDirty(offset, length);
        }
        if ((flags & IoFlags.Fua) != 0)
        {
            await FlushAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Deallocates whole clusters (or subclusters) of the range; partial ones are left alone.</summary>
    public override async ValueTask TrimAsync(long offset, long length, IoFlags flags)
    {
        CheckWritable();
        if (length <= 0 || DataFileRaw)
        {
            return;
        }
        var end = offset + length;
        var unit = _g.ExtendedL2 ? _g.SubclusterSize : _g.ClusterSize;
        var start = Align.Up(offset, unit);
        var stop = end == Size ? Align.Up(end, unit) : Align.Down(end, unit);
        if (start >= stop)
        {
            return;
        }
        var lockStart = _g.ClusterStart(start);
        using (await _ranges.AcquireAsync(lockStart, Align.Up(stop, _g.ClusterSize) - lockStart).ConfigureAwait(false))
        {
            await ZeroUnitsAsync(start, stop, ZeroMode.Discard).ConfigureAwait(false);
            MarkBitmapsDirty(offset, length);
        }
        if ((flags & IoFlags.Fua) != 0)
        {
            await FlushAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Writes zero data over <c>[pos, end)</c> through the write path (the caller holds the range lock).</summary>
    private async ValueTask WriteZeroDataAsync(long pos, long end)
    {
        while (pos < end)
        {
            var n = (int)Math.Min(end - pos, ZeroBuffer.Length);
            var done = 0;
            while (done < n)
            {
                done += await WriteStepAsync(pos + done, new WriteData(ZeroBuffer[done..n])).ConfigureAwait(false);
            }
            pos += n;
        }
    }

    /// <summary>True when <c>[pos, end)</c> (inside one cluster) already reads as zeros without looking at data.</summary>
    private async ValueTask<bool> ReadsAsZeroAsync(long pos, long end)
    {
        await _meta.WaitAsync().ConfigureAwait(false);
        try
        {
            while (pos < end)
            {
                var run = await LookupAsync(pos, end).ConfigureAwait(false);
                var zero = run.Kind == RunKind.Zero || (run.Kind == RunKind.Unallocated && (_backing is null || _backing.Size <= pos));
                if (!zero)
                {
                    return false;
                }
                pos += run.Length;
            }
            return true;
        }
        finally
        {
            _meta.Release();
        }
    }

    private async ValueTask ZeroRawDataFileAsync(long offset, long length, bool fast)
    {
        if (_dataFile!.ZeroRange(offset, length))
        {
            return;
        }
        if (fast)
        {
            BlockThrow.NotSupported("fast zeroing of a raw external data file");
        }
        var zeros = ZeroBuffer;
        while (length > 0)
        {
            var n = (int)Math.Min(length, zeros.Length);
            await _dataFile.WriteAsync(offset, zeros[..n]).ConfigureAwait(false);
            offset += n;
            length -= n;
        }
    }

    /// <summary>Zeroes or discards unit-aligned <c>[start, end)</c> through L2 entries, one L2 table at a time.</summary>
    private async ValueTask ZeroUnitsAsync(long start, long end, ZeroMode mode)
    {
        var pos = start;
        while (pos < end)
        {
            var freed = new List<long>();
            var fallback = new List<(long From, long To)>();
            long next;
            await _meta.WaitAsync().ConfigureAwait(false);
            try
            {
                CheckWritable();
                next = await ZeroInTableAsync(pos, end, mode, freed, fallback).ConfigureAwait(false);
                if (_refcounts.QuarantineCount > 65536)
                {
                    await FlushMetadataAsync().ConfigureAwait(false);
                }
            }
            finally
            {
                _meta.Release();
            }
            if (mode != ZeroMode.Zero)
            {
                foreach (var offset in freed)
                {
                    _file.PunchHole(offset, _g.ClusterSize);
                }
            }
            if (mode is ZeroMode.Zero or ZeroMode.ZeroUnmap)
            {
                // Parts of compressed clusters cannot be zeroed through subcluster bits: write zeros.
                foreach (var (from, to) in fallback)
                {
                    await WriteZeroDataAsync(from, Math.Min(to, Size)).ConfigureAwait(false);
                }
            }
            pos = next;
        }
    }

    /// <summary>Zeroes the part of <c>[pos, end)</c> inside one L2 table; returns where it stopped. Under <see cref="_meta"/>.</summary>
    private async ValueTask<long> ZeroInTableAsync(long pos, long end, ZeroMode mode, List<long> freed, List<(long From, long To)> fallback)
    {
        var guestCluster = pos >> _g.ClusterBits;
        var l1Index = _g.L1Index(guestCluster);
        var tableEnd = (long)(l1Index + 1) * _g.L2Coverage;
        var stop = Math.Min(end, tableEnd);
        var existing = await L2TableOffsetAsync(l1Index).ConfigureAwait(false);
        if (existing == 0 && (_backing is null || mode == ZeroMode.Deallocate))
        {
            return stop; // Nothing allocated and nothing below: the range already reads as zeros.
        }
        await MarkDirtyIfLazyAsync().ConfigureAwait(false);
        var l2 = await EnsureL2TableAsync(l1Index).ConfigureAwait(false);
        var l2Index = _g.L2Index(guestCluster);
        var lastCluster = (stop - 1) >> _g.ClusterBits;
        var n = (int)(lastCluster - guestCluster + 1);
        var entries = new L2Entry[n];
        await ReadEntriesAsync(l2, l2Index, n, entries).ConfigureAwait(false);
        var updated = (L2Entry[])entries.Clone();
        var toFree = new List<L2Entry>();
        for (var i = 0; i < n; i++)
        {
            var clusterStart = (guestCluster + i) << _g.ClusterBits;
            var old = entries[i];
            if (!EntryIsValid(old, clusterStart))
            {
                throw await SignalCorruptionAsync($"invalid L2 entry {old} (L2 offset: 0x{l2:x}, L2 index: 0x{l2Index + i:x})").ConfigureAwait(false);
            }
            var from = Math.Max(pos, clusterStart);
            var to = Math.Min(stop, clusterStart + _g.ClusterSize);
            var whole = from == clusterStart && to == clusterStart + _g.ClusterSize;
            var (entry, free) = ZeroedEntry(old, clusterStart, from, to, whole, mode);
            if (!whole && old.IsCompressed)
            {
                fallback.Add((from, to));
            }
            updated[i] = entry;
            if (free)
            {
                toFree.Add(old);
            }
        }
        await WriteEntriesAsync(l2, l2Index, updated).ConfigureAwait(false);
        foreach (var old in toFree)
        {
            await FreeEntryAsync(old, freed).ConfigureAwait(false);
        }
        return stop;
    }

    /// <summary>The entry after zeroing <c>[from, to)</c> of its cluster, and whether the old host storage is released.</summary>
    private (L2Entry Entry, bool Free) ZeroedEntry(L2Entry old, long clusterStart, long from, long to, bool whole, ZeroMode mode)
    {
        var type = old.Classify(_g.ExtendedL2, HasDataFile);
        if (mode == ZeroMode.Deallocate)
        {
            return (default, type is ClusterType.Normal or ClusterType.ZeroAllocated or ClusterType.Compressed);
        }
        var hasHost = type is ClusterType.Normal or ClusterType.ZeroAllocated;
        var keepHost = mode == ZeroMode.Zero && hasHost && (old.IsCopied || HasDataFile);
        if (!_g.ExtendedL2)
        {
            if (type == ClusterType.Unallocated && _backing is null && (mode == ZeroMode.Discard || !IsV3))
            {
                return (old, false);
            }
            if (!IsV3)
            {
                return (default, type != ClusterType.Unallocated);
            }
            if (type == ClusterType.ZeroPlain)
            {
                return (old, false);
            }
            if (keepHost)
            {
                return (new L2Entry(old.Word | L2Entry.ZeroFlag), false);
            }
            if (type == ClusterType.Unallocated && _backing is null)
            {
                return (old, false);
            }
            return (new L2Entry(L2Entry.ZeroFlag), type != ClusterType.Unallocated);
        }
        var mask = whole ? uint.MaxValue : Geometry.SubclusterMask(_g.Subcluster(from), _g.Subcluster(to - 1) + 1);
        if (type == ClusterType.Compressed)
        {
            // A compressed cluster has no subclusters: it is zeroed (or dropped) whole; partial
            // ranges were routed to the data path by the caller's alignment or are left for trims.
            return whole ? (new L2Entry(0, L2Entry.AllZeroes), true) : (old, false);
        }
        if (type == ClusterType.Unallocated)
        {
            if (_backing is null && old.ZeroMask == 0 && mode == ZeroMode.Discard)
            {
                return (old, false);
            }
            return (new L2Entry(old.Word, old.Bitmap | ((ulong)mask << 32)), false);
        }
        if (whole && !keepHost)
        {
            return (new L2Entry(0, L2Entry.AllZeroes), true);
        }
        var alloc = old.AllocatedMask & ~mask;
        var zero = old.ZeroMask | mask;
        return (new L2Entry(old.Word, ((ulong)zero << 32) | alloc), false);
    }
}
