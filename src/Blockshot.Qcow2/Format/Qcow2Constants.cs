namespace Blockshot.Qcow2.Format;

/// <summary>Magic numbers, feature bits and implementation limits of the qcow2 format.</summary>
public static class Qcow2Constants
{
    /// <summary>The magic at byte 0: "QFI\xfb".</summary>
    public const uint Magic = 0x514649fb;

    /// <summary>Length of the fixed version 2 header.</summary>
    public const int V2HeaderLength = 72;

    /// <summary>Smallest header_length a version 3 image may declare.</summary>
    public const int V3MinHeaderLength = 104;

    /// <summary>The header_length written for version 3 images: fields through compression_type, padded to 8.</summary>
    public const int V3HeaderLength = 112;

    /// <summary>Smallest supported cluster_bits (512-byte clusters).</summary>
    public const int MinClusterBits = 9;

    /// <summary>Largest supported cluster_bits (2 MiB clusters).</summary>
    public const int MaxClusterBits = 21;

    /// <summary>Smallest cluster_bits with extended L2 entries (16 KiB clusters).</summary>
    public const int MinExtendedL2ClusterBits = 14;

    /// <summary>Largest refcount_order (64-bit refcounts).</summary>
    public const int MaxRefcountOrder = 6;

    /// <summary>Largest active or snapshot L1 table, in bytes.</summary>
    public const int MaxL1Bytes = 32 << 20;

    /// <summary>Largest refcount table, in bytes.</summary>
    public const int MaxRefcountTableBytes = 8 << 20;

    /// <summary>Most internal snapshots an image may hold.</summary>
    public const int MaxSnapshots = 65536;

    /// <summary>Largest snapshot table, in bytes.</summary>
    public const int MaxSnapshotTableBytes = 64 << 20;

    /// <summary>Largest extra data of one snapshot table entry.</summary>
    public const int MaxSnapshotExtraData = 1024;

    /// <summary>Extra data length every version 3 snapshot entry carries at least.</summary>
    public const int V3SnapshotMinExtraData = 16;

    /// <summary>Most persistent bitmaps an image may hold.</summary>
    public const int MaxBitmaps = 65535;

    /// <summary>Largest bitmap directory, in bytes.</summary>
    public const int MaxBitmapDirectoryBytes = 1024 * MaxBitmaps;

    /// <summary>Longest bitmap name, in bytes.</summary>
    public const int MaxBitmapNameBytes = 1023;

    /// <summary>Smallest bitmap granularity_bits accepted.</summary>
    public const int MinBitmapGranularityBits = 9;

    /// <summary>Largest bitmap granularity_bits accepted.</summary>
    public const int MaxBitmapGranularityBits = 31;

    /// <summary>Largest bitmap table, in entries.</summary>
    public const int MaxBitmapTableEntries = 0x8000000;

    /// <summary>Largest bitmap data, in bytes (bounds memory for one bitmap).</summary>
    public const long MaxBitmapDataBytes = 0x20000000;

    /// <summary>Longest backing file name, in bytes.</summary>
    public const int MaxBackingFileNameBytes = 1023;

    /// <summary>Longest backing format name, in bytes.</summary>
    public const int MaxBackingFormatBytes = 15;

    /// <summary>Size of the sectors compressed cluster lengths are counted in.</summary>
    public const int CompressedSectorSize = 512;

    /// <summary>Number of subclusters per cluster with extended L2 entries.</summary>
    public const int SubclustersPerCluster = 32;
}

/// <summary>Incompatible feature bits (header offset 72).</summary>
[Flags]
public enum IncompatibleFeatures : ulong
{
    /// <summary>No feature.</summary>
    None = 0,

    /// <summary>Refcounts may be inconsistent; repair before writing.</summary>
    Dirty = 1 << 0,

    /// <summary>Metadata may be corrupt; refuse writes.</summary>
    Corrupt = 1 << 1,

    /// <summary>Guest data lives in an external data file.</summary>
    ExternalDataFile = 1 << 2,

    /// <summary>compression_type is present and not deflate.</summary>
    CompressionType = 1 << 3,

    /// <summary>L2 entries are 128 bits with subcluster bitmaps.</summary>
    ExtendedL2 = 1 << 4,

    /// <summary>Every bit this implementation understands.</summary>
    Known = Dirty | Corrupt | ExternalDataFile | CompressionType | ExtendedL2,
}

/// <summary>Compatible feature bits (header offset 80).</summary>
[Flags]
public enum CompatibleFeatures : ulong
{
    /// <summary>No feature.</summary>
    None = 0,

    /// <summary>Refcount updates may be postponed while the image is marked dirty.</summary>
    LazyRefcounts = 1 << 0,

    /// <summary>Every bit this implementation understands.</summary>
    Known = LazyRefcounts,
}

/// <summary>Auto-clear feature bits (header offset 88).</summary>
[Flags]
public enum AutoclearFeatures : ulong
{
    /// <summary>No feature.</summary>
    None = 0,

    /// <summary>The bitmaps extension is consistent.</summary>
    Bitmaps = 1 << 0,

    /// <summary>The external data file reads as a consistent raw image.</summary>
    DataFileRaw = 1 << 1,

    /// <summary>Every bit this implementation understands.</summary>
    Known = Bitmaps | DataFileRaw,
}

/// <summary>Compression of compressed clusters (header offset 104).</summary>
public enum CompressionType : byte
{
    /// <summary>Raw deflate (RFC 1951), called "zlib" by the reference tools.</summary>
    Deflate = 0,

    /// <summary>Zstandard frames.</summary>
    Zstd = 1,
}

/// <summary>Header extension types.</summary>
public static class HeaderExtensionType
{
    /// <summary>Ends the extension area.</summary>
    public const uint End = 0;

    /// <summary>Backing file format name.</summary>
    public const uint BackingFormat = 0xe2792aca;

    /// <summary>Feature name table.</summary>
    public const uint FeatureNameTable = 0x6803f857;

    /// <summary>Persistent bitmaps.</summary>
    public const uint Bitmaps = 0x23852875;

    /// <summary>Full disk encryption header pointer.</summary>
    public const uint FullDiskEncryption = 0x0537be77;

    /// <summary>External data file name.</summary>
    public const uint ExternalDataFile = 0x44415441;
}
