using System.Buffers.Binary;
using System.Numerics;
using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Qcow2.Format;
using Blockshot.Qcow2.Internal;

namespace Blockshot.Qcow2;

/// <summary>
/// Whole-image operations: create, open, info, check and repair, amend. The block node itself is
/// <see cref="Qcow2Node"/>.
/// </summary>
public static partial class Qcow2Image
{
    /// <summary>
    /// Creates an image of <paramref name="size"/> bytes (rounded up to 512; a negative size takes the
    /// backing file's size). The layout is header, refcount table, refcount blocks, L1 table, then with
    /// preallocation the L2 tables and data clusters.
    /// </summary>
    public static async ValueTask CreateAsync(string path, long size, Qcow2CreateOptions? options = null)
    {
        options ??= new Qcow2CreateOptions();
        Validate(options);
        var imageDir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        if (options.BackingFile is { } backingName && options.OpenBackingFile)
        {
            var backingPath = Path.IsPathRooted(backingName) ? backingName : Path.Combine(imageDir, backingName);
            long backingSize;
            try
            {
                await using var backing = await OpenBackingForCreateAsync(backingPath, options.BackingFormat!, options.Locking).ConfigureAwait(false);
                backingSize = backing.Size;
            }
            catch (BlockException e)
            {
                throw new BlockException(BlockError.Invalid, $"qcow2: Could not open backing image '{backingName}': {e.Message}", e);
            }
            if (size < 0)
            {
                size = backingSize;
            }
        }
        if (size < 0)
        {
            Qcow2Error.Argument("Image creation needs a size parameter");
        }
        size = Align.Up(size, 512);

        var clusterBits = BitOperations.Log2((uint)options.ClusterSize);
        var order = BitOperations.Log2((uint)options.RefcountBits);
        var g = new Geometry(clusterBits, options.ExtendedL2, order);
        var dataFile = options.DataFile is not null;
        var prealloc = options.Preallocation != Qcow2Preallocation.Off || options.DataFileRaw;

        var l1Entries = g.L1EntriesFor(size);
        if (l1Entries * 8 > Qcow2Constants.MaxL1Bytes)
        {
            Qcow2Error.Argument($"image size {size} is too large for {options.ClusterSize}-byte clusters");
        }
        var l1Clusters = g.ClustersFor(l1Entries * 8);
        var l2Tables = prealloc ? l1Entries : 0;
        var dataClusters = prealloc && !dataFile ? g.ClustersFor(size) : 0;
        var fixedClusters = 1 + l1Clusters + l2Tables + dataClusters;
        long rt = 1, rb = 1;
        while (true)
        {
            var total = fixedClusters + rt + rb;
            var needRb = (total + g.RefcountsPerBlock - 1) / g.RefcountsPerBlock;
            var needRt = g.ClustersFor(needRb * 8);
            if (needRb == rb && needRt == rt)
            {
                break;
            }
            rb = needRb;
            rt = needRt;
        }
        if (rt << clusterBits > Qcow2Constants.MaxRefcountTableBytes)
        {
            Qcow2Error.Argument("image too large for its refcount table");
        }
        var totalClusters = fixedClusters + rt + rb;
        long rtOffset = 1L << clusterBits;
        var rbOffset = rtOffset + (rt << clusterBits);
        var l1Offset = l1Entries == 0 ? 0 : rbOffset + (rb << clusterBits);
        var l2Offset = rbOffset + ((rb + l1Clusters) << clusterBits);
        var dataOffset = l2Offset + (l2Tables << clusterBits);

        using var file = ImageFile.Create(path, options.Overwrite, options.Locking);
        ImageFile? data = null;
        try
        {
            if (dataFile)
            {
                data = ImageFile.Create(options.DataFile!, overwrite: true, options.Locking);
                data.SetLength(size);
            }

            // Refcount table and blocks.
            var table = new byte[rt << clusterBits];
            for (var i = 0; i < rb; i++)
            {
                BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(i * 8), (ulong)(rbOffset + ((long)i << clusterBits)));
            }
            await file.WriteAsync(rtOffset, table).ConfigureAwait(false);
            var block = new byte[g.ClusterSize];
            for (long b = 0; b < rb; b++)
            {
                block.AsSpan().Clear();
                var first = b * g.RefcountsPerBlock;
                var count = Math.Min(g.RefcountsPerBlock, totalClusters - first);
                for (var i = 0; i < count; i++)
                {
                    RefcountBlock.Set(block, i, order, 1);
                }
                await file.WriteAsync(rbOffset + (b << clusterBits), block).ConfigureAwait(false);
            }

            // L1 (and with preallocation, L2 tables pointing at data clusters).
            if (l1Entries > 0)
            {
                var l1 = new byte[l1Entries * 8];
                if (prealloc)
                {
                    for (var i = 0; i < l1Entries; i++)
                    {
                        BinaryPrimitives.WriteUInt64BigEndian(l1.AsSpan(i * 8), L1Entry.Copied | (ulong)(l2Offset + ((long)i << clusterBits)));
                    }
                }
                await file.WriteAsync(l1Offset, l1).ConfigureAwait(false);
            }
            if (prealloc)
            {
                var guestClusters = g.ClustersFor(size);
                var l2 = new byte[g.ClusterSize];
                for (long t = 0; t < l2Tables; t++)
                {
                    l2.AsSpan().Clear();
                    for (var i = 0; i < g.L2Entries; i++)
                    {
                        var guestCluster = t * g.L2Entries + i;
                        if (guestCluster >= guestClusters)
                        {
                            break;
                        }
                        var host = dataFile ? guestCluster << clusterBits : dataOffset + (guestCluster << clusterBits);
                        new L2Entry(L2Entry.Copied | (ulong)host).Write(l2, i, g.ExtendedL2);
                    }
                    await file.WriteAsync(l2Offset + (t << clusterBits), l2).ConfigureAwait(false);
                }
            }

            // Data clusters: reserved or written as asked.
            var target = dataFile ? data! : file;
            var dataStart = dataFile ? 0 : dataOffset;
            var dataLength = dataFile ? size : dataClusters << clusterBits;
            switch (options.Preallocation)
            {
                case Qcow2Preallocation.Falloc:
                    if (!target.Allocate(dataStart, dataLength))
                    {
                        await WriteZerosAsync(target, dataStart, dataLength).ConfigureAwait(false);
                    }
                    break;
                case Qcow2Preallocation.Full:
                    await WriteZerosAsync(target, dataStart, dataLength).ConfigureAwait(false);
                    break;
                default:
                    if (!dataFile && dataLength > 0)
                    {
                        file.SetLength(dataStart + dataLength);
                    }
                    break;
            }

            // The header last: until it is written the file is not a qcow2 image.
            var hc = BuildHeader(options, g, size, l1Entries, l1Offset, rtOffset, rt);
            var header = new byte[g.ClusterSize];
            hc.WriteTo(header);
            await file.WriteAsync(0, header).ConfigureAwait(false);
            if (l1Entries > 0 && !prealloc)
            {
                // End the file at the end of the L1 table, as the reference tool does.
                file.SetLength(l1Offset + l1Entries * 8);
            }
            else if (!prealloc)
            {
                file.SetLength(rbOffset + (rb << clusterBits));
            }
            if (!options.NoFlush)
            {
                data?.Sync();
                file.Sync();
            }
        }
        finally
        {
            data?.Dispose();
        }
    }

    private static Qcow2HeaderCluster BuildHeader(Qcow2CreateOptions o, Geometry g, long size, long l1Entries, long l1Offset, long rtOffset, long rtClusters)
    {
        var v3 = o.Compat == Qcow2Compat.V3;
        var h = new Qcow2Header
        {
            Version = v3 ? 3u : 2u,
            ClusterBits = (uint)g.ClusterBits,
            Size = (ulong)size,
            L1Size = (uint)l1Entries,
            L1TableOffset = (ulong)l1Offset,
            RefcountTableOffset = (ulong)rtOffset,
            RefcountTableClusters = (uint)rtClusters,
            RefcountOrder = (uint)g.RefcountOrder,
            HeaderLength = (uint)(v3 ? Qcow2Constants.V3HeaderLength : Qcow2Constants.V2HeaderLength),
            ExtraFields = v3 ? new byte[Qcow2Constants.V3HeaderLength - 105] : [],
            CompressionType = o.CompressionType,
        };
        if (v3)
        {
            if (o.DataFile is not null)
            {
                h.Incompatible |= IncompatibleFeatures.ExternalDataFile;
            }
            if (o.CompressionType != CompressionType.Deflate)
            {
                h.Incompatible |= IncompatibleFeatures.CompressionType;
            }
            if (o.ExtendedL2)
            {
                h.Incompatible |= IncompatibleFeatures.ExtendedL2;
            }
            if (o.LazyRefcounts)
            {
                h.Compatible |= CompatibleFeatures.LazyRefcounts;
            }
            if (o.DataFileRaw)
            {
                h.Autoclear |= AutoclearFeatures.DataFileRaw;
            }
        }
        return new Qcow2HeaderCluster
        {
            Header = h,
            BackingFile = o.BackingFile,
            BackingFormat = o.BackingFile is null ? null : o.BackingFormat,
            DataFile = o.DataFile,
            FeatureNames = Qcow2HeaderCluster.StandardFeatureNames(h.Version, h.ClusterBits),
        };
    }

    private static void Validate(Qcow2CreateOptions o)
    {
        if (o.ClusterSize < 512 || o.ClusterSize > (2 << 20) || !BitOperations.IsPow2(o.ClusterSize))
        {
            Qcow2Error.Argument("Cluster size must be a power of two between 512 and 2048k");
        }
        if (o.RefcountBits < 1 || o.RefcountBits > 64 || !BitOperations.IsPow2(o.RefcountBits))
        {
            Qcow2Error.Argument("Refcount width must be a power of two and may not exceed 64 bits");
        }
        if (o.ExtendedL2 && o.ClusterSize < (1 << Qcow2Constants.MinExtendedL2ClusterBits))
        {
            Qcow2Error.Argument("Extended L2 entries are only supported with cluster sizes of at least 16384 bytes");
        }
        if (o.CompressionType is not (CompressionType.Deflate or CompressionType.Zstd))
        {
            Qcow2Error.Argument($"unknown compression type {(int)o.CompressionType}");
        }
        if (o.Compat == Qcow2Compat.V2)
        {
            if (o.RefcountBits != 16)
            {
                Qcow2Error.Argument("Different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)");
            }
            if (o.LazyRefcounts)
            {
                Qcow2Error.Argument("Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)");
            }
            if (o.ExtendedL2)
            {
                Qcow2Error.Argument("Extended L2 entries are only supported with compatibility level 1.1 and above (use compat=1.1 or greater)");
            }
            if (o.DataFile is not null)
            {
                Qcow2Error.Argument("External data files are only supported with compatibility level 1.1 and above (use compat=1.1 or greater)");
            }
            if (o.CompressionType != CompressionType.Deflate)
            {
                Qcow2Error.Argument("Non-zlib compression type is only supported with compatibility level 1.1 and above (use compat=1.1 or greater)");
            }
        }
        if (o.BackingFile is not null && string.IsNullOrEmpty(o.BackingFormat))
        {
            Qcow2Error.Argument("Backing file specified without backing format");
        }
        if (o.BackingFile is null && o.BackingFormat is not null)
        {
            Qcow2Error.Argument("Backing format cannot be used without backing file");
        }
        if (o.BackingFormat is not null && System.Text.Encoding.UTF8.GetByteCount(o.BackingFormat) > Qcow2Constants.MaxBackingFormatBytes)
        {
            Qcow2Error.Argument("backing format name too long");
        }
        if (o.BackingFile is not null && System.Text.Encoding.UTF8.GetByteCount(o.BackingFile) > Qcow2Constants.MaxBackingFileNameBytes)
        {
            Qcow2Error.Argument("Backing file name too long");
        }
        if (o.DataFileRaw && o.DataFile is null)
        {
            Qcow2Error.Argument("data-file-raw requires data-file");
        }
        if (o.DataFileRaw && o.BackingFile is not null)
        {
            Qcow2Error.Argument("Backing file and data-file-raw cannot be used at the same time");
        }
        if (o.BackingFile is not null && o.Preallocation != Qcow2Preallocation.Off && !o.ExtendedL2)
        {
            Qcow2Error.Argument("Backing file and preallocation can only be used at the same time if extended_l2 is on");
        }
    }

    private static async ValueTask<BlockNode> OpenBackingForCreateAsync(string path, string format, bool locking) => format switch
    {
        "qcow2" => await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true, OpenBacking = false, Locking = locking }).ConfigureAwait(false),
        "raw" => RawFileNode.Open(path, new RawFileOptions { ReadOnly = true, Locking = locking }),
        _ => throw new BlockException(BlockError.NotSupported, $"qcow2: backing format '{format}' is not supported"),
    };

    private static async ValueTask WriteZerosAsync(ImageFile file, long offset, long length)
    {
        var zeros = new byte[Math.Min(length, 4 << 20)];
        while (length > 0)
        {
            var n = (int)Math.Min(length, zeros.Length);
            await file.WriteAsync(offset, zeros.AsMemory(0, n)).ConfigureAwait(false);
            offset += n;
            length -= n;
        }
    }
}
