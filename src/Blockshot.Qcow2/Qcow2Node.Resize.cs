using System.Buffers.Binary;
using Blockshot.Core;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>
    /// Grows the image (new space reads as zeros, even over a longer backing file) or shrinks it when
    /// nothing is allocated past the new end. Sizes must be multiples of 512.
    /// </summary>
    public override async ValueTask ResizeAsync(long newSize)
    {
        CheckWritable();
        if (newSize < 0 || (newSize & 511) != 0)
        {
            Qcow2Error.Argument($"the new size must be a non-negative multiple of 512 (got {newSize})");
        }
        using (await _ranges.AcquireAsync(0, long.MaxValue).ConfigureAwait(false))
        {
            await _meta.WaitAsync().ConfigureAwait(false);
            try
            {
                CheckWritable();
                var oldSize = _size;
                if (newSize == oldSize)
                {
                    return;
                }
                if (newSize > oldSize)
                {
                    await GrowLockedAsync(oldSize, newSize).ConfigureAwait(false);
                }
                else
                {
                    await ShrinkLockedAsync(newSize).ConfigureAwait(false);
                }
                foreach (var b in _bitmaps)
                {
                    if (!b.Inconsistent)
                    {
                        await EnsureBitsAsync(b).ConfigureAwait(false);
                        b.Resize(newSize);
                        _bitmapsChanged = true;
                    }
                }
            }
            finally
            {
                _meta.Release();
            }
        }
    }

    private async ValueTask GrowLockedAsync(long oldSize, long newSize)
    {
        var needed = _g.L1EntriesFor(newSize);
        if (needed * 8 > Qcow2Constants.MaxL1Bytes)
        {
            Qcow2Error.Argument($"size {newSize} is too large for {_g.ClusterSize}-byte clusters");
        }
        await MarkDirtyIfLazyAsync().ConfigureAwait(false);
        if (needed > _l1.Length)
        {
            await GrowL1Async((int)needed).ConfigureAwait(false);
        }
        if (DataFileRaw)
        {
            _dataFile!.SetLength(newSize);
            await PreallocateIdentityAsync(oldSize, newSize).ConfigureAwait(false);
        }
        else
        {
            // Bytes past the old end inside its last cluster may hold stale data: zero them. A longer
            // backing file must not show through the new space either.
            var zeroEnd = Math.Min(newSize, Align.Up(oldSize, _g.ClusterSize));
            if (_backing is not null)
            {
                zeroEnd = Math.Max(zeroEnd, Math.Min(newSize, _backing.Size));
            }
            if (zeroEnd > oldSize)
            {
                await SetSizeAsync(newSize).ConfigureAwait(false);
                _meta.Release();
                try
                {
                    await ZeroGrownRangeAsync(oldSize, zeroEnd).ConfigureAwait(false);
                }
                finally
                {
                    await _meta.WaitAsync().ConfigureAwait(false);
                }
                return;
            }
        }
        await SetSizeAsync(newSize).ConfigureAwait(false);
    }

    /// <summary>Zeroes <c>[start, end)</c> after a grow; the caller holds every cluster but not the metadata lock.</summary>
    private async ValueTask ZeroGrownRangeAsync(long start, long end)
    {
        if (!IsV3 && _backing is not null)
        {
            await WriteZeroDataAsync(start, end).ConfigureAwait(false);
            return;
        }
        var unit = _g.ExtendedL2 ? _g.SubclusterSize : _g.ClusterSize;
        var bodyStart = Align.Up(start, unit);
        var bodyEnd = end == Size ? Align.Up(end, unit) : Align.Down(end, unit);
        if (bodyStart >= bodyEnd)
        {
            await WriteZeroDataAsync(start, end).ConfigureAwait(false);
            return;
        }
        if (start < bodyStart)
        {
            await WriteZeroDataAsync(start, bodyStart).ConfigureAwait(false);
        }
        await ZeroUnitsAsync(bodyStart, bodyEnd, ZeroMode.Zero).ConfigureAwait(false);
        if (bodyEnd < end)
        {
            await WriteZeroDataAsync(bodyEnd, end).ConfigureAwait(false);
        }
    }

    private async ValueTask ShrinkLockedAsync(long newSize)
    {
        // Refuse when anything past the new end is stored in this image.
        var firstDropped = _g.ClustersFor(newSize);
        var lastCluster = _g.ClustersFor(_size) - 1;
        for (var c = firstDropped; c <= lastCluster;)
        {
            var l1Index = _g.L1Index(c);
            var l2 = await L2TableOffsetAsync(l1Index).ConfigureAwait(false);
            var tableEnd = (long)(l1Index + 1) << _g.L2Bits;
            if (l2 == 0)
            {
                c = tableEnd;
                continue;
            }
            var entry = await GetEntryAsync(c).ConfigureAwait(false);
            var type = entry.Classify(_g.ExtendedL2, HasDataFile);
            var hasData = type is ClusterType.Normal or ClusterType.ZeroAllocated or ClusterType.Compressed
                || (_g.ExtendedL2 && entry.AllocatedMask != 0);
            if (hasData)
            {
                Qcow2Error.Refused($"cannot shrink to {newSize} bytes: data is allocated at guest offset 0x{c << _g.ClusterBits:x}");
            }
            c++;
        }
        await SetSizeAsync(newSize).ConfigureAwait(false);
        // L2 tables wholly past the end hold nothing but zero entries: release them.
        var keep = (int)_g.L1EntriesFor(newSize);
        var changed = false;
        for (var i = keep; i < _l1.Length; i++)
        {
            var l2 = await L2TableOffsetAsync(i).ConfigureAwait(false);
            if (l2 == 0)
            {
                continue;
            }
            _l1[i] = 0;
            await WriteL1EntryAsync(i).ConfigureAwait(false);
            _metadata.Remove(l2, _g.ClusterSize);
            await _refcounts.UpdateAsync(l2, _g.ClusterSize, -1).ConfigureAwait(false);
            changed = true;
        }
        if (DataFileRaw)
        {
            _dataFile!.SetLength(newSize);
        }
        if (changed)
        {
            await FlushMetadataAsync().ConfigureAwait(false);
        }
    }

    private async ValueTask SetSizeAsync(long newSize)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, (ulong)newSize);
        await WriteHeaderBytesAsync(24, bytes).ConfigureAwait(false);
        _hc.Header.Size = (ulong)newSize;
        Volatile.Write(ref _size, newSize);
    }

    /// <summary>
    /// Moves the active L1 table to a larger one: the new table is written and synced (after the
    /// refcounts that account for it), the header switched, and only then the old table freed.
    /// Under <see cref="_meta"/>.
    /// </summary>
    private async ValueTask GrowL1Async(int entries)
    {
        var bytes = (long)entries * 8;
        var offset = await _refcounts.AllocateContiguousAsync((int)_g.ClustersFor(bytes)).ConfigureAwait(false);
        var table = new byte[bytes];
        for (var i = 0; i < _l1.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(i * 8), _l1[i]);
        }
        await _refcountCache.FlushAsync().ConfigureAwait(false);
        await _file.WriteAsync(offset, table).ConfigureAwait(false);
        _file.Sync();
        var oldOffset = _l1Offset;
        var oldBytes = (long)_l1.Length * 8;
        await SwitchL1TableAsync(offset, entries).ConfigureAwait(false);
        var grown = new ulong[entries];
        Array.Copy(_l1, grown, _l1.Length);
        _l1 = grown;
        _l1Offset = offset;
        _metadata.Add(offset, bytes);
        if (oldOffset != 0 && oldBytes > 0)
        {
            _metadata.Remove(oldOffset, oldBytes);
            await _refcounts.UpdateAsync(oldOffset, oldBytes, -1).ConfigureAwait(false);
        }
    }

    /// <summary>Maps guest clusters of <c>[start, end)</c> to the same offsets of a raw data file. Under <see cref="_meta"/>.</summary>
    private async ValueTask PreallocateIdentityAsync(long start, long end)
    {
        for (var c = _g.ClusterIndex(start); c < _g.ClustersFor(end); c++)
        {
            var l2 = await EnsureL2TableAsync(_g.L1Index(c)).ConfigureAwait(false);
            var l2Index = _g.L2Index(c);
            var entries = new L2Entry[1];
            await ReadEntriesAsync(l2, l2Index, 1, entries).ConfigureAwait(false);
            if (entries[0].Classify(_g.ExtendedL2, true) == ClusterType.Unallocated)
            {
                var word = L2Entry.Copied | (ulong)(c << _g.ClusterBits);
                await WriteEntriesAsync(l2, l2Index, new[] { new L2Entry(word) }).ConfigureAwait(false);
            }
        }
    }
}
