using System.Buffers.Binary;
using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Qcow2.Format;
using Blockshot.Qcow2.Internal;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>
    /// Opens an image. Read-write opens repair a dirty image, clear unknown auto-clear bits and refuse
    /// an image marked corrupt; read-only opens write nothing.
    /// </summary>
    public static async ValueTask<Qcow2Node> OpenAsync(string path, Qcow2OpenOptions? options = null)
    {
        options ??= new Qcow2OpenOptions();
        var readOnly = options.ReadOnly;
        var file = ImageFile.Open(path, writable: !readOnly, options.Locking);
        file.SyncEnabled = !options.NoFlush;
        ImageFile? dataFile = null;
        BlockNode? backing = null;
        Qcow2Node? node = null;
        try
        {
            var hc = await ReadHeaderClusterAsync(file).ConfigureAwait(false);
            var h = hc.Header;
            ValidateFeatures(hc, readOnly, options);
            var geometry = new Geometry((int)h.ClusterBits, (h.Incompatible & IncompatibleFeatures.ExtendedL2) != 0, (int)h.RefcountOrder);
            ValidateTables(h, geometry);

            var l1 = await ReadTableAsync(file, (long)h.L1TableOffset, (int)h.L1Size).ConfigureAwait(false);
            var reftableEntries = (int)(((long)h.RefcountTableClusters << geometry.ClusterBits) / 8);
            var reftable = await ReadTableAsync(file, (long)h.RefcountTableOffset, reftableEntries).ConfigureAwait(false);
            var snapshots = await ReadSnapshotTableAsync(file, (long)h.SnapshotsOffset, (int)h.SnapshotCount).ConfigureAwait(false);
            if (options.Snapshot is { } wanted)
            {
                if (!readOnly)
                {
                    Qcow2Error.Argument("a snapshot can only be opened read-only");
                }
                var sn = snapshots.Find(s => s.Id == wanted) ?? snapshots.Find(s => s.Name == wanted)
                    ?? throw new BlockException(BlockError.Invalid, $"qcow2: snapshot '{wanted}' not found");
                if ((sn.L1TableOffset & (ulong)geometry.ClusterMask) != 0 || sn.L1Size > Qcow2Constants.MaxL1Bytes / 8)
                {
                    Qcow2Error.Invalid($"snapshot '{sn.Name}' has an invalid L1 table");
                }
                l1 = await ReadTableAsync(file, (long)sn.L1TableOffset, (int)sn.L1Size).ConfigureAwait(false);
                var snapshotSize = sn.DiskSize is { } d ? (long)d : (long)h.Size;
                if (geometry.L1EntriesFor(snapshotSize) > l1.Length)
                {
                    Qcow2Error.Invalid($"snapshot '{sn.Name}' has an L1 table too small for its disk size");
                }
                h.Size = (ulong)snapshotSize;
            }

            var imageDir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? ".";
            if ((h.Incompatible & IncompatibleFeatures.ExternalDataFile) != 0)
            {
                var name = options.DataFile ?? hc.DataFile;
                if (string.IsNullOrEmpty(name))
                {
                    Qcow2Error.Invalid("'data-file' is required for this image");
                }
                dataFile = ImageFile.Open(ResolveDataFile(imageDir, name), writable: !readOnly, options.Locking);
                dataFile.SyncEnabled = !options.NoFlush;
            }
            if (options.OpenBacking && hc.BackingFile is { Length: > 0 } backingName)
            {
                // Relative to the image path as given, as the reference tools combine them (names print alike).
                var backingPath = System.IO.Path.IsPathRooted(backingName) ? backingName
                    : System.IO.Path.Combine(System.IO.Path.GetDirectoryName(path) ?? "", backingName);
                backing = await OpenBackingAsync(backingPath, hc.BackingFormat, options).ConfigureAwait(false);
            }

            node = new Qcow2Node(path, file, dataFile, hc, geometry, readOnly, l1, reftable, snapshots, backing, options);
            node._corrupt = (h.Incompatible & IncompatibleFeatures.Corrupt) != 0;
            node._dirtyMarked = (h.Incompatible & IncompatibleFeatures.Dirty) != 0;
            await node.LoadBitmapsAsync().ConfigureAwait(false);
            if (!readOnly)
            {
                node.RegisterMetadata();
                await node.FinishReadWriteOpenAsync(options).ConfigureAwait(false);
            }
            return node;
        }
        catch
        {
            if (node is not null)
            {
                node._closed = true;
                await node.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                file.Dispose();
                dataFile?.Dispose();
                if (backing is not null)
                {
                    await backing.DisposeAsync().ConfigureAwait(false);
                }
            }
            throw;
        }
    }

    /// <summary>
    /// A relative data file name is looked up beside the image first, then (as the reference tools do)
    /// relative to the working directory.
    /// </summary>
    private static string ResolveDataFile(string imageDir, string name)
    {
        if (System.IO.Path.IsPathRooted(name))
        {
            return name;
        }
        var besideImage = System.IO.Path.GetFullPath(System.IO.Path.Combine(imageDir, name));
        return File.Exists(besideImage) || !File.Exists(name) ? besideImage : System.IO.Path.GetFullPath(name);
    }

    internal static async ValueTask<Qcow2HeaderCluster> ReadHeaderClusterAsync(ImageFile file)
    {
        var first = new byte[4096];
        await file.ReadAsync(0, first).ConfigureAwait(false);
        var header = Qcow2Header.Parse(first);
        if (header.ClusterBits is < Qcow2Constants.MinClusterBits or > Qcow2Constants.MaxClusterBits)
        {
            Qcow2Error.Unsupported($"unsupported cluster size: 2^{header.ClusterBits}");
        }
        var cluster = new byte[1 << (int)header.ClusterBits];
        await file.ReadAsync(0, cluster).ConfigureAwait(false);
        return Qcow2HeaderCluster.Parse(cluster);
    }

    private static void ValidateFeatures(Qcow2HeaderCluster hc, bool readOnly, Qcow2OpenOptions options)
    {
        var h = hc.Header;
        if (h.Version != 3 && (h.Incompatible != 0 || h.Compatible != 0 || h.Autoclear != 0))
        {
            Qcow2Error.Invalid("version 2 header carries feature bits");
        }
        var unknown = (ulong)(h.Incompatible & ~IncompatibleFeatures.Known);
        if (unknown != 0)
        {
            var names = hc.FeatureNames ?? [];
            Qcow2Error.Unsupported("Unsupported qcow2 feature(s): " + FeatureNameTable.Describe(names, FeatureKind.Incompatible, unknown));
        }
        if (h.CryptMethod != 0)
        {
            Qcow2Error.Unsupported($"encrypted images are not supported (crypt_method {h.CryptMethod})");
        }
        if ((h.Incompatible & IncompatibleFeatures.Corrupt) != 0 && !readOnly && !options.ForCheck)
        {
            Qcow2Error.Refused("Image is corrupt; cannot be opened read/write");
        }
        if (h.RefcountOrder > Qcow2Constants.MaxRefcountOrder)
        {
            Qcow2Error.Invalid("Reference count entry width too large; may not exceed 64 bits");
        }
        if ((h.Incompatible & IncompatibleFeatures.ExtendedL2) != 0 && h.ClusterBits < Qcow2Constants.MinExtendedL2ClusterBits)
        {
            Qcow2Error.Invalid($"extended L2 entries require at least 16 KiB clusters (cluster_bits {h.ClusterBits})");
        }
        var typeBit = (h.Incompatible & IncompatibleFeatures.CompressionType) != 0;
        if (typeBit && h.CompressionType == CompressionType.Deflate)
        {
            Qcow2Error.Invalid("compression type bit is set but compression_type is deflate");
        }
        if (!typeBit && h.CompressionType != CompressionType.Deflate)
        {
            Qcow2Error.Invalid($"compression_type {(int)h.CompressionType} requires the compression type bit");
        }
        if (h.CompressionType is not (CompressionType.Deflate or CompressionType.Zstd))
        {
            Qcow2Error.Unsupported($"unknown compression type {(int)h.CompressionType}");
        }
        if ((h.Autoclear & AutoclearFeatures.DataFileRaw) != 0 && (h.Incompatible & IncompatibleFeatures.ExternalDataFile) == 0)
        {
            Qcow2Error.Invalid("data-file-raw requires a data file");
        }
        if ((h.Autoclear & AutoclearFeatures.DataFileRaw) != 0 && hc.BackingFile is not null)
        {
            Qcow2Error.Invalid("a raw external data file cannot be combined with a backing file");
        }
        if (h.Size > (1UL << 62))
        {
            Qcow2Error.Invalid($"virtual size {h.Size} is too large");
        }
    }

    private static void ValidateTables(Qcow2Header h, Geometry g)
    {
        var clusterMask = (ulong)g.ClusterMask;
        if ((ulong)h.L1Size * 8 > Qcow2Constants.MaxL1Bytes)
        {
            Qcow2Error.Invalid("Active L1 table too large");
        }
        var needed = g.L1EntriesFor((long)h.Size);
        if (needed > int.MaxValue / 8)
        {
            Qcow2Error.Invalid("Image is too big");
        }
        if (h.L1Size < needed)
        {
            Qcow2Error.Invalid("L1 table is too small");
        }
        if (h.L1Size > 0 && ((h.L1TableOffset & clusterMask) != 0 || h.L1TableOffset > long.MaxValue / 2))
        {
            Qcow2Error.Invalid("Invalid L1 table offset");
        }
        if ((ulong)h.RefcountTableClusters << g.ClusterBits > Qcow2Constants.MaxRefcountTableBytes)
        {
            Qcow2Error.Invalid("Reference count table too large");
        }
        if (h.RefcountTableOffset == 0 || h.RefcountTableClusters == 0)
        {
            Qcow2Error.Invalid("Image does not contain a reference count table");
        }
        if ((h.RefcountTableOffset & clusterMask) != 0 || h.RefcountTableOffset > long.MaxValue / 2)
        {
            Qcow2Error.Invalid("Invalid reference count table offset");
        }
        if (h.SnapshotCount > Qcow2Constants.MaxSnapshots)
        {
            Qcow2Error.Invalid("Too many snapshots");
        }
        if (h.SnapshotCount > 0 && ((h.SnapshotsOffset & clusterMask) != 0 || h.SnapshotsOffset > long.MaxValue / 2))
        {
            Qcow2Error.Invalid("Invalid snapshot table offset");
        }
    }

    internal static async ValueTask<ulong[]> ReadTableAsync(ImageFile file, long offset, int entries)
    {
        var table = new ulong[entries];
        if (entries == 0)
        {
            return table;
        }
        var bytes = new byte[entries * 8];
        await file.ReadAsync(offset, bytes).ConfigureAwait(false);
        for (var i = 0; i < entries; i++)
        {
            table[i] = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * 8));
        }
        return table;
    }

    internal static async ValueTask<List<SnapshotEntry>> ReadSnapshotTableAsync(ImageFile file, long offset, int count)
    {
        var list = new List<SnapshotEntry>(Math.Min(count, 1024));
        if (count == 0)
        {
            return list;
        }
        var chunk = new byte[Math.Min(Qcow2Constants.MaxSnapshotTableBytes, Math.Max(4096, count * 64))];
        await file.ReadAsync(offset, chunk).ConfigureAwait(false);
        var pos = 0;
        for (var i = 0; i < count; i++)
        {
            // An entry is at most 40 + 1024 + 2 * 65535 bytes; make sure that much is loaded.
            var needed = pos + 40 + Qcow2Constants.MaxSnapshotExtraData + (2 * 65535) + 8;
            if (needed > chunk.Length && chunk.Length < Qcow2Constants.MaxSnapshotTableBytes)
            {
                var bigger = new byte[Math.Min(Qcow2Constants.MaxSnapshotTableBytes, Math.Max(needed, chunk.Length * 2))];
                await file.ReadAsync(offset, bigger).ConfigureAwait(false);
                chunk = bigger;
            }
            list.Add(SnapshotEntry.Parse(chunk.AsSpan(pos), out var consumed));
            pos += consumed;
            if (pos > Qcow2Constants.MaxSnapshotTableBytes)
            {
                Qcow2Error.Invalid("snapshot table too large");
            }
        }
        return list;
    }

    private static async ValueTask<BlockNode> OpenBackingAsync(string path, string? format, Qcow2OpenOptions options)
    {
        if (options.Depth + 1 > options.MaxBackingDepth)
        {
            Qcow2Error.Invalid($"backing chain deeper than {options.MaxBackingDepth} images (a loop?)");
        }
        if (options.BackingOpener is { } opener)
        {
            return await opener(path, format).ConfigureAwait(false);
        }
        if (format is null)
        {
            format = await ProbeFormatAsync(path, options.Locking).ConfigureAwait(false);
        }
        switch (format)
        {
            case "qcow2":
                return await OpenAsync(path, options with
                {
                    ReadOnly = true,
                    DataFile = null,
                    ForCheck = false,
                    Snapshot = null,
                    Depth = options.Depth + 1,
                }).ConfigureAwait(false);
            case "raw":
                return RawFileNode.Open(path, new RawFileOptions { ReadOnly = true, Locking = options.Locking });
            default:
                Qcow2Error.Unsupported($"backing format '{format}' is not supported");
                return null!;
        }
    }

    private static async ValueTask<string> ProbeFormatAsync(string path, bool locking)
    {
        using var f = ImageFile.Open(path, writable: false, locking);
        var magic = new byte[4];
        await f.ReadAsync(0, magic).ConfigureAwait(false);
        return BinaryPrimitives.ReadUInt32BigEndian(magic) == Qcow2Constants.Magic ? "qcow2" : "raw";
    }

    private void RegisterMetadata()
    {
        _metadata.Add(0, _g.ClusterSize);
        _metadata.Add(_l1Offset, (long)_l1.Length * 8);
        foreach (var e in _l1)
        {
            var l2 = L1Entry.Offset(e);
            if (l2 != 0)
            {
                _metadata.Add(l2, _g.ClusterSize);
            }
        }
        _metadata.Add(_refcounts.TableOffset, (long)_refcounts.TableClusters << _g.ClusterBits);
        foreach (var e in _refcounts.Table)
        {
            var block = (long)(e & RefcountTableEntry.OffsetMask);
            if (block != 0)
            {
                _metadata.Add(block, _g.ClusterSize);
            }
        }
        _metadata.Add((long)_hc.Header.SnapshotsOffset, SnapshotTableBytes(_snapshots));
        long budget = 1 << 22;
        foreach (var s in _snapshots)
        {
            var bytes = (long)s.L1Size * 8;
            if (bytes > budget)
            {
                break;
            }
            budget -= bytes;
            _metadata.Add((long)s.L1TableOffset, bytes);
        }
        RegisterBitmapMetadata();
    }

    private static long SnapshotTableBytes(List<SnapshotEntry> snapshots)
    {
        long n = 0;
        foreach (var s in snapshots)
        {
            n += s.SerializedLength;
        }
        return n;
    }

    private async ValueTask FinishReadWriteOpenAsync(Qcow2OpenOptions options)
    {
        var h = _hc.Header;
        if ((h.Incompatible & IncompatibleFeatures.Dirty) != 0 && !options.ForCheck)
        {
            if (!options.RepairDirty)
            {
                Qcow2Error.Refused("image is dirty (refcounts may be inconsistent); repair it first");
            }
            await RepairDirtyOnOpenAsync().ConfigureAwait(false);
        }
        var unknownAutoclear = h.Autoclear & ~AutoclearFeatures.Known;
        if (unknownAutoclear != 0)
        {
            _hc.Header.Autoclear &= AutoclearFeatures.Known;
            await RewriteHeaderAsync().ConfigureAwait(false);
        }
        await MarkBitmapsInUseAsync().ConfigureAwait(false);
    }
}
