using System.Buffers.Binary;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>
    /// Changes the backing file name and format stored in the header (an unsafe rebase: no data is
    /// copied). Null removes the backing file. Takes effect when the image is next opened.
    /// </summary>
    public async ValueTask ChangeBackingFileAsync(string? backingFile, string? backingFormat)
    {
        CheckWritable();
        if (backingFile is not null && string.IsNullOrEmpty(backingFormat))
        {
            Qcow2Error.Argument("Backing file specified without backing format");
        }
        if (backingFile is not null && DataFileRaw)
        {
            Qcow2Error.Argument("a raw external data file cannot be combined with a backing file");
        }
        await WholeImageAsync(async () =>
        {
            var saved = (_hc.BackingFile, _hc.BackingFormat);
            _hc.BackingFile = backingFile;
            _hc.BackingFormat = backingFile is null ? null : backingFormat;
            if (_hc.SerializedLength > _g.ClusterSize || (backingFormat?.Length ?? 0) > Qcow2Constants.MaxBackingFormatBytes)
            {
                (_hc.BackingFile, _hc.BackingFormat) = saved;
                Qcow2Error.Argument("the backing file name does not fit in the image header");
            }
            await FlushMetadataAsync().ConfigureAwait(false);
            await RewriteHeaderAsync().ConfigureAwait(false);
        }).ConfigureAwait(false);
    }

    /// <summary>Turns lazy refcounts on or off (version 3 only); turning them off first makes refcounts consistent.</summary>
    internal ValueTask SetLazyRefcountsAsync(bool on) => WholeImageAsync(async () =>
    {
        if (!IsV3)
        {
            Qcow2Error.Argument("Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)");
        }
        await FlushMetadataAsync().ConfigureAwait(false);
        if (!on && (_hc.Header.Incompatible & IncompatibleFeatures.Dirty) != 0)
        {
            _hc.Header.Incompatible &= ~IncompatibleFeatures.Dirty;
            await WriteIncompatibleAsync().ConfigureAwait(false);
            _dirtyMarked = false;
        }
        _hc.Header.Compatible = on ? _hc.Header.Compatible | CompatibleFeatures.LazyRefcounts : _hc.Header.Compatible & ~CompatibleFeatures.LazyRefcounts;
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, (ulong)_hc.Header.Compatible);
        await WriteHeaderBytesAsync(80, bytes).ConfigureAwait(false);
        _refcounts.Lazy = on;
    });

    /// <summary>Rewrites a version 2 header as version 3.</summary>
    internal ValueTask UpgradeToV3Async() => WholeImageAsync(async () =>
    {
        if (IsV3)
        {
            return;
        }
        await FlushMetadataAsync().ConfigureAwait(false);
        var h = _hc.Header;
        h.Version = 3;
        h.HeaderLength = Qcow2Constants.V3HeaderLength;
        h.ExtraFields = new byte[Qcow2Constants.V3HeaderLength - 105];
        h.RefcountOrder = 4;
        h.CompressionType = CompressionType.Deflate;
        if (_hc.SerializedLength + FeatureNameTable.EntrySize * FeatureNameTable.Known.Count + 8 > _g.ClusterSize)
        {
            h.Version = 2;
            h.HeaderLength = Qcow2Constants.V2HeaderLength;
            h.ExtraFields = [];
            Qcow2Error.Argument("the version 3 header does not fit in the first cluster");
        }
        await RewriteHeaderAsync().ConfigureAwait(false);
    });

    /// <summary>
    /// Rewrites a version 3 image as version 2: zero clusters become deallocated (no backing file) or
    /// real zero data, lazy refcounts are turned off. Refused for features version 2 cannot express.
    /// </summary>
    internal ValueTask DowngradeToV2Async() => WholeImageAsync(async () =>
    {
        if (!IsV3)
        {
            return;
        }
        var h = _hc.Header;
        if (h.RefcountOrder != 4)
        {
            Qcow2Error.Unsupported("Cannot downgrade an image with refcount_bits other than 16");
        }
        if (_g.ExtendedL2 || HasDataFile || h.CompressionType != CompressionType.Deflate)
        {
            Qcow2Error.Unsupported("Cannot downgrade an image with extended L2 entries, an external data file or zstd compression");
        }
        if (_bitmaps.Length > 0)
        {
            Qcow2Error.Unsupported("Cannot downgrade an image with bitmaps");
        }
        if (_snapshots.Count > 0)
        {
            Qcow2Error.Unsupported("Cannot downgrade an image with internal snapshots");
        }
        if ((h.Incompatible & ~IncompatibleFeatures.Dirty) != 0)
        {
            Qcow2Error.Unsupported("Cannot downgrade an image with incompatible features set");
        }
        await ExpandZeroClustersAsync().ConfigureAwait(false);
        await FlushMetadataAsync().ConfigureAwait(false);
        h.Version = 2;
        h.HeaderLength = Qcow2Constants.V2HeaderLength;
        h.ExtraFields = [];
        h.Incompatible = 0;
        h.Compatible = 0;
        h.Autoclear = 0;
        h.RefcountOrder = 4;
        _refcounts.Lazy = false;
        _dirtyMarked = false;
        await RewriteHeaderAsync().ConfigureAwait(false);
    });

    private async ValueTask ExpandZeroClustersAsync()
    {
        var zeros = new byte[_g.ClusterSize];
        var entries = new L2Entry[_g.SliceEntries];
        for (var i = 0; i < _l1.Length; i++)
        {
            var l2 = await L2TableOffsetAsync(i).ConfigureAwait(false);
            if (l2 == 0)
            {
                continue;
            }
            l2 = await EnsureL2TableAsync(i).ConfigureAwait(false);
            for (var s = 0; s < _g.L2Entries; s += _g.SliceEntries)
            {
                await ReadEntriesAsync(l2, s, _g.SliceEntries, entries).ConfigureAwait(false);
                var changed = false;
                for (var k = 0; k < entries.Length; k++)
                {
                    var e = entries[k];
                    var type = e.Classify(false, false);
                    if (type is not (ClusterType.ZeroPlain or ClusterType.ZeroAllocated))
                    {
                        continue;
                    }
                    if (type == ClusterType.ZeroAllocated && e.IsCopied)
                    {
                        await _file.WriteAsync(e.HostOffset, zeros).ConfigureAwait(false);
                        entries[k] = new L2Entry(L2Entry.Copied | (ulong)e.HostOffset);
                    }
                    else if (_backing is null && _hc.BackingFile is null)
                    {
                        entries[k] = default;
                        await FreeEntryAsync(e).ConfigureAwait(false);
                    }
                    else
                    {
                        var host = await _refcounts.AllocateContiguousAsync(1).ConfigureAwait(false);
                        await _file.WriteAsync(host, zeros).ConfigureAwait(false);
                        entries[k] = new L2Entry(L2Entry.Copied | (ulong)host);
                        _l2Cache.DependsOnFlush = true;
                        await FreeEntryAsync(e).ConfigureAwait(false);
                    }
                    changed = true;
                }
                if (changed)
                {
                    await WriteEntriesAsync(l2, s, entries).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// Rewrites the refcount structure with 2^<paramref name="order"/>-bit entries and switches the
    /// header to it in one write. The node cannot be used afterwards (its caches describe the old
    /// structure); the old structure is left as leaked clusters for a leak repair to reclaim.
    /// </summary>
    internal ValueTask ChangeRefcountOrderAsync(int order) => WholeImageAsync(async () =>
    {
        if (!IsV3)
        {
            Qcow2Error.Argument("Different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)");
        }
        if (order == _g.RefcountOrder)
        {
            return;
        }
        await StoreBitmapsAsync().ConfigureAwait(false);
        await FlushMetadataAsync().ConfigureAwait(false);
        var st = new CheckState { Result = new Qcow2CheckResult { Filename = Path }, Refs = new ReferenceCounts(_g.ClustersFor(_file.Length)) };
        await CalculateRefcountsAsync(st).ConfigureAwait(false);
        if (st.Result.Corruptions > 0 || st.Rebuild)
        {
            Qcow2Error.Refused("the image has corruptions; repair it before changing the refcount width");
        }
        var max = RefcountBlock.MaxValue(order);
        for (long c = 0; c < st.Refs.Length; c++)
        {
            if (st.Refs.Counts[c] > max)
            {
                Qcow2Error.Argument($"cluster 0x{c << _g.ClusterBits:x} has {st.Refs.Counts[c]} references, more than {1 << order}-bit refcounts hold");
            }
        }
        var (tableOffset, tableClusters) = await WriteRefcountStructureAsync(st.Refs, order).ConfigureAwait(false);
        _hc.Header.RefcountOrder = (uint)order;
        _hc.Header.RefcountTableOffset = (ulong)tableOffset;
        _hc.Header.RefcountTableClusters = (uint)tableClusters;
        await RewriteHeaderAsync().ConfigureAwait(false);
        _refcountCache.Clear();
        _closed = true;
    });

    /// <summary>Runs <paramref name="op"/> holding every cluster and the metadata lock.</summary>
    private async ValueTask WholeImageAsync(Func<ValueTask> op)
    {
        CheckWritable();
        using (await _ranges.AcquireAsync(0, long.MaxValue).ConfigureAwait(false))
        {
            await _meta.WaitAsync().ConfigureAwait(false);
            try
            {
                CheckWritable();
                await op().ConfigureAwait(false);
            }
            finally
            {
                _meta.Release();
            }
        }
    }
}
