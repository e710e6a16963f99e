using Blockshot.Qcow2.Format;
using Blockshot.Qcow2.Internal;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>How a run of guest bytes reads.</summary>
    internal enum RunKind
    {
        /// <summary>Data at a host offset (in the data file when there is one).</summary>
        Data,

        /// <summary>Reads as zeros in this image.</summary>
        Zero,

        /// <summary>Not allocated here: the backing file, or zeros.</summary>
        Unallocated,

        /// <summary>Part of one compressed cluster.</summary>
        Compressed,
    }

    /// <summary>A run of guest bytes with one kind; data runs are contiguous on the host.</summary>
    internal readonly record struct MappedRun(RunKind Kind, long Length, long Host, L2Entry Entry);

    /// <summary>Offset of the L2 table of L1 entry <paramref name="l1Index"/> (0 when absent). Under <see cref="_meta"/>.</summary>
    private async ValueTask<long> L2TableOffsetAsync(int l1Index)
    {
        if (l1Index >= _l1.Length)
        {
            return 0;
        }
        var l2 = L1Entry.Offset(_l1[l1Index]);
        if ((l2 & _g.ClusterMask) != 0)
        {
            throw await SignalCorruptionAsync($"L2 table offset 0x{l2:x} unaligned (L1 index: 0x{l1Index:x})").ConfigureAwait(false);
        }
        return l2;
    }

    /// <summary>The L2 entry of guest cluster <paramref name="guestCluster"/> (empty when there is no table). Under <see cref="_meta"/>.</summary>
    private async ValueTask<L2Entry> GetEntryAsync(long guestCluster)
    {
        var l2 = await L2TableOffsetAsync(_g.L1Index(guestCluster)).ConfigureAwait(false);
        if (l2 == 0)
        {
            return default;
        }
        var l2Index = _g.L2Index(guestCluster);
        var slice = await _l2Cache.GetAsync(l2 + (long)(l2Index / _g.SliceEntries) * _g.SliceBytes).ConfigureAwait(false);
        try
        {
            return L2Entry.Read(slice.Data, l2Index % _g.SliceEntries, _g.ExtendedL2);
        }
        finally
        {
            MetadataCache.Release(slice);
        }
    }

    /// <summary>
    /// Maps the longest run starting at <paramref name="pos"/> (before <paramref name="end"/>) whose bytes
    /// read the same way, staying inside one L2 slice. Under <see cref="_meta"/>.
    /// </summary>
    private async ValueTask<MappedRun> LookupAsync(long pos, long end)
    {
        var guestCluster = pos >> _g.ClusterBits;
        var l1Index = _g.L1Index(guestCluster);
        var l2 = await L2TableOffsetAsync(l1Index).ConfigureAwait(false);
        if (l2 == 0)
        {
            var tableEnd = (long)(l1Index + 1) * _g.L2Coverage;
            return new MappedRun(RunKind.Unallocated, Math.Min(end, tableEnd) - pos, 0, default);
        }
        var l2Index = _g.L2Index(guestCluster);
        var sliceOffset = l2 + (long)(l2Index / _g.SliceEntries) * _g.SliceBytes;
        var index = l2Index % _g.SliceEntries;
        var slice = await _l2Cache.GetAsync(sliceOffset).ConfigureAwait(false);
        try
        {
            var p = pos;
            var first = true;
            RunKind kind0 = default;
            long host0 = 0;
            L2Entry entry0 = default;
            while (p < end && index < _g.SliceEntries)
            {
                var entry = L2Entry.Read(slice.Data, index, _g.ExtendedL2);
                var clusterStart = _g.ClusterStart(p);
                var clusterEnd = clusterStart + _g.ClusterSize;
                while (p < end && p < clusterEnd)
                {
                    var (kind, host, unitEnd) = Classify(entry, p, clusterStart);
                    if (kind == (RunKind)(-1))
                    {
                        throw await SignalCorruptionAsync(host == 1
                            ? $"Invalid cluster entry found (L2 offset: 0x{sliceOffset:x}, L2 index: 0x{index:x})"
                            : host == 2
                                ? $"External data file host cluster offset 0x{entry.HostOffset:x} does not match guest cluster offset: 0x{clusterStart:x}"
                                : host == 3
                                    ? "Compressed cluster entry found in image with external data file"
                                    : $"Cluster allocation offset 0x{entry.HostOffset:x} unaligned (L2 offset: 0x{sliceOffset:x}, L2 index: 0x{index:x})").ConfigureAwait(false);
                    }
                    if (first)
                    {
                        kind0 = kind;
                        host0 = host;
                        entry0 = entry;
                        first = false;
                    }
                    else if (kind != kind0 || kind0 == RunKind.Compressed || (kind == RunKind.Data && host != host0 + (p - pos)))
                    {
                        return new MappedRun(kind0, p - pos, host0, entry0);
                    }
                    p = Math.Min(unitEnd, end);
                }
                index++;
            }
            return new MappedRun(kind0, p - pos, host0, entry0);
        }
        finally
        {
            MetadataCache.Release(slice);
        }
    }

    /// <summary>
    /// Classifies the byte at <paramref name="pos"/>: its kind, host offset (for data) and where the unit
    /// (subcluster or cluster) ends. An invalid entry returns kind −1 with a reason code in the host field.
    /// </summary>
    private (RunKind Kind, long Host, long UnitEnd) Classify(L2Entry entry, long pos, long clusterStart)
    {
        var clusterEnd = clusterStart + _g.ClusterSize;
        var type = entry.Classify(_g.ExtendedL2, HasDataFile);
        if (type == ClusterType.Compressed)
        {
            return HasDataFile ? ((RunKind)(-1), 3, clusterEnd) : (RunKind.Compressed, 0, clusterEnd);
        }
        if (type is ClusterType.Normal or ClusterType.ZeroAllocated && (entry.HostOffset & _g.ClusterMask) != 0)
        {
            return ((RunKind)(-1), 0, clusterEnd);
        }
        if (type == ClusterType.Normal && HasDataFile && entry.HostOffset != clusterStart)
        {
            return ((RunKind)(-1), 2, clusterEnd);
        }
        if (!_g.ExtendedL2)
        {
            return type switch
            {
                ClusterType.Unallocated => (RunKind.Unallocated, 0, clusterEnd),
                ClusterType.ZeroPlain or ClusterType.ZeroAllocated => (RunKind.Zero, 0, clusterEnd),
                _ => (RunKind.Data, entry.HostOffset + (pos - clusterStart), clusterEnd),
            };
        }
        var sc = _g.Subcluster(pos);
        var unitEnd = clusterStart + ((long)(sc + 1) << _g.SubclusterBits);
        return entry.ClassifySubcluster(sc, true, HasDataFile) switch
        {
            SubclusterType.Invalid => ((RunKind)(-1), 1, unitEnd),
            SubclusterType.UnallocatedPlain or SubclusterType.UnallocatedAllocated => (RunKind.Unallocated, 0, unitEnd),
            SubclusterType.ZeroPlain or SubclusterType.ZeroAllocated => (RunKind.Zero, 0, unitEnd),
            _ => (RunKind.Data, entry.HostOffset + (pos - clusterStart), unitEnd),
        };
    }
}
