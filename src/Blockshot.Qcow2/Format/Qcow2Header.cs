using System.Buffers.Binary;

namespace Blockshot.Qcow2.Format;

/// <summary>
/// The fixed qcow2 header at byte 0: every field of versions 2 and 3, plus any bytes of a version 3
/// header beyond compression_type (padding and fields unknown to us), kept so a rewrite preserves them.
/// </summary>
public sealed class Qcow2Header
{
    /// <summary>Format version, 2 or 3.</summary>
    public uint Version { get; set; } = 3;

    /// <summary>Offset of the backing file name in the image, 0 when there is none.</summary>
    public ulong BackingFileOffset { get; set; }

    /// <summary>Length of the backing file name in bytes.</summary>
    public uint BackingFileSize { get; set; }

    /// <summary>log2 of the cluster size.</summary>
    public uint ClusterBits { get; set; } = 16;

    /// <summary>Virtual disk size in bytes.</summary>
    public ulong Size { get; set; }

    /// <summary>Encryption method: 0 none, 1 AES, 2 LUKS.</summary>
    public uint CryptMethod { get; set; }

    /// <summary>Entries in the active L1 table.</summary>
    public uint L1Size { get; set; }

    /// <summary>Offset of the active L1 table.</summary>
    public ulong L1TableOffset { get; set; }

    /// <summary>Offset of the refcount table.</summary>
    public ulong RefcountTableOffset { get; set; }

    /// <summary>Clusters the refcount table occupies.</summary>
    public uint RefcountTableClusters { get; set; }

    /// <summary>Number of internal snapshots.</summary>
    public uint SnapshotCount { get; set; }

    /// <summary>Offset of the snapshot table.</summary>
    public ulong SnapshotsOffset { get; set; }

    /// <summary>Incompatible feature bits (version 3).</summary>
    public IncompatibleFeatures Incompatible { get; set; }

    /// <summary>Compatible feature bits (version 3).</summary>
    public CompatibleFeatures Compatible { get; set; }

    /// <summary>Auto-clear feature bits (version 3).</summary>
    public AutoclearFeatures Autoclear { get; set; }

    /// <summary>log2 of the refcount width in bits; 4 for version 2.</summary>
    public uint RefcountOrder { get; set; } = 4;

    /// <summary>Header length in bytes; 72 for version 2.</summary>
    public uint HeaderLength { get; set; } = Qcow2Constants.V3HeaderLength;

    /// <summary>Compression type; present only when <see cref="HeaderLength"/> exceeds 104.</summary>
    public CompressionType CompressionType { get; set; }

    /// <summary>Header bytes from 105 up to <see cref="HeaderLength"/>: padding and unknown later fields.</summary>
    public byte[] ExtraFields { get; set; } = new byte[Qcow2Constants.V3HeaderLength - 105];

    /// <summary>Cluster size in bytes.</summary>
    public int ClusterSize => 1 << (int)ClusterBits;

    /// <summary>Refcount width in bits.</summary>
    public int RefcountBits => 1 << (int)RefcountOrder;

    /// <summary>Where header extensions start.</summary>
    public int ExtensionsOffset => Version == 2 ? Qcow2Constants.V2HeaderLength : (int)HeaderLength;

    /// <summary>
    /// Parses the header from the start of the image. Checks magic, version and header length; field
    /// semantics are checked by the opener.
    /// </summary>
    public static Qcow2Header Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length < Qcow2Constants.V2HeaderLength)
        {
            Qcow2Error.Invalid($"image too short for a header ({data.Length} bytes)");
        }
        if (BinaryPrimitives.ReadUInt32BigEndian(data) != Qcow2Constants.Magic)
        {
            Qcow2Error.Invalid("image is not in qcow2 format (bad magic)");
        }
        var h = new Qcow2Header
        {
            Version = BinaryPrimitives.ReadUInt32BigEndian(data[4..]),
            BackingFileOffset = BinaryPrimitives.ReadUInt64BigEndian(data[8..]),
            BackingFileSize = BinaryPrimitives.ReadUInt32BigEndian(data[16..]),
            ClusterBits = BinaryPrimitives.ReadUInt32BigEndian(data[20..]),
            Size = BinaryPrimitives.ReadUInt64BigEndian(data[24..]),
            CryptMethod = BinaryPrimitives.ReadUInt32BigEndian(data[32..]),
            L1Size = BinaryPrimitives.ReadUInt32BigEndian(data[36..]),
            L1TableOffset = BinaryPrimitives.ReadUInt64BigEndian(data[40..]),
            RefcountTableOffset = BinaryPrimitives.ReadUInt64BigEndian(data[48..]),
            RefcountTableClusters = BinaryPrimitives.ReadUInt32BigEndian(data[56..]),
            SnapshotCount = BinaryPrimitives.ReadUInt32BigEndian(data[60..]),
            SnapshotsOffset = BinaryPrimitives.ReadUInt64BigEndian(data[64..]),
        };
        if (h.Version is not (2 or 3))
        {
            Qcow2Error.Unsupported($"unsupported qcow2 version {h.Version}");
        }
        if (h.Version == 2)
        {
            h.RefcountOrder = 4;
            h.HeaderLength = Qcow2Constants.V2HeaderLength;
            h.ExtraFields = [];
            return h;
        }
        if (data.Length < Qcow2Constants.V3MinHeaderLength)
        {
            Qcow2Error.Invalid("qcow2 header too short");
        }
        h.Incompatible = (IncompatibleFeatures)BinaryPrimitives.ReadUInt64BigEndian(data[72..]);
        h.Compatible = (CompatibleFeatures)BinaryPrimitives.ReadUInt64BigEndian(data[80..]);
        h.Autoclear = (AutoclearFeatures)BinaryPrimitives.ReadUInt64BigEndian(data[88..]);
        h.RefcountOrder = BinaryPrimitives.ReadUInt32BigEndian(data[96..]);
        h.HeaderLength = BinaryPrimitives.ReadUInt32BigEndian(data[100..]);
        if (h.HeaderLength < Qcow2Constants.V3MinHeaderLength)
        {
            Qcow2Error.Invalid($"qcow2 header too short (header_length {h.HeaderLength})");
        }
        if (h.HeaderLength > (uint)data.Length)
        {
            Qcow2Error.Invalid($"qcow2 header exceeds cluster size (header_length {h.HeaderLength})");
        }
        if (h.HeaderLength > 104)
        {
            h.CompressionType = (CompressionType)data[104];
            h.ExtraFields = data[105..(int)h.HeaderLength].ToArray();
        }
        else
        {
            h.CompressionType = CompressionType.Deflate;
            h.ExtraFields = [];
        }
        return h;
    }

    /// <summary>Bytes <see cref="WriteTo"/> produces.</summary>
    public int SerializedLength => Version == 2 ? Qcow2Constants.V2HeaderLength : (int)HeaderLength;

    /// <summary>Writes the header; returns the bytes written (<see cref="SerializedLength"/>).</summary>
    public int WriteTo(Span<byte> data)
    {
        var length = SerializedLength;
        data[..length].Clear();
        BinaryPrimitives.WriteUInt32BigEndian(data, Qcow2Constants.Magic);
        BinaryPrimitives.WriteUInt32BigEndian(data[4..], Version);
        BinaryPrimitives.WriteUInt64BigEndian(data[8..], BackingFileOffset);
        BinaryPrimitives.WriteUInt32BigEndian(data[16..], BackingFileSize);
        BinaryPrimitives.WriteUInt32BigEndian(data[20..], ClusterBits);
        BinaryPrimitives.WriteUInt64BigEndian(data[24..], Size);
        BinaryPrimitives.WriteUInt32BigEndian(data[32..], CryptMethod);
        BinaryPrimitives.WriteUInt32BigEndian(data[36..], L1Size);
        BinaryPrimitives.WriteUInt64BigEndian(data[40..], L1TableOffset);
        BinaryPrimitives.WriteUInt64BigEndian(data[48..], RefcountTableOffset);
        BinaryPrimitives.WriteUInt32BigEndian(data[56..], RefcountTableClusters);
        BinaryPrimitives.WriteUInt32BigEndian(data[60..], SnapshotCount);
        BinaryPrimitives.WriteUInt64BigEndian(data[64..], SnapshotsOffset);
        if (Version == 2)
        {
            return length;
        }
        BinaryPrimitives.WriteUInt64BigEndian(data[72..], (ulong)Incompatible);
        BinaryPrimitives.WriteUInt64BigEndian(data[80..], (ulong)Compatible);
        BinaryPrimitives.WriteUInt64BigEndian(data[88..], (ulong)Autoclear);
        BinaryPrimitives.WriteUInt32BigEndian(data[96..], RefcountOrder);
        BinaryPrimitives.WriteUInt32BigEndian(data[100..], HeaderLength);
        if (HeaderLength > 104)
        {
            data[104] = (byte)CompressionType;
            ExtraFields.AsSpan(0, Math.Min(ExtraFields.Length, length - 105)).CopyTo(data[105..]);
        }
        return length;
    }

    /// <summary>A deep copy.</summary>
    public Qcow2Header Clone()
    {
        var copy = (Qcow2Header)MemberwiseClone();
        copy.ExtraFields = (byte[])ExtraFields.Clone();
        return copy;
    }
}
