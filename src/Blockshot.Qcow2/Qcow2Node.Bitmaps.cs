using System.Buffers.Binary;
using System.Text;
using Blockshot.Qcow2.Format;
using Blockshot.Qcow2.Internal;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    // The list is replaced, never modified in place, so writers can read it without the metadata lock.
    private volatile BitmapState[] _bitmaps = [];
    private bool _bitmapsChanged;
    private long _bitmapDirectoryOffset;
    private long _bitmapDirectorySize;

    /// <summary>The image's persistent dirty bitmaps.</summary>
    public IReadOnlyList<Qcow2BitmapInfo> Bitmaps
    {
        get
        {
            var list = new List<Qcow2BitmapInfo>();
            foreach (var b in _bitmaps)
            {
                list.Add(new Qcow2BitmapInfo(b.Name, b.Granularity, b.Enabled, b.Inconsistent, b.Entry.Flags));
            }
            return list;
        }
    }

    /// <summary>Reads the bitmap directory and tables (not the bits). Called once while opening.</summary>
    private async ValueTask LoadBitmapsAsync()
    {
        if (_hc.Bitmaps is not { } ext)
        {
            return;
        }
        if ((_hc.Header.Autoclear & AutoclearFeatures.Bitmaps) == 0)
        {
            // Written by a program unaware of bitmaps: the extension is inconsistent and dropped; the
            // clusters it held are leaks a check reclaims.
            _hc.Bitmaps = null;
            return;
        }
        if (ext.BitmapCount == 0)
        {
            Qcow2Error.Invalid("found bitmaps extension with zero bitmaps");
        }
        if (ext.BitmapCount > Qcow2Constants.MaxBitmaps)
        {
            Qcow2Error.Invalid($"image has {ext.BitmapCount} bitmaps, exceeding the supported maximum of {Qcow2Constants.MaxBitmaps}");
        }
        if (ext.DirectorySize > Qcow2Constants.MaxBitmapDirectoryBytes || ext.DirectorySize == 0)
        {
            Qcow2Error.Invalid($"bitmap directory size ({ext.DirectorySize}) is invalid");
        }
        if ((ext.DirectoryOffset & (ulong)_g.ClusterMask) != 0 || ext.DirectoryOffset == 0 || ext.DirectoryOffset > long.MaxValue / 2)
        {
            Qcow2Error.Invalid("invalid bitmap directory offset");
        }
        var directory = new byte[ext.DirectorySize];
        await _file.ReadAsync((long)ext.DirectoryOffset, directory).ConfigureAwait(false);
        var states = new List<BitmapState>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var pos = 0;
        for (var i = 0; i < ext.BitmapCount; i++)
        {
            if (pos >= directory.Length)
            {
                Qcow2Error.Invalid("bitmap directory is corrupted (fewer entries than announced)");
            }
            var entry = BitmapDirectoryEntry.Parse(directory.AsSpan(pos), out var consumed);
            pos += consumed;
            ValidateBitmapEntry(entry);
            if (!names.Add(entry.Name))
            {
                Qcow2Error.Invalid($"bitmap directory is corrupted (duplicate name '{entry.Name}')");
            }
            var table = await ReadTableAsync(_file, (long)entry.TableOffset, (int)entry.TableSize).ConfigureAwait(false);
            var state = new BitmapState(entry, table, _size) { DiskTableOffset = (long)entry.TableOffset };
            state.Inconsistent = (entry.Flags & BitmapFlags.InUse) != 0
                || (entry.ExtraData.Length != 0 && (entry.Flags & BitmapFlags.ExtraDataCompatible) == 0);
            foreach (var t in table)
            {
                if ((t & BitmapTableEntry.ReservedMask) != 0 || ((t & BitmapTableEntry.OffsetMask) != 0 && (t & 1) != 0))
                {
                    Qcow2Error.Invalid($"bitmap '{entry.Name}' has an invalid table entry 0x{t:x}");
                }
            }
            states.Add(state);
        }
        if (pos != directory.Length)
        {
            Qcow2Error.Invalid("bitmap directory is corrupted (size does not match its entries)");
        }
        _bitmapDirectoryOffset = (long)ext.DirectoryOffset;
        _bitmapDirectorySize = (long)ext.DirectorySize;
        _bitmaps = [.. states];
        RebuildContexts();
    }

    private void ValidateBitmapEntry(BitmapDirectoryEntry e)
    {
        var bad = e.TableSize == 0 || e.TableOffset == 0 || (e.TableOffset & (ulong)_g.ClusterMask) != 0
            || e.TableSize > Qcow2Constants.MaxBitmapTableEntries
            || e.GranularityBits > Qcow2Constants.MaxBitmapGranularityBits || e.GranularityBits < Qcow2Constants.MinBitmapGranularityBits
            || (e.Flags & ~BitmapFlags.Known) != 0
            || e.Name.Length == 0 || Encoding.UTF8.GetByteCount(e.Name) > Qcow2Constants.MaxBitmapNameBytes
            || e.Type != BitmapDirectoryEntry.DirtyTrackingType;
        var physical = (long)e.TableSize << _g.ClusterBits;
        if (bad || physical > Qcow2Constants.MaxBitmapDataBytes)
        {
            Qcow2Error.Invalid($"bitmap directory entry '{e.Name}' is invalid");
        }
        if ((e.Flags & BitmapFlags.InUse) == 0 && _size > ((physical * 8) << e.GranularityBits))
        {
            Qcow2Error.Invalid($"bitmap '{e.Name}' table is too small for the image size");
        }
    }

    private void RegisterBitmapMetadata()
    {
        if (_bitmapDirectoryOffset != 0)
        {
            _metadata.Add(_bitmapDirectoryOffset, _bitmapDirectorySize);
        }
        foreach (var b in _bitmaps)
        {
            RegisterBitmapStorage(b, add: true);
        }
    }

    private void RegisterBitmapStorage(BitmapState b, bool add)
    {
        if (b.DiskTableOffset == 0)
        {
            return;
        }
        var tableBytes = (long)b.DiskTable.Length * 8;
        if (add)
        {
            _metadata.Add(b.DiskTableOffset, tableBytes);
        }
        else
        {
            _metadata.Remove(b.DiskTableOffset, tableBytes);
        }
        foreach (var t in b.DiskTable)
        {
            var offset = (long)(t & BitmapTableEntry.OffsetMask);
            if (offset == 0)
            {
                continue;
            }
            if (add)
            {
                _metadata.Add(offset, _g.ClusterSize);
            }
            else
            {
                _metadata.Remove(offset, _g.ClusterSize);
            }
        }
    }

    /// <summary>Loads a bitmap's bits from its table. Under <see cref="_meta"/>.</summary>
    private async ValueTask EnsureBitsAsync(BitmapState b)
    {
        if (b.Bits is not null)
        {
            return;
        }
        var bits = new byte[b.DataBytes];
        var cluster = new byte[_g.ClusterSize];
        for (var i = 0; i < b.DiskTable.Length && (long)i << _g.ClusterBits < bits.Length; i++)
        {
            var start = (long)i << _g.ClusterBits;
            var n = (int)Math.Min(_g.ClusterSize, bits.Length - start);
            var t = b.DiskTable[i];
            var offset = (long)(t & BitmapTableEntry.OffsetMask);
            if (offset == 0)
            {
                if ((t & BitmapTableEntry.AllOnes) != 0)
                {
                    bits.AsSpan((int)start, n).Fill(0xff);
                }
                continue;
            }
            await _file.ReadAsync(offset, cluster).ConfigureAwait(false);
            cluster.AsSpan(0, n).CopyTo(bits.AsSpan((int)start));
        }
        var tailBits = (int)(b.BitCount & 7);
        if (tailBits != 0 && bits.Length > 0)
        {
            bits[^1] &= (byte)((1 << tailBits) - 1);
        }
        b.Bits = bits;
    }

    /// <summary>On a read-write open: loads every usable bitmap and marks it in use on disk (in place).</summary>
    private async ValueTask MarkBitmapsInUseAsync()
    {
        if (_bitmaps.Length == 0)
        {
            return;
        }
        await _meta.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var b in _bitmaps)
            {
                if (!b.Inconsistent)
                {
                    await EnsureBitsAsync(b).ConfigureAwait(false);
                    b.Entry.Flags |= BitmapFlags.InUse;
                }
            }
            var directory = SerializeBitmapDirectory(_bitmaps);
            if (directory.Length == _bitmapDirectorySize)
            {
                await _file.WriteAsync(_bitmapDirectoryOffset, directory).ConfigureAwait(false);
                _file.Sync();
            }
            _bitmapsChanged = true;
        }
        finally
        {
            _meta.Release();
        }
    }

    private static byte[] SerializeBitmapDirectory(IEnumerable<BitmapState> bitmaps)
    {
        var size = 0;
        foreach (var b in bitmaps)
        {
            size += b.Entry.SerializedLength;
        }
        var bytes = new byte[size];
        var pos = 0;
        foreach (var b in bitmaps)
        {
            pos += b.Entry.WriteTo(bytes.AsSpan(pos));
        }
        return bytes;
    }

    /// <summary>Records a guest write in every enabled bitmap.</summary>
    private void MarkBitmapsDirty(long offset, long length)
    {
        foreach (var b in _bitmaps)
        {
            if (b.Enabled && !b.Inconsistent)
            {
                b.SetRange(offset, length);
            }
        }
    }

    /// <summary>
    /// Stores bitmaps on a clean close: changed bitmaps get new tables and data, then a new directory is
    /// written and the header switched to it; old structures are freed only after. Under <see cref="_meta"/>.
    /// </summary>
    private async ValueTask StoreBitmapsAsync()
    {
        if (!_bitmapsChanged)
        {
            return;
        }
        var toFree = new List<(long Offset, long Length)>();
        foreach (var b in _bitmaps)
        {
            if (b.Inconsistent)
            {
                continue;
            }
            var expectedTable = (int)((b.DataBytes + _g.ClusterSize - 1) >> _g.ClusterBits);
            if (b.Modified || b.DiskTableOffset == 0 || b.DiskTable.Length != expectedTable)
            {
                await EnsureBitsAsync(b).ConfigureAwait(false);
                var oldTable = b.DiskTable;
                var oldOffset = b.DiskTableOffset;
                var table = new ulong[Math.Max(1, expectedTable)];
                var chunk = new byte[_g.ClusterSize];
                for (var i = 0; i < expectedTable; i++)
                {
                    var start = (long)i << _g.ClusterBits;
                    var n = (int)Math.Min(_g.ClusterSize, b.Bits!.Length - start);
                    var span = b.Bits.AsSpan((int)start, n);
                    if (span.IndexOfAnyExcept((byte)0) < 0)
                    {
                        continue;
                    }
                    chunk.AsSpan().Clear();
                    span.CopyTo(chunk);
                    var cluster = await _refcounts.AllocateContiguousAsync(1).ConfigureAwait(false);
                    await _file.WriteAsync(cluster, chunk).ConfigureAwait(false);
                    table[i] = (ulong)cluster;
                }
                var tableBytes = new byte[table.Length * 8];
                for (var i = 0; i < table.Length; i++)
                {
                    BinaryPrimitives.WriteUInt64BigEndian(tableBytes.AsSpan(i * 8), table[i]);
                }
                var tableOffset = await _refcounts.AllocateContiguousAsync((int)_g.ClustersFor(tableBytes.Length)).ConfigureAwait(false);
                await _file.WriteAsync(tableOffset, tableBytes).ConfigureAwait(false);
                if (oldOffset != 0)
                {
                    RegisterBitmapStorage(b, add: false);
                    toFree.Add((oldOffset, (long)oldTable.Length * 8));
                    foreach (var t in oldTable)
                    {
                        var o = (long)(t & BitmapTableEntry.OffsetMask);
                        if (o != 0)
                        {
                            toFree.Add((o, _g.ClusterSize));
                        }
                    }
                }
                b.DiskTable = table;
                b.DiskTableOffset = tableOffset;
                b.Entry.TableOffset = (ulong)tableOffset;
                b.Entry.TableSize = (uint)table.Length;
                RegisterBitmapStorage(b, add: true);
                b.Modified = false;
            }
            b.Entry.Flags &= ~BitmapFlags.InUse;
        }
        foreach (var (offset, length) in _removedBitmapStorage)
        {
            toFree.Add((offset, length));
        }
        _removedBitmapStorage.Clear();

        var oldDirectory = (_bitmapDirectoryOffset, _bitmapDirectorySize);
        long newDirectoryOffset = 0;
        long newDirectorySize = 0;
        if (_bitmaps.Length > 0)
        {
            var directory = SerializeBitmapDirectory(_bitmaps);
            newDirectoryOffset = await _refcounts.AllocateContiguousAsync((int)_g.ClustersFor(directory.Length)).ConfigureAwait(false);
            newDirectorySize = directory.Length;
            await _file.WriteAsync(newDirectoryOffset, directory).ConfigureAwait(false);
        }
        // Everything new is counted and written before the header points at it.
        await FlushMetadataAsync().ConfigureAwait(false);
        if (_bitmaps.Length > 0)
        {
            _hc.Bitmaps = new BitmapsExtension((uint)_bitmaps.Length, 0, (ulong)newDirectorySize, (ulong)newDirectoryOffset);
            _hc.Header.Autoclear |= AutoclearFeatures.Bitmaps;
        }
        else
        {
            _hc.Bitmaps = null;
            _hc.Header.Autoclear &= ~AutoclearFeatures.Bitmaps;
        }
        await RewriteHeaderAsync().ConfigureAwait(false);
        _bitmapDirectoryOffset = newDirectoryOffset;
        _bitmapDirectorySize = newDirectorySize;
        if (oldDirectory._bitmapDirectoryOffset != 0)
        {
            _metadata.Remove(oldDirectory._bitmapDirectoryOffset, oldDirectory._bitmapDirectorySize);
            toFree.Add((oldDirectory._bitmapDirectoryOffset, oldDirectory._bitmapDirectorySize));
        }
        if (newDirectoryOffset != 0)
        {
            _metadata.Add(newDirectoryOffset, newDirectorySize);
        }
        foreach (var (offset, length) in toFree)
        {
            await _refcounts.UpdateAsync(offset, length, -1).ConfigureAwait(false);
        }
        _bitmapsChanged = false;
    }

}
