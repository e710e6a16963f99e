using System.Numerics;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2.Internal;

/// <summary>The sizes and shifts an image's header implies, computed once.</summary>
internal sealed class Geometry
{
    /// <summary>Bytes of one L2 cache entry (a slice of an L2 table) at most.</summary>
    public const int MaxSliceBytes = 4096;

    public Geometry(int clusterBits, bool extendedL2, int refcountOrder)
    {
        ClusterBits = clusterBits;
        ClusterSize = 1 << clusterBits;
        ExtendedL2 = extendedL2;
        L2EntrySize = extendedL2 ? 16 : 8;
        L2Entries = ClusterSize / L2EntrySize;
        L2Bits = BitOperations.Log2((uint)L2Entries);
        SubclusterSize = extendedL2 ? ClusterSize / Qcow2Constants.SubclustersPerCluster : ClusterSize;
        SubclusterBits = BitOperations.Log2((uint)SubclusterSize);
        SliceBytes = Math.Min(ClusterSize, MaxSliceBytes);
        SliceEntries = SliceBytes / L2EntrySize;
        RefcountOrder = refcountOrder;
        RefcountsPerBlock = RefcountBlock.EntriesPerBlock(ClusterSize, refcountOrder);
        RefcountBlockBits = BitOperations.Log2((uint)RefcountsPerBlock);
        RefcountMax = RefcountBlock.MaxValue(refcountOrder);
    }

    public int ClusterBits { get; }

    public int ClusterSize { get; }

    public long ClusterMask => ClusterSize - 1;

    public bool ExtendedL2 { get; }

    public int L2EntrySize { get; }

    public int L2Entries { get; }

    public int L2Bits { get; }

    public int SubclusterSize { get; }

    public int SubclusterBits { get; }

    public int SliceBytes { get; }

    public int SliceEntries { get; }

    public int RefcountOrder { get; }

    public int RefcountsPerBlock { get; }

    public int RefcountBlockBits { get; }

    public ulong RefcountMax { get; }

    /// <summary>Bytes of guest data one L2 table maps.</summary>
    public long L2Coverage => (long)L2Entries << ClusterBits;

    public long ClusterIndex(long offset) => offset >> ClusterBits;

    public long ClusterStart(long offset) => offset & ~ClusterMask;

    public int InCluster(long offset) => (int)(offset & ClusterMask);

    public long ClustersFor(long bytes) => (bytes + ClusterMask) >> ClusterBits;

    /// <summary>L1 entries needed for a virtual size.</summary>
    public long L1EntriesFor(long size) => (ClustersFor(size) + L2Entries - 1) >> L2Bits;

    public int L1Index(long guestCluster) => (int)(guestCluster >> L2Bits);

    public int L2Index(long guestCluster) => (int)(guestCluster & (L2Entries - 1));

    public int Subcluster(long offset) => (int)((offset & ClusterMask) >> SubclusterBits);

    /// <summary>The mask of subclusters <c>[from, to)</c>.</summary>
    public static uint SubclusterMask(int from, int to) =>
        to - from >= 32 ? uint.MaxValue : ((1u << (to - from)) - 1) << from;
}
