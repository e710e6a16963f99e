using System.Buffers.Binary;
using Blockshot.Core;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2;

// The comparing and repairing half of the check: refcounts, COPIED flags, rebuilds.
public sealed partial class Qcow2Node
{
    /// <summary>The on-disk refcount of a cluster, or null when its refcount block cannot be used.</summary>
    private async ValueTask<ulong?> DiskRefcountAsync(long cluster)
    {
        var blockIndex = cluster >> _g.RefcountBlockBits;
        if (blockIndex >= _refcounts.Table.Length)
        {
            return 0;
        }
        var raw = _refcounts.Table[blockIndex];
        var offset = (long)(raw & RefcountTableEntry.OffsetMask);
        if ((offset & _g.ClusterMask) != 0)
        {
            return null;
        }
        return offset == 0 ? 0 : await _refcounts.GetAsync(cluster).ConfigureAwait(false);
    }

    private async ValueTask<long> CompareRefcountsAsync(CheckState st, bool fixLeaks, bool fixErrors)
    {
        var r = st.Result;
        long highest = 0;
        for (long i = 0; i < st.Refs.Length; i++)
        {
            var disk = await DiskRefcountAsync(i).ConfigureAwait(false);
            if (disk is not { } refcount1)
            {
                r.Message($"Can't get refcount for cluster {i}: Input/output error");
                r.CheckErrors++;
                continue;
            }
            ulong refcount2 = st.Refs.Get(i);
            if (refcount1 > 0 || refcount2 > 0)
            {
                highest = i;
            }
            if (refcount1 == refcount2)
            {
                continue;
            }
            var fixing = false;
            var isLeak = refcount1 > refcount2;
            if (refcount1 == 0)
            {
                st.Rebuild = true;
            }
            else if (isLeak && fixLeaks)
            {
                fixing = true;
            }
            else if (!isLeak && fixErrors)
            {
                fixing = true;
            }
            r.Message($"{(fixing ? "Repairing" : isLeak ? "Leaked" : "ERROR")} cluster {i} refcount={refcount1} reference={refcount2}");
            if (fixing)
            {
                try
                {
                    var delta = isLeak ? -(long)(refcount1 - refcount2) : (long)(refcount2 - refcount1);
                    await _refcounts.UpdateAsync(i << _g.ClusterBits, 1, delta).ConfigureAwait(false);
                    if (isLeak)
                    {
                        r.LeaksFixed++;
                    }
                    else
                    {
                        r.CorruptionsFixed++;
                    }
                    continue;
                }
                catch (BlockException)
                {
                    // Fall through: counted as not repaired.
                }
            }
            if (isLeak)
            {
                r.Leaks++;
            }
            else
            {
                r.Corruptions++;
            }
        }
        return highest;
    }

    private async ValueTask CheckCopiedFlagsAsync(CheckState st)
    {
        var r = st.Result;
        var repair = st.FixErrors || (st.FixLeaks && r.CheckErrors == 0 && r.Corruptions == 0 && r.Leaks == 0);
        if (!_readOnly)
        {
            await FlushMetadataAsync().ConfigureAwait(false);
        }
        var table = new byte[_g.ClusterSize];
        var budget = _g.ClustersFor(_file.Length) + 64;
        for (var i = 0; i < _l1.Length; i++)
        {
            var l1e = _l1[i];
            var l2 = L1Entry.Offset(l1e);
            if (l2 == 0)
            {
                continue;
            }
            var rc = await DiskRefcountAsync(l2 >> _g.ClusterBits).ConfigureAwait(false);
            if (rc is null)
            {
                continue;
            }
            if ((rc == 1) != ((l1e & L1Entry.Copied) != 0))
            {
                r.Corruptions++;
                r.Message($"{(repair ? "Repairing" : "ERROR")} OFLAG_COPIED L2 cluster: l1_index={i} l1_entry={l1e:x} refcount={rc}");
                if (repair)
                {
                    _l1[i] = rc == 1 ? l1e | L1Entry.Copied : l1e & ~L1Entry.Copied;
                    await WriteL1EntryAsync(i).ConfigureAwait(false);
                    r.Corruptions--;
                    r.CorruptionsFixed++;
                }
            }
            if (l2 >= _file.Length || --budget < 0)
            {
                continue; // Past the end the table reads as zeros; past the budget the L1 table is garbage.
            }
            await _file.ReadAsync(l2, table).ConfigureAwait(false);
            var dirty = 0;
            for (var j = 0; j < _g.L2Entries; j++)
            {
                var entry = L2Entry.Read(table, j, _g.ExtendedL2);
                var type = entry.Classify(_g.ExtendedL2, HasDataFile);
                if (type is not (ClusterType.Normal or ClusterType.ZeroAllocated))
                {
                    continue;
                }
                ulong refcount;
                if (HasDataFile)
                {
                    refcount = 1;
                }
                else
                {
                    var got = await DiskRefcountAsync(entry.HostOffset >> _g.ClusterBits).ConfigureAwait(false);
                    if (got is null)
                    {
                        continue;
                    }
                    refcount = got.Value;
                }
                if ((refcount == 1) != entry.IsCopied)
                {
                    r.Corruptions++;
                    r.Message($"{(repair ? "Repairing" : "ERROR")} OFLAG_COPIED data cluster: l2_entry={entry.Word:x} refcount={refcount}");
                    if (repair)
                    {
                        var word = refcount == 1 ? entry.Word | L2Entry.Copied : entry.Word & ~L2Entry.Copied;
                        new L2Entry(word, entry.Bitmap).Write(table, j, _g.ExtendedL2);
                        dirty++;
                    }
                }
            }
            if (dirty > 0)
            {
                _l2Cache.Drop(l2, _g.ClusterSize);
                await _file.WriteAsync(l2, table).ConfigureAwait(false);
                _file.Sync();
                r.Corruptions -= dirty;
                r.CorruptionsFixed += dirty;
            }
        }
    }

    /// <summary>
    /// Writes a fresh refcount table and blocks describing the counted references, past everything in
    /// use, then switches the header to them. The old structure becomes leaked clusters. Under <see cref="_meta"/>.
    /// </summary>
    private async ValueTask RebuildRefcountStructureAsync(CheckState st) =>
        await WriteRefcountStructureAsync(st.Refs, _g.RefcountOrder).ConfigureAwait(false);

    /// <summary>
    /// Writes refcount blocks of width 2^<paramref name="order"/> describing <paramref name="refs"/> (plus
    /// the new structure itself) past everything in use, and a table pointing at them. When the order is
    /// the image's, the header is switched and the node continues with the new structure; otherwise the
    /// caller switches the header. Returns the table offset and size in clusters. Under <see cref="_meta"/>.
    /// </summary>
    private async ValueTask<(long Offset, int Clusters)> WriteRefcountStructureAsync(ReferenceCounts refs, int order)
    {
        var perBlock = RefcountBlock.EntriesPerBlock(_g.ClusterSize, order);
        var max = RefcountBlock.MaxValue(order);
        var areaStart = Math.Max(refs.Length, _g.ClustersFor(_file.Length));
        long blocks = 0, tableClusters = 0;
        while (true)
        {
            var total = areaStart + blocks + tableClusters;
            var needBlocks = (total + perBlock - 1) / perBlock;
            var needTable = _g.ClustersFor(needBlocks * 8);
            if (needBlocks == blocks && needTable == tableClusters)
            {
                break;
            }
            blocks = needBlocks;
            tableClusters = needTable;
        }
        if (tableClusters << _g.ClusterBits > Qcow2Constants.MaxRefcountTableBytes)
        {
            throw new BlockException(BlockError.NoSpace, "qcow2: rebuilt refcount table would exceed its 8 MiB limit");
        }
        var areaEnd = areaStart + blocks + tableClusters;
        refs.EnsureLength(areaEnd);
        for (var c = areaStart; c < areaEnd; c++)
        {
            refs.Counts[c] = 1;
        }
        var block = new byte[_g.ClusterSize];
        var table = new ulong[tableClusters << (_g.ClusterBits - 3)];
        for (long b = 0; b < blocks; b++)
        {
            block.AsSpan().Clear();
            var first = b * perBlock;
            for (var k = 0; k < perBlock && first + k < refs.Length; k++)
            {
                var v = refs.Counts[first + k];
                if (v != 0)
                {
                    RefcountBlock.Set(block, k, order, Math.Min(v, max));
                }
            }
            var at = (areaStart + b) << _g.ClusterBits;
            await _file.WriteAsync(at, block).ConfigureAwait(false);
            table[b] = (ulong)at;
        }
        var tableBytes = new byte[table.Length * 8];
        for (var i = 0; i < table.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(tableBytes.AsSpan(i * 8), table[i]);
        }
        var tableOffset = (areaStart + blocks) << _g.ClusterBits;
        await _file.WriteAsync(tableOffset, tableBytes).ConfigureAwait(false);
        _file.Sync();
        if (order != _g.RefcountOrder)
        {
            return (tableOffset, (int)tableClusters);
        }
        await SwitchRefcountTableAsync(tableOffset, (int)tableClusters).ConfigureAwait(false);
        _refcounts.ReplaceTable(table, tableOffset, (int)tableClusters);
        if (!_readOnly)
        {
            _metadata.Clear();
            RegisterMetadata();
        }
        return (tableOffset, (int)tableClusters);
    }

    /// <summary>Repairs a dirty image while opening it read-write, as the format requires before any write.</summary>
    private async ValueTask RepairDirtyOnOpenAsync()
    {
        var result = await CheckLockedOnOpenAsync().ConfigureAwait(false);
        if (result.CheckErrors > 0)
        {
            Qcow2Error.Invalid("Could not repair dirty image: " + string.Join("; ", result.Messages.Take(5)));
        }
        LastRepair = result;
    }

    private async ValueTask<Qcow2CheckResult> CheckLockedOnOpenAsync()
    {
        await _meta.WaitAsync().ConfigureAwait(false);
        try
        {
            return await CheckLockedAsync(Qcow2RepairMode.All).ConfigureAwait(false);
        }
        finally
        {
            _meta.Release();
        }
    }

    /// <summary>The result of the repair a read-write open ran on a dirty image, or null.</summary>
    public Qcow2CheckResult? LastRepair { get; private set; }
}
