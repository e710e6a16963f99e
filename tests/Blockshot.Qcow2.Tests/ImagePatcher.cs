using System.Buffers.Binary;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2.Tests;

/// <summary>Reads and patches raw image bytes: header fields, L1/L2 entries, refcounts.</summary>
internal sealed class ImagePatcher
{
    public ImagePatcher(string path)
    {
        Path = path;
        Bytes = File.ReadAllBytes(path);
        Header = Qcow2HeaderCluster.Parse(Bytes.AsSpan(0, Math.Min(Bytes.Length, 1 << 21))).Header;
    }

    public string Path { get; }

    public byte[] Bytes { get; set; }

    public Qcow2Header Header { get; }

    public int ClusterSize => Header.ClusterSize;

    public bool ExtendedL2 => (Header.Incompatible & IncompatibleFeatures.ExtendedL2) != 0;

    public int L2EntrySize => ExtendedL2 ? 16 : 8;

    public void Save() => File.WriteAllBytes(Path, Bytes);

    public ulong U64(long offset) => offset + 8 <= Bytes.Length ? BinaryPrimitives.ReadUInt64BigEndian(Bytes.AsSpan((int)offset)) : 0;

    public void SetU64(long offset, ulong value) => BinaryPrimitives.WriteUInt64BigEndian(Bytes.AsSpan((int)offset), value);

    public void SetU32(long offset, uint value) => BinaryPrimitives.WriteUInt32BigEndian(Bytes.AsSpan((int)offset), value);

    public long L1EntryOffset(int index) => (long)Header.L1TableOffset + index * 8L;

    /// <summary>File offset of the L2 entry of guest cluster <paramref name="guestCluster"/>, or -1 without an L2 table.</summary>
    public long L2EntryOffset(long guestCluster)
    {
        var perTable = ClusterSize / L2EntrySize;
        var l1 = U64(L1EntryOffset((int)(guestCluster / perTable)));
        var l2 = (long)(l1 & L1Entry.OffsetMask);
        return l2 == 0 ? -1 : l2 + (guestCluster % perTable) * L2EntrySize;
    }

    /// <summary>Every (file offset of the L2 entry, entry word) of allocated normal clusters in the active table.</summary>
    public List<(long At, ulong Word)> NormalEntries()
    {
        var list = new List<(long, ulong)>();
        var perTable = ClusterSize / L2EntrySize;
        for (var i = 0; i < Header.L1Size; i++)
        {
            var l2 = (long)(U64(L1EntryOffset(i)) & L1Entry.OffsetMask);
            if (l2 == 0)
            {
                continue;
            }
            for (var j = 0; j < perTable; j++)
            {
                var at = l2 + (long)j * L2EntrySize;
                var w = U64(at);
                if ((w & L2Entry.CompressedFlag) == 0 && (w & L2Entry.OffsetMask) != 0)
                {
                    list.Add((at, w));
                }
            }
        }
        return list;
    }

    /// <summary>The refcount of host cluster <paramref name="cluster"/>, and where its block lives.</summary>
    public (ulong Value, long Block, int Index) Refcount(long cluster)
    {
        var order = (int)Header.RefcountOrder;
        var perBlock = RefcountBlock.EntriesPerBlock(ClusterSize, order);
        var block = (long)(U64((long)Header.RefcountTableOffset + cluster / perBlock * 8) & RefcountTableEntry.OffsetMask);
        var index = (int)(cluster % perBlock);
        return block == 0 ? (0, 0, index) : (RefcountBlock.Get(Bytes.AsSpan((int)block, ClusterSize), index, order), block, index);
    }

    public void SetRefcount(long cluster, ulong value)
    {
        var (_, block, index) = Refcount(cluster);
        if (block == 0)
        {
            throw new InvalidOperationException($"no refcount block for cluster {cluster}");
        }
        RefcountBlock.Set(Bytes.AsSpan((int)block, ClusterSize), index, (int)Header.RefcountOrder, value);
    }

    public void SetIncompatible(ulong bits) => SetU64(72, bits);

    public void SetAutoclear(ulong bits) => SetU64(88, bits);
}
