using Blockshot.Core;

namespace Blockshot.Qcow2;

/// <summary>Opens the backing file of an image: its resolved path and format name (null when unknown).</summary>
public delegate ValueTask<BlockNode> BackingOpener(string path, string? format);

/// <summary>How to open a qcow2 image.</summary>
public sealed record Qcow2OpenOptions
{
    /// <summary>Open without writing anything to the image (dirty images are then read as they are).</summary>
    public bool ReadOnly { get; init; }

    /// <summary>
    /// Take the image locks qemu also takes (default), on the image, its data file and every backing
    /// file (those read-only), so no two writers, ours or qemu's, share an image. Off is the equivalent
    /// of qemu's force-share.
    /// </summary>
    public bool Locking { get; init; } = true;

    /// <summary>
    /// Never wait for the disk: fdatasync is skipped everywhere, for flushes and for the crash-ordering of
    /// metadata alike (the reference tool's cache=unsafe). Data reaches the disk when the host writes it
    /// back; a crash before then can leave the image inconsistent. Meant for copies that are simply
    /// redone after a crash, such as a convert target.
    /// </summary>
    public bool NoFlush { get; init; }

    /// <summary>Open the backing chain (default). Without it, unallocated clusters read as zeros.</summary>
    public bool OpenBacking { get; init; } = true;

    /// <summary>
    /// Opens backing files; by default qcow2 files open as read-only <see cref="Qcow2Node"/> and anything
    /// else as a read-only raw file (<c>RawFileNode</c>), both with the image locks unless
    /// <see cref="Locking"/> is off. Lets a caller substitute its own drivers.
    /// </summary>
    public BackingOpener? BackingOpener { get; init; }

    /// <summary>Path of the external data file, overriding the name stored in the image.</summary>
    public string? DataFile { get; init; }

    /// <summary>Largest L2 cache in bytes (default 32 MiB; never more than the image needs).</summary>
    public long L2CacheBytes { get; init; } = 32L << 20;

    /// <summary>Refcount cache size in bytes (default 1 MiB, at least four clusters).</summary>
    public long RefcountCacheBytes { get; init; } = 1L << 20;

    /// <summary>
    /// Repair a dirty image on a read-write open (default), as the format requires before writing. When
    /// false a dirty image opens read-write only for an explicit check.
    /// </summary>
    public bool RepairDirty { get; init; } = true;

    /// <summary>Deepest backing chain accepted (guards against loops).</summary>
    public int MaxBackingDepth { get; init; } = 64;

    /// <summary>
    /// Open the state of this internal snapshot (id or name) instead of the active one; read-only.
    /// </summary>
    public string? Snapshot { get; init; }

    /// <summary>Internal: open for check/repair (a corrupt image may be opened read-write, nothing is repaired on open).</summary>
    internal bool ForCheck { get; init; }

    internal int Depth { get; init; }
}
