using System.Text;
using System.Text.Json;

namespace Blockshot.Qcow2;

/// <summary>
/// What the reference tool's <c>info --output=json</c> prints for a qcow2 image, with the same field
/// names in <see cref="ToJson"/>.
/// </summary>
public sealed class Qcow2ImageInfo
{
    /// <summary>The image path as given.</summary>
    public required string Filename { get; init; }

    /// <summary>Virtual disk size in bytes.</summary>
    public required long VirtualSize { get; init; }

    /// <summary>Bytes the image file occupies on disk.</summary>
    public required long ActualSize { get; init; }

    /// <summary>Cluster size in bytes.</summary>
    public required int ClusterSize { get; init; }

    /// <summary>"1.1" (version 3) or "0.10" (version 2).</summary>
    public required string Compat { get; init; }

    /// <summary>"zlib" (deflate) or "zstd".</summary>
    public required string CompressionType { get; init; }

    /// <summary>Lazy refcounts (version 3 only).</summary>
    public bool LazyRefcounts { get; init; }

    /// <summary>Refcount width in bits.</summary>
    public required int RefcountBits { get; init; }

    /// <summary>The corrupt bit (version 3 only).</summary>
    public bool Corrupt { get; init; }

    /// <summary>Extended L2 entries (version 3 only).</summary>
    public bool ExtendedL2 { get; init; }

    /// <summary>External data file name, or null.</summary>
    public string? DataFile { get; init; }

    /// <summary>Whether the external data file is raw (only meaningful with <see cref="DataFile"/>).</summary>
    public bool DataFileRaw { get; init; }

    /// <summary>The dirty bit.</summary>
    public bool DirtyFlag { get; init; }

    /// <summary>Backing file name as stored, or null.</summary>
    public string? BackingFilename { get; init; }

    /// <summary>Backing file name resolved against the image's directory, or null.</summary>
    public string? FullBackingFilename { get; init; }

    /// <summary>Backing format as stored, or null.</summary>
    public string? BackingFilenameFormat { get; init; }

    /// <summary>Persistent bitmaps.</summary>
    public IReadOnlyList<Qcow2BitmapInfo> Bitmaps { get; init; } = [];

    /// <summary>Internal snapshots.</summary>
    public IReadOnlyList<Qcow2SnapshotInfo> Snapshots { get; init; } = [];

    /// <summary>The information as JSON, shaped and ordered like the reference tool's.</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            WriteTo(w);
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Writes the JSON object.</summary>
    public void WriteTo(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        if (Snapshots.Count > 0)
        {
            w.WriteStartArray("snapshots");
            foreach (var s in Snapshots)
            {
                w.WriteStartObject();
                if (s.Icount is { } icount)
                {
                    w.WriteNumber("icount", icount);
                }
                w.WriteNumber("vm-clock-nsec", s.VmClockNanoseconds % 1_000_000_000);
                w.WriteString("name", s.Name);
                w.WriteNumber("date-sec", s.DateSeconds);
                w.WriteNumber("date-nsec", s.DateNanoseconds);
                w.WriteNumber("vm-clock-sec", s.VmClockNanoseconds / 1_000_000_000);
                w.WriteString("id", s.Id);
                w.WriteNumber("vm-state-size", s.VmStateSize);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (BackingFilenameFormat is not null)
        {
            w.WriteString("backing-filename-format", BackingFilenameFormat);
        }
        w.WriteNumber("virtual-size", VirtualSize);
        w.WriteString("filename", Filename);
        w.WriteNumber("cluster-size", ClusterSize);
        w.WriteString("format", "qcow2");
        w.WriteNumber("actual-size", ActualSize);
        w.WriteStartObject("format-specific");
        w.WriteString("type", "qcow2");
        w.WriteStartObject("data");
        w.WriteString("compat", Compat);
        w.WriteString("compression-type", CompressionType);
        if (Compat != "0.10")
        {
            w.WriteBoolean("lazy-refcounts", LazyRefcounts);
            if (Bitmaps.Count > 0)
            {
                w.WriteStartArray("bitmaps");
                foreach (var b in Bitmaps)
                {
                    w.WriteStartObject();
                    w.WriteStartArray("flags");
                    foreach (var f in b.FlagNames)
                    {
                        w.WriteStringValue(f);
                    }
                    w.WriteEndArray();
                    w.WriteString("name", b.Name);
                    w.WriteNumber("granularity", b.Granularity);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
        }
        w.WriteNumber("refcount-bits", RefcountBits);
        if (Compat != "0.10")
        {
            if (DataFile is not null)
            {
                w.WriteString("data-file", DataFile);
                w.WriteBoolean("data-file-raw", DataFileRaw);
            }
            w.WriteBoolean("corrupt", Corrupt);
            w.WriteBoolean("extended-l2", ExtendedL2);
        }
        w.WriteEndObject();
        w.WriteEndObject();
        if (FullBackingFilename is not null)
        {
            w.WriteString("full-backing-filename", FullBackingFilename);
        }
        if (BackingFilename is not null)
        {
            w.WriteString("backing-filename", BackingFilename);
        }
        w.WriteBoolean("dirty-flag", DirtyFlag);
        w.WriteEndObject();
    }
}
