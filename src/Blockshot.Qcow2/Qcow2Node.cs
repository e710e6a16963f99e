using Blockshot.Core;
using Blockshot.Qcow2.Format;
using Blockshot.Qcow2.Internal;

namespace Blockshot.Qcow2;

/// <summary>
/// A qcow2 image as a block node: reads, writes, zeroing, trims, extents and flushes over the image
/// file, with backing chains, compressed and extended-L2 clusters, an external data file, internal
/// snapshots and persistent dirty bitmaps.
/// <para>
/// Locking. <see cref="_meta"/> (one async lock) guards every metadata field and both caches; data I/O
/// runs outside it. <see cref="_ranges"/> orders requests by guest cluster: writes, zeroes and trims hold
/// their cluster-aligned range exclusively, reads hold it shared, so a cluster being allocated or
/// copied is never seen half done and writers to different clusters run in parallel. Whole-image
/// operations (snapshots, resize, bitmaps, close) hold every cluster exclusively, then the metadata lock.
/// </para>
/// </summary>
public sealed partial class Qcow2Node : BlockNode
{
    private readonly SemaphoreSlim _meta = new(1, 1);
    private readonly RangeLock _ranges = new();
    private readonly ImageFile _file;
    private readonly ImageFile? _dataFile;
    private readonly Geometry _g;
    private readonly bool _readOnly;
    private readonly MetadataCache _l2Cache;
    private readonly MetadataCache _refcountCache;
    private readonly RefcountManager _refcounts;
    private readonly MetadataRegions _metadata;
    private readonly BlockNode? _backing;
    private readonly List<BlockStatusContext> _contexts = [];
    private volatile List<BlockStatusContext> _contextList;

    // Guarded by _meta.
    private readonly Qcow2HeaderCluster _hc;
    private ulong[] _l1;
    private long _l1Offset;
    private long _size;
    private List<SnapshotEntry> _snapshots;
    private bool _corrupt;
    private bool _dirtyMarked;
    private bool _closed;

    private Qcow2Node(string path, ImageFile file, ImageFile? dataFile, Qcow2HeaderCluster hc, Geometry geometry,
        bool readOnly, ulong[] l1, ulong[] refcountTable, List<SnapshotEntry> snapshots, BlockNode? backing,
        Qcow2OpenOptions options)
    {
        Path = path;
        _file = file;
        _dataFile = dataFile;
        _hc = hc;
        _g = geometry;
        _readOnly = readOnly;
        _l1 = l1;
        _l1Offset = (long)hc.Header.L1TableOffset;
        _size = (long)hc.Header.Size;
        _snapshots = snapshots;
        _backing = backing;
        _metadata = new MetadataRegions(geometry.ClusterBits);

        var l2Bytes = Math.Min(options.L2CacheBytes, Math.Max(2L * geometry.SliceBytes,
            geometry.ClustersFor(_size) * geometry.L2EntrySize));
        var l2Entries = (int)Math.Clamp(l2Bytes / geometry.SliceBytes, 2, 1 << 20);
        _l2Cache = new MetadataCache("L2", file, geometry.SliceBytes, l2Entries, SyncFilesAsync);
        var rcEntries = (int)Math.Clamp(options.RefcountCacheBytes / geometry.ClusterSize, 4, 1 << 16);
        _refcountCache = new MetadataCache("refcount", file, geometry.ClusterSize, rcEntries, SyncFilesAsync);
        _refcounts = new RefcountManager(file, geometry, _refcountCache, _l2Cache, _metadata, refcountTable,
            (long)hc.Header.RefcountTableOffset, (int)hc.Header.RefcountTableClusters, SwitchRefcountTableAsync);
        _refcounts.Lazy = (hc.Header.Compatible & CompatibleFeatures.LazyRefcounts) != 0;
        _l2Cache.BeforeWrite = CheckMetadataWrite;
        _refcountCache.BeforeWrite = CheckMetadataWrite;
        _contexts.Add(new AllocationDepthContext(this));
        _contextList = _contexts;
    }

    /// <summary>The image file's path.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public override string Kind => "qcow2";

    /// <inheritdoc/>
    public override long Size => Volatile.Read(ref _size);

    /// <summary>True when opened read-only.</summary>
    public bool IsReadOnly => _readOnly;

    /// <summary>The backing node, or null.</summary>
    public BlockNode? Backing => _backing;

    /// <summary>Cluster size in bytes.</summary>
    public int ClusterSize => _g.ClusterSize;

    /// <summary>Subcluster size in bytes (the cluster size without extended L2 entries).</summary>
    public int SubclusterSize => _g.SubclusterSize;

    /// <summary>Refcount width in bits.</summary>
    public int RefcountBits => 1 << _g.RefcountOrder;

    /// <summary>Format version (2 or 3).</summary>
    public int Version => (int)_hc.Header.Version;

    /// <summary>True when the image uses extended L2 entries.</summary>
    public bool ExtendedL2 => _g.ExtendedL2;

    /// <summary>The compression type of compressed clusters.</summary>
    public CompressionType CompressionType => _hc.Header.CompressionType;

    /// <summary>The backing file name as stored in the image, or null.</summary>
    public string? BackingFileName => _hc.BackingFile;

    /// <summary>The backing format as stored in the image, or null.</summary>
    public string? BackingFormat => _hc.BackingFormat;

    /// <summary>The external data file name as stored (or given), or null.</summary>
    public string? DataFileName => _hc.DataFile;

    /// <summary>True when the external data file is a consistent raw image.</summary>
    public bool DataFileRaw => (_hc.Header.Autoclear & AutoclearFeatures.DataFileRaw) != 0;

    /// <summary>True when the image has been found (or was marked) corrupt.</summary>
    public bool IsCorrupt => _corrupt;

    /// <summary>A copy of the current header cluster contents.</summary>
    public Qcow2HeaderCluster HeaderSnapshot() => _hc.Clone();

    /// <inheritdoc/>
    public override IReadOnlyList<BlockStatusContext> StatusContexts => _contextList;

    private bool HasDataFile => _dataFile is not null;

    private ImageFile DataTarget => _dataFile ?? _file;

    private bool IsV3 => _hc.Header.Version >= 3;

    /// <inheritdoc/>
    protected override NodeCapabilities ComputeCapabilities()
    {
        var features = NodeFeatures.Flush | NodeFeatures.Extents | NodeFeatures.MultiConn;
        if (!_readOnly)
        {
            features |= NodeFeatures.Write | NodeFeatures.Fua | NodeFeatures.Trim | NodeFeatures.WriteZeroes | NodeFeatures.Resize;
            if (IsV3 || _backing is null)
            {
                features |= NodeFeatures.FastZero;
            }
        }
        var preferred = Math.Clamp(_g.SubclusterSize, 4096, 65536);
        return new NodeCapabilities(features, MinBlockSize: 1, PreferredBlockSize: preferred);
    }

    /// <inheritdoc/>
    public override string Describe() =>
        _backing is null ? $"qcow2({Path})" : $"qcow2({Path}) → {_backing.Describe()}";

    private async ValueTask SyncFilesAsync()
    {
        if (_readOnly)
        {
            return;
        }
        _dataFile?.Sync();
        _file.Sync();
        await Task.CompletedTask.ConfigureAwait(false);
    }

    private void CheckMetadataWrite(long offset, int length)
    {
        if (offset < _g.ClusterSize)
        {
            Qcow2Error.Corrupt($"refusing to write metadata over the image header (offset 0x{offset:x})");
        }
    }
}
