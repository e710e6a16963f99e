using System.Buffers.Binary;

namespace Blockshot.Qcow2.Format;

/// <summary>Bit layout of L1 table entries.</summary>
public static class L1Entry
{
    /// <summary>Bits 9–55: offset of the L2 table.</summary>
    public const ulong OffsetMask = 0x00fffffffffffe00UL;

    /// <summary>Bit 63: the L2 table's refcount is exactly one.</summary>
    public const ulong Copied = 1UL << 63;

    /// <summary>Bits that must be zero.</summary>
    public const ulong ReservedMask = 0x7f000000000001ffUL;

    /// <summary>The L2 table offset of an entry.</summary>
    public static long Offset(ulong entry) => (long)(entry & OffsetMask);
}

/// <summary>Bit layout of refcount table entries.</summary>
public static class RefcountTableEntry
{
    /// <summary>Bits 9–63: offset of the refcount block.</summary>
    public const ulong OffsetMask = 0xfffffffffffffe00UL;

    /// <summary>Bits that must be zero.</summary>
    public const ulong ReservedMask = 0x1ffUL;
}

/// <summary>How a guest cluster is stored, from its L2 entry.</summary>
public enum ClusterType
{
    /// <summary>Not allocated here: reads go to the backing file, or read as zeros.</summary>
    Unallocated,

    /// <summary>Reads as zeros, no host cluster (zero flag, offset 0).</summary>
    ZeroPlain,

    /// <summary>Reads as zeros, host cluster preallocated (zero flag with an offset).</summary>
    ZeroAllocated,

    /// <summary>Data in a host cluster.</summary>
    Normal,

    /// <summary>Compressed data at a byte offset.</summary>
    Compressed,
}

/// <summary>How one subcluster is stored (extended L2), or how a whole cluster is stored otherwise.</summary>
public enum SubclusterType
{
    /// <summary>Unallocated and the cluster has no host offset.</summary>
    UnallocatedPlain,

    /// <summary>Unallocated but the cluster has a host offset.</summary>
    UnallocatedAllocated,

    /// <summary>Reads as zeros; no host offset.</summary>
    ZeroPlain,

    /// <summary>Reads as zeros; the cluster has a host offset.</summary>
    ZeroAllocated,

    /// <summary>Data in the host cluster.</summary>
    Normal,

    /// <summary>Part of a compressed cluster.</summary>
    Compressed,

    /// <summary>The bitmap contradicts itself (allocated and zero, or allocated without an offset).</summary>
    Invalid,
}

/// <summary>
/// An L2 entry: the 64-bit descriptor plus, with extended L2 entries, the 64-bit subcluster bitmap
/// (bits 0–31 allocated, 32–63 reads-as-zero).
/// </summary>
/// <param name="Word">The descriptor word.</param>
/// <param name="Bitmap">The subcluster bitmap; zero without extended L2 entries.</param>
public readonly record struct L2Entry(ulong Word, ulong Bitmap = 0)
{
    /// <summary>Bits 9–55 of a standard descriptor: the host cluster offset.</summary>
    public const ulong OffsetMask = 0x00fffffffffffe00UL;

    /// <summary>Bit 63: refcount exactly one (standard clusters).</summary>
    public const ulong Copied = 1UL << 63;

    /// <summary>Bit 62: compressed cluster.</summary>
    public const ulong CompressedFlag = 1UL << 62;

    /// <summary>Bit 0 of a standard descriptor: reads as zeros (version 3 without extended L2).</summary>
    public const ulong ZeroFlag = 1;

    /// <summary>Reserved bits of a standard descriptor.</summary>
    public const ulong StandardReservedMask = 0x3f000000000001feUL;

    /// <summary>Bitmap with every subcluster allocated.</summary>
    public const ulong AllAllocated = 0xffffffffUL;

    /// <summary>Bitmap with every subcluster reading as zeros.</summary>
    public const ulong AllZeroes = 0xffffffff00000000UL;

    /// <summary>The unallocated entry.</summary>
    public static L2Entry Empty => default;

    /// <summary>True for a compressed descriptor.</summary>
    public bool IsCompressed => (Word & CompressedFlag) != 0;

    /// <summary>True when the COPIED bit is set.</summary>
    public bool IsCopied => (Word & Copied) != 0;

    /// <summary>Host offset of a standard descriptor.</summary>
    public long HostOffset => (long)(Word & OffsetMask);

    /// <summary>The allocated-subclusters half of the bitmap.</summary>
    public uint AllocatedMask => (uint)Bitmap;

    /// <summary>The zero-subclusters half of the bitmap.</summary>
    public uint ZeroMask => (uint)(Bitmap >> 32);

    /// <summary>Classifies the cluster. With an external data file, offset 0 plus COPIED means allocated at 0.</summary>
    public ClusterType Classify(bool extendedL2, bool hasDataFile)
    {
        if (IsCompressed)
        {
            return ClusterType.Compressed;
        }
        if ((Word & ZeroFlag) != 0 && !extendedL2)
        {
            return (Word & OffsetMask) != 0 ? ClusterType.ZeroAllocated : ClusterType.ZeroPlain;
        }
        if ((Word & OffsetMask) == 0)
        {
            return hasDataFile && IsCopied ? ClusterType.Normal : ClusterType.Unallocated;
        }
        return ClusterType.Normal;
    }

    /// <summary>Classifies subcluster <paramref name="index"/> (extended L2), or the whole cluster otherwise.</summary>
    public SubclusterType ClassifySubcluster(int index, bool extendedL2, bool hasDataFile)
    {
        var type = Classify(extendedL2, hasDataFile);
        if (!extendedL2)
        {
            return type switch
            {
                ClusterType.Unallocated => SubclusterType.UnallocatedPlain,
                ClusterType.ZeroPlain => SubclusterType.ZeroPlain,
                ClusterType.ZeroAllocated => SubclusterType.ZeroAllocated,
                ClusterType.Normal => SubclusterType.Normal,
                _ => SubclusterType.Compressed,
            };
        }
        var alloc = AllocatedMask;
        var zero = ZeroMask;
        switch (type)
        {
            case ClusterType.Compressed:
                return SubclusterType.Compressed;
            case ClusterType.Normal:
                if ((alloc & zero) != 0)
                {
                    return SubclusterType.Invalid;
                }
                if ((zero & (1u << index)) != 0)
                {
                    return SubclusterType.ZeroAllocated;
                }
                return (alloc & (1u << index)) != 0 ? SubclusterType.Normal : SubclusterType.UnallocatedAllocated;
            default:
                if (alloc != 0)
                {
                    return SubclusterType.Invalid;
                }
                return (zero & (1u << index)) != 0 ? SubclusterType.ZeroPlain : SubclusterType.UnallocatedPlain;
        }
    }

    /// <summary>Reads entry <paramref name="index"/> of an L2 table (or slice).</summary>
    public static L2Entry Read(ReadOnlySpan<byte> table, int index, bool extendedL2)
    {
        if (!extendedL2)
        {
            return new L2Entry(BinaryPrimitives.ReadUInt64BigEndian(table[(index * 8)..]));
        }
        var at = index * 16;
        return new L2Entry(BinaryPrimitives.ReadUInt64BigEndian(table[at..]), BinaryPrimitives.ReadUInt64BigEndian(table[(at + 8)..]));
    }

    /// <summary>Writes this entry as entry <paramref name="index"/> of an L2 table (or slice).</summary>
    public void Write(Span<byte> table, int index, bool extendedL2)
    {
        if (!extendedL2)
        {
            BinaryPrimitives.WriteUInt64BigEndian(table[(index * 8)..], Word);
            return;
        }
        var at = index * 16;
        BinaryPrimitives.WriteUInt64BigEndian(table[at..], Word);
        BinaryPrimitives.WriteUInt64BigEndian(table[(at + 8)..], Bitmap);
    }

    /// <inheritdoc/>
    public override string ToString() => Bitmap == 0 ? $"0x{Word:x16}" : $"0x{Word:x16}/0x{Bitmap:x16}";
}

/// <summary>
/// A compressed cluster descriptor. With x = 62 − (cluster_bits − 8), bits 0..x−1 hold the byte offset
/// and bits x..61 the number of 512-byte sectors beyond the first.
/// </summary>
/// <param name="HostOffset">Byte offset of the compressed data.</param>
/// <param name="Sectors">Sectors the data touches, counted from the sector holding the offset (at least 1).</param>
public readonly record struct CompressedDescriptor(long HostOffset, int Sectors)
{
    /// <summary>Bit position of the sector count for a cluster size.</summary>
    public static int SizeShift(int clusterBits) => 62 - (clusterBits - 8);

    /// <summary>Mask of the sector count field (after shifting).</summary>
    public static ulong SizeMask(int clusterBits) => (1UL << (clusterBits - 8)) - 1;

    /// <summary>Mask of the offset field.</summary>
    public static ulong OffsetFieldMask(int clusterBits) => (1UL << SizeShift(clusterBits)) - 1;

    /// <summary>Bytes from <see cref="HostOffset"/> to the end of the last sector.</summary>
    public int ByteLength => Sectors * Qcow2Constants.CompressedSectorSize - (int)(HostOffset & (Qcow2Constants.CompressedSectorSize - 1));

    /// <summary>Decodes a compressed L2 entry.</summary>
    public static CompressedDescriptor Decode(ulong entry, int clusterBits)
    {
        var offset = (long)(entry & OffsetFieldMask(clusterBits));
        var sectors = (int)((entry >> SizeShift(clusterBits)) & SizeMask(clusterBits)) + 1;
        return new CompressedDescriptor(offset, sectors);
    }

    /// <summary>Describes <paramref name="length"/> compressed bytes at <paramref name="offset"/>.</summary>
    public static CompressedDescriptor For(long offset, int length)
    {
        var first = offset & ~(long)(Qcow2Constants.CompressedSectorSize - 1);
        var end = offset + length;
        var sectors = (int)((end - first + Qcow2Constants.CompressedSectorSize - 1) / Qcow2Constants.CompressedSectorSize);
        return new CompressedDescriptor(offset, sectors);
    }

    /// <summary>Encodes as an L2 word (compressed flag set, COPIED clear).</summary>
    public ulong Encode(int clusterBits)
    {
        var extra = (ulong)(Sectors - 1);
        if (extra > SizeMask(clusterBits) || (ulong)HostOffset > OffsetFieldMask(clusterBits))
        {
            throw new ArgumentOutOfRangeException(nameof(clusterBits), "compressed descriptor does not fit");
        }
        return L2Entry.CompressedFlag | (extra << SizeShift(clusterBits)) | (ulong)HostOffset;
    }
}

/// <summary>Bit layout of bitmap table entries.</summary>
public static class BitmapTableEntry
{
    /// <summary>Bits 9–55: offset of the bitmap data cluster.</summary>
    public const ulong OffsetMask = 0x00fffffffffffe00UL;

    /// <summary>Bit 0 of an entry without an offset: the cluster reads as all ones.</summary>
    public const ulong AllOnes = 1;

    /// <summary>Bits that must be zero.</summary>
    public const ulong ReservedMask = 0xff000000000001feUL;
}
