using System.Text;

namespace Blockshot.Qcow2.Format;

/// <summary>
/// Everything the first cluster holds: the fixed header, the header extensions and the backing file
/// name. Known extensions are exposed typed; unknown ones are kept byte for byte and written back after
/// the known ones, as the format asks.
/// </summary>
public sealed class Qcow2HeaderCluster
{
    /// <summary>The fixed header.</summary>
    public Qcow2Header Header { get; set; } = new();

    /// <summary>Backing file name, or null.</summary>
    public string? BackingFile { get; set; }

    /// <summary>Backing file format name (extension 0xe2792aca), or null.</summary>
    public string? BackingFormat { get; set; }

    /// <summary>External data file name (extension 0x44415441), or null.</summary>
    public string? DataFile { get; set; }

    /// <summary>Feature name table, or null when the image has none.</summary>
    public List<FeatureName>? FeatureNames { get; set; }

    /// <summary>The bitmaps extension, or null.</summary>
    public BitmapsExtension? Bitmaps { get; set; }

    /// <summary>The encryption header pointer, or null.</summary>
    public EncryptionHeaderExtension? Encryption { get; set; }

    /// <summary>Extensions of types this implementation does not know, in image order.</summary>
    public List<HeaderExtension> UnknownExtensions { get; } = [];

    /// <summary>Parses the first cluster (or as much of it as the file holds, zero-padded).</summary>
    public static Qcow2HeaderCluster Parse(ReadOnlySpan<byte> cluster)
    {
        var header = Qcow2Header.Parse(cluster);
        var result = new Qcow2HeaderCluster { Header = header };
        if (header.ClusterBits is < Qcow2Constants.MinClusterBits or > Qcow2Constants.MaxClusterBits)
        {
            Qcow2Error.Unsupported($"unsupported cluster size: 2^{header.ClusterBits}");
        }
        var clusterSize = 1 << (int)header.ClusterBits;
        if (header.HeaderLength > clusterSize)
        {
            Qcow2Error.Invalid("qcow2 header exceeds cluster size");
        }
        if (header.BackingFileOffset > (ulong)clusterSize)
        {
            Qcow2Error.Invalid("invalid backing file offset");
        }
        var limit = Math.Min(clusterSize, cluster.Length);
        var extEnd = header.BackingFileOffset != 0 ? (int)header.BackingFileOffset : clusterSize;
        extEnd = Math.Min(extEnd, limit);
        var extStart = header.ExtensionsOffset;
        if (extEnd > extStart)
        {
            foreach (var ext in HeaderExtension.ParseAll(cluster[extStart..extEnd]))
            {
                result.Accept(ext);
            }
        }
        if (header.BackingFileOffset != 0)
        {
            if (header.BackingFileSize > Qcow2Constants.MaxBackingFileNameBytes
                || header.BackingFileOffset + header.BackingFileSize > (ulong)clusterSize)
            {
                Qcow2Error.Invalid("backing file name too long");
            }
            var start = (int)header.BackingFileOffset;
            var bytes = cluster.Length >= start + (int)header.BackingFileSize
                ? cluster.Slice(start, (int)header.BackingFileSize)
                : [];
            result.BackingFile = CString(bytes);
        }
        return result;
    }

    /// <summary>Names are C strings to the reference implementation: they end at the first NUL byte.</summary>
    private static string CString(ReadOnlySpan<byte> bytes)
    {
        var nul = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? bytes : bytes[..nul]);
    }

    private void Accept(HeaderExtension ext)
    {
        switch (ext.Type)
        {
            case HeaderExtensionType.BackingFormat:
                if (ext.Data.Length > Qcow2Constants.MaxBackingFormatBytes)
                {
                    Qcow2Error.Invalid($"backing format extension too long ({ext.Data.Length} bytes)");
                }
                BackingFormat = CString(ext.Data);
                break;
            case HeaderExtensionType.ExternalDataFile:
                DataFile = CString(ext.Data);
                break;
            case HeaderExtensionType.FeatureNameTable:
                FeatureNames = FeatureNameTable.Parse(ext.Data);
                break;
            case HeaderExtensionType.Bitmaps:
                Bitmaps = BitmapsExtension.Parse(ext.Data);
                break;
            case HeaderExtensionType.FullDiskEncryption:
                Encryption = EncryptionHeaderExtension.Parse(ext.Data);
                break;
            default:
                UnknownExtensions.Add(ext);
                break;
        }
    }

    /// <summary>The extensions in the order they are written: known ones first, then unknown ones.</summary>
    public List<HeaderExtension> Extensions()
    {
        var list = new List<HeaderExtension>();
        if (BackingFormat is not null)
        {
            list.Add(HeaderExtension.FromString(HeaderExtensionType.BackingFormat, BackingFormat));
        }
        if (DataFile is not null)
        {
            list.Add(HeaderExtension.FromString(HeaderExtensionType.ExternalDataFile, DataFile));
        }
        if (Encryption is { } enc)
        {
            list.Add(new HeaderExtension(HeaderExtensionType.FullDiskEncryption, enc.Serialize()));
        }
        if (FeatureNames is not null)
        {
            list.Add(new HeaderExtension(HeaderExtensionType.FeatureNameTable, FeatureNameTable.Serialize(FeatureNames)));
        }
        if (Bitmaps is { } bitmaps)
        {
            list.Add(new HeaderExtension(HeaderExtensionType.Bitmaps, bitmaps.Serialize()));
        }
        list.AddRange(UnknownExtensions);
        return list;
    }

    /// <summary>Bytes the header, extensions and backing name need.</summary>
    public int SerializedLength
    {
        get
        {
            var n = Header.SerializedLength + HeaderExtension.MeasureAll(Extensions());
            if (BackingFile is not null)
            {
                n += Encoding.UTF8.GetByteCount(BackingFile);
            }
            return n;
        }
    }

    /// <summary>
    /// Writes header, extensions, end marker and backing name into <paramref name="cluster"/> (the whole
    /// first cluster; the rest is zeroed), setting the backing name offset and size in the header.
    /// </summary>
    public void WriteTo(Span<byte> cluster)
    {
        cluster.Clear();
        var extStart = Header.ExtensionsOffset;
        var extLength = HeaderExtension.WriteAll(cluster[extStart..], Extensions());
        if (BackingFile is not null)
        {
            var nameOffset = extStart + extLength;
            var byteCount = Encoding.UTF8.GetByteCount(BackingFile);
            if (byteCount > Qcow2Constants.MaxBackingFileNameBytes || nameOffset + byteCount > cluster.Length)
            {
                Qcow2Error.Argument("backing file name too long");
            }
            Encoding.UTF8.GetBytes(BackingFile, cluster[nameOffset..]);
            Header.BackingFileOffset = (ulong)nameOffset;
            Header.BackingFileSize = (uint)byteCount;
        }
        else
        {
            Header.BackingFileOffset = 0;
            Header.BackingFileSize = 0;
        }
        Header.WriteTo(cluster);
    }

    /// <summary>
    /// The feature name table an image of this version and cluster size carries when written: the known
    /// names for version 3 images with clusters of 8 KiB or more, none otherwise (as the reference tool
    /// writes them).
    /// </summary>
    public static List<FeatureName>? StandardFeatureNames(uint version, uint clusterBits) =>
        version >= 3 && clusterBits >= 13 ? [.. FeatureNameTable.Known] : null;

    /// <summary>A deep copy.</summary>
    public Qcow2HeaderCluster Clone()
    {
        var copy = new Qcow2HeaderCluster
        {
            Header = Header.Clone(),
            BackingFile = BackingFile,
            BackingFormat = BackingFormat,
            DataFile = DataFile,
            FeatureNames = FeatureNames is null ? null : [.. FeatureNames],
            Bitmaps = Bitmaps,
            Encryption = Encryption,
        };
        foreach (var ext in UnknownExtensions)
        {
            copy.UnknownExtensions.Add(ext with { Data = (byte[])ext.Data.Clone() });
        }
        return copy;
    }
}
