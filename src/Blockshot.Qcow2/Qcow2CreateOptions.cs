using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2;

/// <summary>Compatibility level of a new image.</summary>
public enum Qcow2Compat
{
    /// <summary>Version 3 ("1.1"): feature bits, zero clusters, refcount widths, extensions.</summary>
    V3,

    /// <summary>Version 2 ("0.10"): readable by old software; no zero clusters.</summary>
    V2,
}

/// <summary>How much of a new image is allocated up front.</summary>
public enum Qcow2Preallocation
{
    /// <summary>Nothing beyond the header, refcount structures and L1 table.</summary>
    Off,

    /// <summary>Every L2 table and data cluster is allocated; data is not written.</summary>
    Metadata,

    /// <summary>As metadata, and the data clusters are reserved with fallocate.</summary>
    Falloc,

    /// <summary>As metadata, and the data clusters are written with zeros.</summary>
    Full,
}

/// <summary>Options of <see cref="Qcow2Image.CreateAsync"/>; the defaults match the reference tool's.</summary>
public sealed record Qcow2CreateOptions
{
    /// <summary>Cluster size in bytes: a power of two from 512 to 2 MiB (default 64 KiB).</summary>
    public int ClusterSize { get; init; } = 65536;

    /// <summary>Compatibility level (default version 3).</summary>
    public Qcow2Compat Compat { get; init; } = Qcow2Compat.V3;

    /// <summary>Refcount width: 1, 2, 4, 8, 16, 32 or 64 bits (default 16).</summary>
    public int RefcountBits { get; init; } = 16;

    /// <summary>Use extended L2 entries with 32 subclusters per cluster (clusters of 16 KiB or more).</summary>
    public bool ExtendedL2 { get; init; }

    /// <summary>Compression type of compressed clusters (default deflate).</summary>
    public CompressionType CompressionType { get; init; } = CompressionType.Deflate;

    /// <summary>Postpone refcount updates while the image is marked dirty.</summary>
    public bool LazyRefcounts { get; init; }

    /// <summary>Preallocation mode (default off).</summary>
    public Qcow2Preallocation Preallocation { get; init; }

    /// <summary>Backing file name as stored in the image (relative names resolve beside the image).</summary>
    public string? BackingFile { get; init; }

    /// <summary>Backing format name ("qcow2", "raw"); required with a backing file.</summary>
    public string? BackingFormat { get; init; }

    /// <summary>
    /// Open the backing file to check it and take its size when none is given (default). Off creates the
    /// image without touching the backing file, which then need not exist yet.
    /// </summary>
    public bool OpenBackingFile { get; init; } = true;

    /// <summary>External data file to create and use for guest data.</summary>
    public string? DataFile { get; init; }

    /// <summary>Keep the external data file a consistent raw image (forces metadata preallocation).</summary>
    public bool DataFileRaw { get; init; }

    /// <summary>
    /// Take the image locks while creating (default): a file another process is using is refused before
    /// it is truncated, and the backing file is opened with the read lock.
    /// </summary>
    public bool Locking { get; init; } = true;

    /// <summary>Replace an existing file at the path (default, as the reference tool does).</summary>
    public bool Overwrite { get; init; } = true;

    /// <summary>
    /// Skip the final fdatasync of the new image (cache mode unsafe: a convert that does not flush its
    /// target at the end has no use for a durable empty image at the start).
    /// </summary>
    public bool NoFlush { get; init; }
}
