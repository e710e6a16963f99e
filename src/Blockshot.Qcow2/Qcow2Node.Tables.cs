using System.Buffers.Binary;
using Blockshot.Core;
using Blockshot.Qcow2.Format;
using Blockshot.Qcow2.Internal;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    private void CheckWritable()
    {
        if (_readOnly)
        {
            BlockThrow.ReadOnly(Path);
        }
        if (_closed)
        {
            BlockThrow.Error(BlockError.Shutdown, $"qcow2: {Path} is closed");
        }
        if (_corrupt)
        {
            Qcow2Error.Refused("Image is corrupt; writes are refused (run a check with repair)");
        }
    }

    /// <summary>Reads <paramref name="count"/> L2 entries starting at <paramref name="l2Index"/> of a table. Under <see cref="_meta"/>.</summary>
    private async ValueTask ReadEntriesAsync(long l2Offset, int l2Index, int count, L2Entry[] dest)
    {
        var i = 0;
        while (i < count)
        {
            var index = l2Index + i;
            var slice = await _l2Cache.GetAsync(l2Offset + (long)(index / _g.SliceEntries) * _g.SliceBytes).ConfigureAwait(false);
            try
            {
                for (var k = index % _g.SliceEntries; k < _g.SliceEntries && i < count; k++, i++)
                {
                    dest[i] = L2Entry.Read(slice.Data, k, _g.ExtendedL2);
                }
            }
            finally
            {
                MetadataCache.Release(slice);
            }
        }
    }

    /// <summary>Writes L2 entries into the cache (marking slices dirty). Under <see cref="_meta"/>.</summary>
    private async ValueTask WriteEntriesAsync(long l2Offset, int l2Index, ReadOnlyMemory<L2Entry> entries)
    {
        var i = 0;
        var count = entries.Length;
        while (i < count)
        {
            var index = l2Index + i;
            var slice = await _l2Cache.GetAsync(l2Offset + (long)(index / _g.SliceEntries) * _g.SliceBytes).ConfigureAwait(false);
            try
            {
                for (var k = index % _g.SliceEntries; k < _g.SliceEntries && i < count; k++, i++)
                {
                    entries.Span[i].Write(slice.Data, k, _g.ExtendedL2);
                }
                _l2Cache.MarkDirty(slice);
            }
            finally
            {
                MetadataCache.Release(slice);
            }
        }
    }

    /// <summary>Writes L1 entry <paramref name="index"/> to disk and syncs. Under <see cref="_meta"/>.</summary>
    private async ValueTask WriteL1EntryAsync(int index)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, _l1[index]);
        await _file.WriteAsync(_l1Offset + (long)index * 8, bytes).ConfigureAwait(false);
        _file.Sync();
    }

    /// <summary>
    /// Returns the offset of a writable (refcount one) L2 table for L1 entry <paramref name="l1Index"/>,
    /// allocating a zeroed one or copying a shared one. The new table is written and synced (after the
    /// refcounts that account for it) before the L1 entry points at it; a shared old table loses one
    /// reference only after. Under <see cref="_meta"/>.
    /// </summary>
    private async ValueTask<long> EnsureL2TableAsync(int l1Index)
    {
        if (l1Index >= _l1.Length)
        {
            Qcow2Error.Corrupt($"guest offset beyond the L1 table (index {l1Index}, size {_l1.Length})");
        }
        var l1e = _l1[l1Index];
        var old = await L2TableOffsetAsync(l1Index).ConfigureAwait(false);
        if (old != 0 && (l1e & L1Entry.Copied) != 0)
        {
            return old;
        }
        var table = new byte[_g.ClusterSize];
        if (old != 0)
        {
            for (var s = 0; s < _g.ClusterSize; s += _g.SliceBytes)
            {
                var slice = await _l2Cache.GetAsync(old + s).ConfigureAwait(false);
                slice.Data.CopyTo(table, s);
                MetadataCache.Release(slice);
            }
        }
        var fresh = await _refcounts.AllocateContiguousAsync(1).ConfigureAwait(false);
        await _l2Cache.WriteThroughAsync(fresh, table).ConfigureAwait(false);
        _file.Sync();
        _l1[l1Index] = L1Entry.Copied | (ulong)fresh;
        await WriteL1EntryAsync(l1Index).ConfigureAwait(false);
        _metadata.Add(fresh, _g.ClusterSize);
        if (old != 0)
        {
            _metadata.Remove(old, _g.ClusterSize);
            await _refcounts.UpdateAsync(old, _g.ClusterSize, -1).ConfigureAwait(false);
        }
        return fresh;
    }

    /// <summary>Releases the host storage an old L2 entry held (after the entry was replaced). Under <see cref="_meta"/>.</summary>
    private async ValueTask FreeEntryAsync(L2Entry old, List<long>? freed = null)
    {
        if (HasDataFile)
        {
            return;
        }
        switch (old.Classify(_g.ExtendedL2, false))
        {
            case ClusterType.Normal:
            case ClusterType.ZeroAllocated:
                await _refcounts.UpdateAsync(old.HostOffset, _g.ClusterSize, -1, freed).ConfigureAwait(false);
                break;
            case ClusterType.Compressed:
                var d = CompressedDescriptor.Decode(old.Word, _g.ClusterBits);
                await _refcounts.UpdateAsync(d.HostOffset, d.ByteLength, -1).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>Reads guest bytes (inside one cluster) as <paramref name="entry"/> describes them.</summary>
    private async ValueTask ReadFromEntryAsync(L2Entry entry, long guestOffset, Memory<byte> dest)
    {
        var clusterStart = _g.ClusterStart(guestOffset);
        var p = guestOffset;
        var end = guestOffset + dest.Length;
        while (p < end)
        {
            var (kind, host, unitEnd) = Classify(entry, p, clusterStart);
            if (kind == (RunKind)(-1))
            {
                Qcow2Error.Corrupt($"invalid L2 entry {entry} for guest cluster 0x{clusterStart:x}");
            }
            var n = (int)(Math.Min(unitEnd, end) - p);
            await ReadRunAsync(new MappedRun(kind, n, host, entry), p, dest.Slice((int)(p - guestOffset), n)).ConfigureAwait(false);
            p += n;
        }
    }

    /// <summary>True when the entry's units are all valid (no corrupt bitmap, aligned offsets).</summary>
    private bool EntryIsValid(L2Entry entry, long clusterStart)
    {
        var type = entry.Classify(_g.ExtendedL2, HasDataFile);
        if (type == ClusterType.Compressed)
        {
            return !HasDataFile;
        }
        if (type is ClusterType.Normal or ClusterType.ZeroAllocated && (entry.HostOffset & _g.ClusterMask) != 0)
        {
            return false;
        }
        if (type == ClusterType.Normal && HasDataFile && entry.HostOffset != clusterStart)
        {
            return false;
        }
        if (_g.ExtendedL2)
        {
            if ((entry.AllocatedMask & entry.ZeroMask) != 0)
            {
                return false;
            }
            if (type == ClusterType.Unallocated && entry.AllocatedMask != 0)
            {
                return false;
            }
        }
        return true;
    }
}
