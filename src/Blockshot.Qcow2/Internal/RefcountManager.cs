using System.Buffers.Binary;
using Blockshot.Core;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2.Internal;

/// <summary>
/// Host cluster bookkeeping: the in-memory refcount table, refcount blocks through their cache, cluster
/// and byte allocation, and growth of the table. Every call happens under the image's metadata lock.
/// <para>
/// Crash order. A new refcount block is written and synced before the table entry that points at it;
/// a grown table is written and synced before the header switches to it, and the old table is freed
/// only after. Increases set "L2 depends on refcounts" so no L2 entry reaches the disk before the
/// refcount that accounts for it; decreases set "refcounts depend on L2" so a refcount never drops on
/// disk while an L2 entry there still uses the cluster. Clusters freed since the last metadata flush are
/// quarantined (not reused) until that flush, because the L2 entry that released them may not be on disk
/// yet and reusing them for data would overwrite what the old entry still maps.
/// </para>
/// </summary>
internal sealed class RefcountManager
{
    private readonly ImageFile _file;
    private readonly Geometry _g;
    private readonly MetadataCache _blocks;
    private readonly MetadataCache _l2;
    private readonly MetadataRegions _metadata;
    private readonly Func<long, int, ValueTask> _switchTable;
    private readonly HashSet<long> _quarantine = [];
    private long _freeHint = 1;
    private long _compressedCursor;

    public RefcountManager(ImageFile file, Geometry geometry, MetadataCache blocks, MetadataCache l2, MetadataRegions metadata,
        ulong[] table, long tableOffset, int tableClusters, Func<long, int, ValueTask> switchTable)
    {
        _file = file;
        _g = geometry;
        _blocks = blocks;
        _l2 = l2;
        _metadata = metadata;
        Table = table;
        TableOffset = tableOffset;
        TableClusters = tableClusters;
        _switchTable = switchTable;
    }

    /// <summary>Refcount table entries (raw, reserved bits included).</summary>
    public ulong[] Table { get; private set; }

    public long TableOffset { get; private set; }

    public int TableClusters { get; private set; }

    /// <summary>Lazy refcounts: skip the ordering between refcount and L2 writes (the image is marked dirty).</summary>
    public bool Lazy { get; set; }

    /// <summary>Clusters freed since the last metadata flush.</summary>
    public int QuarantineCount => _quarantine.Count;

    /// <summary>The refcount cache.</summary>
    public MetadataCache Cache => _blocks;

    /// <summary>Called after every cache has been flushed and synced: freed clusters become reusable.</summary>
    public void ClearQuarantine()
    {
        foreach (var c in _quarantine)
        {
            _freeHint = Math.Min(_freeHint, c);
        }
        _quarantine.Clear();
    }

    /// <summary>Restarts the free-cluster search from the start of the file (after external changes).</summary>
    public void ResetHint()
    {
        _freeHint = 1;
        _compressedCursor = 0;
    }

    /// <summary>Switches to a refcount structure written elsewhere (after a rebuild); cached blocks are dropped.</summary>
    public void ReplaceTable(ulong[] table, long offset, int clusters)
    {
        Table = table;
        TableOffset = offset;
        TableClusters = clusters;
        _blocks.Clear();
        _quarantine.Clear();
        ResetHint();
    }

    /// <summary>Offset of refcount block <paramref name="blockIndex"/>, 0 when absent.</summary>
    public long BlockOffset(long blockIndex)
    {
        if (blockIndex >= Table.Length)
        {
            return 0;
        }
        var offset = (long)(Table[blockIndex] & RefcountTableEntry.OffsetMask);
        if (offset != 0 && (offset & _g.ClusterMask) != 0)
        {
            Qcow2Error.Corrupt($"refcount block offset 0x{offset:x} unaligned (reftable index 0x{blockIndex:x})");
        }
        return offset;
    }

    /// <summary>The refcount of host cluster <paramref name="cluster"/>.</summary>
    public async ValueTask<ulong> GetAsync(long cluster)
    {
        var block = BlockOffset(cluster >> _g.RefcountBlockBits);
        if (block == 0)
        {
            return 0;
        }
        var entry = await _blocks.GetAsync(block).ConfigureAwait(false);
        try
        {
            return RefcountBlock.Get(entry.Data, (int)(cluster & (_g.RefcountsPerBlock - 1)), _g.RefcountOrder);
        }
        finally
        {
            MetadataCache.Release(entry);
        }
    }

    /// <summary>
    /// Allocates up to <paramref name="wanted"/> contiguous clusters (at least one) with refcount 1;
    /// returns the offset and the count obtained.
    /// </summary>
    public async ValueTask<(long Offset, int Count)> AllocateAsync(int wanted)
    {
        while (true)
        {
            var (start, count) = await FindFreeRunAsync(wanted, exact: false).ConfigureAwait(false);
            if (await EnsureBlocksAsync(start, count).ConfigureAwait(false))
            {
                continue;
            }
            await UpdateAsync(start << _g.ClusterBits, (long)count << _g.ClusterBits, +1).ConfigureAwait(false);
            _freeHint = start + count;
            return (start << _g.ClusterBits, count);
        }
    }

    /// <summary>Allocates exactly <paramref name="count"/> contiguous clusters with refcount 1.</summary>
    public async ValueTask<long> AllocateContiguousAsync(int count)
    {
        while (true)
        {
            var (start, got) = await FindFreeRunAsync(count, exact: true).ConfigureAwait(false);
            if (await EnsureBlocksAsync(start, got).ConfigureAwait(false))
            {
                continue;
            }
            await UpdateAsync(start << _g.ClusterBits, (long)got << _g.ClusterBits, +1).ConfigureAwait(false);
            if (start == _freeHint)
            {
                _freeHint = start + got;
            }
            return start << _g.ClusterBits;
        }
    }

    /// <summary>
    /// Allocates <paramref name="length"/> bytes (less than a cluster) for compressed data, packing pieces
    /// into a partly used cluster whose refcount counts each piece.
    /// </summary>
    public async ValueTask<long> AllocateBytesAsync(int length)
    {
        var cursor = _compressedCursor;
        if (cursor != 0 && _g.InCluster(cursor) != 0 && _g.ClusterSize - _g.InCluster(cursor) >= length)
        {
            await UpdateAsync(cursor, 1, +1).ConfigureAwait(false);
            _compressedCursor = AdvanceCursor(cursor + length);
            return cursor;
        }
        var offset = await AllocateContiguousAsync(1).ConfigureAwait(false);
        _compressedCursor = AdvanceCursor(offset + length);
        return offset;
    }

    private long AdvanceCursor(long next) => _g.InCluster(next) == 0 ? 0 : next;

    /// <summary>
    /// Adds <paramref name="delta"/> to the refcount of every cluster <c>[offset, offset + length)</c>
    /// touches. Clusters whose count reaches zero are dropped from the caches, quarantined and, when
    /// <paramref name="freed"/> is given, listed there.
    /// </summary>
    public async ValueTask UpdateAsync(long offset, long length, long delta, List<long>? freed = null)
    {
        if (length <= 0 || delta == 0)
        {
            return;
        }
        if (delta < 0 && !Lazy)
        {
            await _blocks.SetDependencyAsync(_l2).ConfigureAwait(false);
        }
        var first = offset >> _g.ClusterBits;
        var last = (offset + length - 1) >> _g.ClusterBits;
        var c = first;
        while (c <= last)
        {
            var blockIndex = c >> _g.RefcountBlockBits;
            var blockOffset = BlockOffset(blockIndex);
            if (blockOffset == 0)
            {
                Qcow2Error.Corrupt($"refcount block for cluster 0x{c:x} is missing");
            }
            var entry = await _blocks.GetAsync(blockOffset).ConfigureAwait(false);
            try
            {
                var blockEnd = (blockIndex + 1) << _g.RefcountBlockBits;
                for (; c <= last && c < blockEnd; c++)
                {
                    var index = (int)(c & (_g.RefcountsPerBlock - 1));
                    var old = RefcountBlock.Get(entry.Data, index, _g.RefcountOrder);
                    ulong value;
                    if (delta > 0)
                    {
                        if (_g.RefcountMax - old < (ulong)delta)
                        {
                            throw new BlockException(BlockError.Overflow,
                                $"qcow2: refcount of cluster 0x{c:x} would exceed {_g.RefcountMax} (refcount_bits={1 << _g.RefcountOrder})");
                        }
                        value = old + (ulong)delta;
                    }
                    else
                    {
                        if (old < (ulong)-delta)
                        {
                            Qcow2Error.Corrupt($"refcount of cluster 0x{c:x} would drop below zero");
                        }
                        value = old - (ulong)-delta;
                    }
                    RefcountBlock.Set(entry.Data, index, _g.RefcountOrder, value);
                    if (value == 0)
                    {
                        OnFreed(c, freed);
                    }
                }
                _blocks.MarkDirty(entry);
            }
            finally
            {
                MetadataCache.Release(entry);
            }
        }
        if (delta > 0 && !Lazy)
        {
            await _l2.SetDependencyAsync(_blocks).ConfigureAwait(false);
        }
    }

    private void OnFreed(long cluster, List<long>? freed)
    {
        _quarantine.Add(cluster);
        if (cluster < _freeHint)
        {
            _freeHint = Math.Max(1, cluster);
        }
        var offset = cluster << _g.ClusterBits;
        if (_compressedCursor != 0 && _g.ClusterStart(_compressedCursor) == offset)
        {
            _compressedCursor = 0;
        }
        _l2.Drop(offset, _g.ClusterSize);
        _blocks.Drop(offset, _g.ClusterSize);
        freed?.Add(offset);
    }

    private async ValueTask<bool> IsFreeAsync(long cluster)
    {
        if (_quarantine.Contains(cluster))
        {
            return false;
        }
        if (await GetAsync(cluster).ConfigureAwait(false) != 0)
        {
            return false;
        }
        if (_metadata.Contains(cluster))
        {
            Qcow2Error.Corrupt($"cluster 0x{cluster << _g.ClusterBits:x} holds metadata but has refcount 0; refusing to allocate it");
        }
        return true;
    }

    private async ValueTask<(long Start, int Count)> FindFreeRunAsync(int wanted, bool exact)
    {
        var c = Math.Max(1, _freeHint);
        while (true)
        {
            // Skip whole blocks quickly when they are absent (all free) or when the cluster is used.
            if (!await IsFreeAsync(c).ConfigureAwait(false))
            {
                c++;
                continue;
            }
            var count = 1;
            while (count < wanted && await IsFreeAsync(c + count).ConfigureAwait(false))
            {
                count++;
            }
            if (exact && count < wanted)
            {
                c += count;
                continue;
            }
            if (c > _freeHint && !exact)
            {
                // Used clusters lie between the hint and c: remember where free space begins.
                _freeHint = c;
            }
            return (c, count);
        }
    }

    /// <summary>Makes sure refcount blocks exist for the clusters; returns true when it had to create any.</summary>
    private async ValueTask<bool> EnsureBlocksAsync(long start, int count)
    {
        var firstBlock = start >> _g.RefcountBlockBits;
        var lastBlock = (start + count - 1) >> _g.RefcountBlockBits;
        var created = false;
        for (var b = firstBlock; b <= lastBlock; b++)
        {
            if (BlockOffset(b) == 0)
            {
                await CreateBlockAsync(b).ConfigureAwait(false);
                created = true;
            }
        }
        return created;
    }

    private async ValueTask CreateBlockAsync(long blockIndex)
    {
        if (blockIndex >= Table.Length)
        {
            await GrowTableAsync(blockIndex).ConfigureAwait(false);
            return;
        }
        // Every cluster the missing block would describe is free; the block takes the first of them
        // and counts itself.
        var rangeStart = blockIndex << _g.RefcountBlockBits;
        var cluster = Math.Max(1, rangeStart);
        while (_metadata.Contains(cluster))
        {
            cluster++;
        }
        if (cluster >= rangeStart + _g.RefcountsPerBlock)
        {
            Qcow2Error.Corrupt("no room for a refcount block");
        }
        var data = new byte[_g.ClusterSize];
        RefcountBlock.Set(data, (int)(cluster - rangeStart), _g.RefcountOrder, 1);
        var offset = cluster << _g.ClusterBits;
        await _file.WriteAsync(offset, data).ConfigureAwait(false);
        _file.Sync();
        Table[blockIndex] = (ulong)offset;
        var entryBytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(entryBytes, (ulong)offset);
        await _file.WriteAsync(TableOffset + blockIndex * 8, entryBytes).ConfigureAwait(false);
        _file.Sync();
        _metadata.Add(offset, _g.ClusterSize);
        var entry = await _blocks.GetEmptyAsync(offset, data).ConfigureAwait(false);
        MetadataCache.Release(entry);
    }

    /// <summary>
    /// Grows the refcount table so it can hold block <paramref name="neededBlock"/>. The new table and
    /// the refcount blocks describing it are placed past everything the old table covers.
    /// </summary>
    private async ValueTask GrowTableAsync(long neededBlock)
    {
        var oldEntries = Table.Length;
        var fileEnd = _g.ClustersFor(_file.Length);
        var areaStart = Math.Max((long)oldEntries << _g.RefcountBlockBits, fileEnd);
        var newEntries = Math.Max(neededBlock + 1, oldEntries + (oldEntries / 2) + 1);
        long firstBlock, blockCount, tableClusters;
        while (true)
        {
            tableClusters = (newEntries * 8 + _g.ClusterSize - 1) >> _g.ClusterBits;
            blockCount = 0;
            long lastBlock;
            while (true)
            {
                var areaEnd = areaStart + blockCount + tableClusters;
                firstBlock = areaStart >> _g.RefcountBlockBits;
                lastBlock = (areaEnd - 1) >> _g.RefcountBlockBits;
                var need = lastBlock - firstBlock + 1;
                if (need == blockCount)
                {
                    break;
                }
                blockCount = need;
            }
            if (lastBlock < newEntries)
            {
                break;
            }
            newEntries = lastBlock + 1 + (newEntries / 2);
        }
        if (newEntries * 8 > Qcow2Constants.MaxRefcountTableBytes)
        {
            throw new BlockException(BlockError.NoSpace, "qcow2: refcount table would exceed its 8 MiB limit");
        }

        var areaClusters = blockCount + tableClusters;
        var buffer = new byte[areaClusters << _g.ClusterBits];
        for (var k = 0; k < blockCount; k++)
        {
            var blockRange = (firstBlock + k) << _g.RefcountBlockBits;
            var block = buffer.AsSpan((int)(k << _g.ClusterBits), _g.ClusterSize);
            for (var c = areaStart; c < areaStart + areaClusters; c++)
            {
                if (c >> _g.RefcountBlockBits == firstBlock + k)
                {
                    RefcountBlock.Set(block, (int)(c - blockRange), _g.RefcountOrder, 1);
                }
            }
        }
        var newTable = new ulong[newEntries];
        Array.Copy(Table, newTable, oldEntries);
        for (var k = 0; k < blockCount; k++)
        {
            newTable[firstBlock + k] = (ulong)((areaStart + k) << _g.ClusterBits);
        }
        var tableBytes = buffer.AsSpan((int)(blockCount << _g.ClusterBits));
        for (var i = 0; i < newTable.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(tableBytes[(i * 8)..], newTable[i]);
        }
        var areaOffset = areaStart << _g.ClusterBits;
        await _file.WriteAsync(areaOffset, buffer).ConfigureAwait(false);
        _file.Sync();
        var newTableOffset = areaOffset + (blockCount << _g.ClusterBits);
        await _switchTable(newTableOffset, (int)tableClusters).ConfigureAwait(false);

        var oldOffset = TableOffset;
        var oldClusters = TableClusters;
        Table = newTable;
        TableOffset = newTableOffset;
        TableClusters = (int)tableClusters;
        _metadata.Remove(oldOffset, (long)oldClusters << _g.ClusterBits);
        _metadata.Add(areaOffset, areaClusters << _g.ClusterBits);
        // The old table is no longer referenced by the (synced) header.
        await UpdateAsync(oldOffset, (long)oldClusters << _g.ClusterBits, -1).ConfigureAwait(false);
    }
}
