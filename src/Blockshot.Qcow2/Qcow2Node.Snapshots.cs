using System.Buffers.Binary;
using System.Globalization;
using Blockshot.Core;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>The image's internal snapshots.</summary>
    public IReadOnlyList<Qcow2SnapshotInfo> Snapshots
    {
        get
        {
            var list = new List<Qcow2SnapshotInfo>();
            foreach (var s in _snapshots)
            {
                list.Add(ToInfo(s));
            }
            return list;
        }
    }

    private static Qcow2SnapshotInfo ToInfo(SnapshotEntry s) => new(s.Id, s.Name, s.DateSeconds, s.DateNanoseconds,
        (long)s.VmStateSize, (long)s.VmClockNanoseconds, s.DiskSize is { } d ? (long)d : null, s.Icount);

    private SnapshotEntry FindSnapshot(string idOrName) =>
        _snapshots.Find(s => s.Id == idOrName) ?? _snapshots.Find(s => s.Name == idOrName)
        ?? throw new BlockException(BlockError.Invalid, $"qcow2: snapshot '{idOrName}' not found");

    private void CheckSnapshotsSupported()
    {
        CheckWritable();
        if (HasDataFile)
        {
            Qcow2Error.Unsupported("internal snapshots are not supported with an external data file");
        }
    }

    /// <summary>
    /// Takes an internal snapshot of the current disk state: the L1 table is copied and every cluster it
    /// reaches gains a reference, so later writes copy instead of overwriting.
    /// </summary>
    public async ValueTask<Qcow2SnapshotInfo> CreateSnapshotAsync(string name, string? id = null)
    {
        CheckSnapshotsSupported();
        if (string.IsNullOrEmpty(name) || name.Length > ushort.MaxValue / 4)
        {
            Qcow2Error.Argument("snapshot name must not be empty");
        }
        using (await _ranges.AcquireAsync(0, long.MaxValue).ConfigureAwait(false))
        {
            await _meta.WaitAsync().ConfigureAwait(false);
            try
            {
                CheckWritable();
                if (_snapshots.Exists(s => s.Name == name))
                {
                    Qcow2Error.Argument($"a snapshot named '{name}' already exists");
                }
                if (_snapshots.Count >= Qcow2Constants.MaxSnapshots)
                {
                    Qcow2Error.Argument("too many snapshots");
                }
                id ??= NextSnapshotId();
                if (_snapshots.Exists(s => s.Id == id))
                {
                    Qcow2Error.Argument($"a snapshot with id '{id}' already exists");
                }
                if (_g.RefcountMax < 2)
                {
                    Qcow2Error.Unsupported("internal snapshots need refcounts wider than 1 bit");
                }
                await MarkDirtyIfLazyAsync().ConfigureAwait(false);
                await FlushMetadataAsync().ConfigureAwait(false);
                if (_g.RefcountOrder < 4)
                {
                    await CheckSnapshotRefcountRoomAsync().ConfigureAwait(false);
                }

                // A copy of the active L1 table, as it stands.
                var l1Bytes = (long)_l1.Length * 8;
                long l1Offset = 0;
                if (l1Bytes > 0)
                {
                    l1Offset = await _refcounts.AllocateContiguousAsync((int)_g.ClustersFor(l1Bytes)).ConfigureAwait(false);
                    await _file.WriteAsync(l1Offset, SerializeL1(_l1)).ConfigureAwait(false);
                    _metadata.Add(l1Offset, l1Bytes);
                }
                // COPIED flags go first: a crash then leaves refcount one without COPIED (harmless,
                // repaired by a check) rather than shared clusters still marked writable in place.
                await ClearActiveCopiedFlagsAsync().ConfigureAwait(false);
                await UpdateTreeRefcountsAsync(_l1, +1).ConfigureAwait(false);
                await FlushMetadataAsync().ConfigureAwait(false);

                var now = DateTimeOffset.UtcNow;
                var entry = new SnapshotEntry
                {
                    L1TableOffset = (ulong)l1Offset,
                    L1Size = (uint)_l1.Length,
                    Id = id,
                    Name = name,
                    DateSeconds = (uint)now.ToUnixTimeSeconds(),
                    DateNanoseconds = (uint)(now.Ticks % TimeSpan.TicksPerSecond * 100),
                    ExtraData = SnapshotEntry.StandardExtraData(0, (ulong)_size, 0),
                };
                var list = new List<SnapshotEntry>(_snapshots) { entry };
                await WriteSnapshotTableAsync(list).ConfigureAwait(false);
                return ToInfo(entry);
            }
            finally
            {
                _meta.Release();
            }
        }
    }

    /// <summary>Deletes a snapshot: it leaves the table first, then its references are dropped.</summary>
    public async ValueTask DeleteSnapshotAsync(string idOrName)
    {
        CheckSnapshotsSupported();
        using (await _ranges.AcquireAsync(0, long.MaxValue).ConfigureAwait(false))
        {
            await _meta.WaitAsync().ConfigureAwait(false);
            try
            {
                CheckWritable();
                var sn = FindSnapshot(idOrName);
                var l1 = await ReadSnapshotL1Async(sn).ConfigureAwait(false);
                await MarkDirtyIfLazyAsync().ConfigureAwait(false);
                await FlushMetadataAsync().ConfigureAwait(false);
                var list = new List<SnapshotEntry>(_snapshots);
                list.Remove(sn);
                await WriteSnapshotTableAsync(list).ConfigureAwait(false);
                await UpdateTreeRefcountsAsync(l1, -1).ConfigureAwait(false);
                var l1Bytes = (long)sn.L1Size * 8;
                if (l1Bytes > 0)
                {
                    _metadata.Remove((long)sn.L1TableOffset, l1Bytes);
                    await _refcounts.UpdateAsync((long)sn.L1TableOffset, l1Bytes, -1).ConfigureAwait(false);
                }
                // Refcounts drop on disk before any COPIED flag is set.
                await FlushMetadataAsync().ConfigureAwait(false);
                await FixActiveCopiedFlagsAsync().ConfigureAwait(false);
                await FlushMetadataAsync().ConfigureAwait(false);
            }
            finally
            {
                _meta.Release();
            }
        }
    }

    /// <summary>
    /// Reverts the disk to a snapshot. The snapshot's clusters gain a reference before the active L1
    /// table is overwritten with the snapshot's, and the previous state loses its references after.
    /// Enabled bitmaps mark the whole disk dirty.
    /// </summary>
    public async ValueTask ApplySnapshotAsync(string idOrName)
    {
        CheckSnapshotsSupported();
        using (await _ranges.AcquireAsync(0, long.MaxValue).ConfigureAwait(false))
        {
            await _meta.WaitAsync().ConfigureAwait(false);
            try
            {
                CheckWritable();
                var sn = FindSnapshot(idOrName);
                var snL1 = await ReadSnapshotL1Async(sn).ConfigureAwait(false);
                var snSize = sn.DiskSize is { } d ? (long)d : _size;
                if (_g.L1EntriesFor(snSize) > snL1.Length)
                {
                    Qcow2Error.Invalid($"snapshot '{sn.Name}' has an L1 table too small for its disk size");
                }
                await MarkDirtyIfLazyAsync().ConfigureAwait(false);
                await FlushMetadataAsync().ConfigureAwait(false);
                if (snL1.Length > _l1.Length)
                {
                    await GrowL1Async(snL1.Length).ConfigureAwait(false);
                }
                await UpdateTreeRefcountsAsync(snL1, +1).ConfigureAwait(false);
                await FlushMetadataAsync().ConfigureAwait(false);

                var old = _l1;
                var fresh = new ulong[old.Length];
                for (var i = 0; i < snL1.Length; i++)
                {
                    // Shared with the snapshot now: never writable in place until flags are recomputed.
                    fresh[i] = snL1[i] & ~L1Entry.Copied;
                }
                foreach (var e in old)
                {
                    if (L1Entry.Offset(e) != 0)
                    {
                        _metadata.Remove(L1Entry.Offset(e), _g.ClusterSize);
                    }
                }
                _l2Cache.Clear();
                await _file.WriteAsync(_l1Offset, SerializeL1(fresh)).ConfigureAwait(false);
                _file.Sync();
                _l1 = fresh;
                foreach (var e in fresh)
                {
                    if (L1Entry.Offset(e) != 0)
                    {
                        _metadata.Add(L1Entry.Offset(e), _g.ClusterSize);
                    }
                }
                await UpdateTreeRefcountsAsync(old, -1).ConfigureAwait(false);
                await FlushMetadataAsync().ConfigureAwait(false);
                await FixActiveCopiedFlagsAsync().ConfigureAwait(false);
                if (snSize != _size)
                {
                    await SetSizeAsync(snSize).ConfigureAwait(false);
                }
                await FlushMetadataAsync().ConfigureAwait(false);
                foreach (var b in _bitmaps)
                {
                    if (!b.Inconsistent)
                    {
                        await EnsureBitsAsync(b).ConfigureAwait(false);
                        b.Resize(_size);
                        if (b.Enabled)
                        {
                            b.SetRange(0, _size);
                        }
                        _bitmapsChanged = true;
                    }
                }
            }
            finally
            {
                _meta.Release();
            }
        }
    }

    private string NextSnapshotId()
    {
        long max = 0;
        foreach (var s in _snapshots)
        {
            if (long.TryParse(s.Id, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                max = Math.Max(max, n);
            }
        }
        return (max + 1).ToString(CultureInfo.InvariantCulture);
    }

    private static byte[] SerializeL1(ulong[] l1)
    {
        var bytes = new byte[l1.Length * 8];
        for (var i = 0; i < l1.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), l1[i]);
        }
        return bytes;
    }

    private async ValueTask<ulong[]> ReadSnapshotL1Async(SnapshotEntry sn)
    {
        if ((sn.L1TableOffset & (ulong)_g.ClusterMask) != 0 || sn.L1Size > Qcow2Constants.MaxL1Bytes / 8)
        {
            Qcow2Error.Invalid($"snapshot '{sn.Name}' has an invalid L1 table");
        }
        return await ReadTableAsync(_file, (long)sn.L1TableOffset, (int)sn.L1Size).ConfigureAwait(false);
    }

    /// <summary>Adds <paramref name="addend"/> to every cluster an L1 tree reaches (data, then each L2 table). Under <see cref="_meta"/>.</summary>
    private async ValueTask UpdateTreeRefcountsAsync(ulong[] l1, int addend)
    {
        var entries = new L2Entry[_g.SliceEntries];
        foreach (var e in l1)
        {
            var l2 = L1Entry.Offset(e);
            if (l2 == 0)
            {
                continue;
            }
            if ((l2 & _g.ClusterMask) != 0)
            {
                Qcow2Error.Corrupt($"L2 table offset 0x{l2:x} unaligned");
            }
            for (var s = 0; s < _g.L2Entries; s += _g.SliceEntries)
            {
                await ReadEntriesAsync(l2, s, _g.SliceEntries, entries).ConfigureAwait(false);
                foreach (var entry in entries)
                {
                    switch (entry.Classify(_g.ExtendedL2, HasDataFile))
                    {
                        case ClusterType.Compressed:
                            var d = CompressedDescriptor.Decode(entry.Word, _g.ClusterBits);
                            await _refcounts.UpdateAsync(d.HostOffset, d.ByteLength, addend).ConfigureAwait(false);
                            break;
                        case ClusterType.Normal:
                        case ClusterType.ZeroAllocated:
                            if ((entry.HostOffset & _g.ClusterMask) != 0)
                            {
                                Qcow2Error.Corrupt($"cluster offset 0x{entry.HostOffset:x} unaligned");
                            }
                            await _refcounts.UpdateAsync(entry.HostOffset, _g.ClusterSize, addend).ConfigureAwait(false);
                            break;
                    }
                }
            }
            await _refcounts.UpdateAsync(l2, _g.ClusterSize, addend).ConfigureAwait(false);
        }
    }

    /// <summary>Clears COPIED on every active L1 and L2 entry and makes that durable. Under <see cref="_meta"/>.</summary>
    private async ValueTask ClearActiveCopiedFlagsAsync()
    {
        var entries = new L2Entry[_g.SliceEntries];
        for (var i = 0; i < _l1.Length; i++)
        {
            var l2 = L1Entry.Offset(_l1[i]);
            if (l2 == 0)
            {
                continue;
            }
            for (var s = 0; s < _g.L2Entries; s += _g.SliceEntries)
            {
                await ReadEntriesAsync(l2, s, _g.SliceEntries, entries).ConfigureAwait(false);
                var changed = false;
                for (var k = 0; k < entries.Length; k++)
                {
                    if (entries[k].IsCopied && !entries[k].IsCompressed)
                    {
                        entries[k] = entries[k] with { Word = entries[k].Word & ~L2Entry.Copied };
                        changed = true;
                    }
                }
                if (changed)
                {
                    await WriteEntriesAsync(l2, s, entries).ConfigureAwait(false);
                }
            }
            _l1[i] &= ~L1Entry.Copied;
        }
        await FlushMetadataAsync().ConfigureAwait(false);
        await _file.WriteAsync(_l1Offset, SerializeL1(_l1)).ConfigureAwait(false);
        _file.Sync();
    }

    /// <summary>Sets COPIED on every active L1 and L2 entry whose cluster has refcount one, and clears it elsewhere. Under <see cref="_meta"/>.</summary>
    private async ValueTask FixActiveCopiedFlagsAsync()
    {
        var l1Changed = false;
        var entries = new L2Entry[_g.SliceEntries];
        for (var i = 0; i < _l1.Length; i++)
        {
            var l2 = L1Entry.Offset(_l1[i]);
            if (l2 == 0)
            {
                continue;
            }
            for (var s = 0; s < _g.L2Entries; s += _g.SliceEntries)
            {
                await ReadEntriesAsync(l2, s, _g.SliceEntries, entries).ConfigureAwait(false);
                var changed = false;
                for (var k = 0; k < entries.Length; k++)
                {
                    var entry = entries[k];
                    var type = entry.Classify(_g.ExtendedL2, HasDataFile);
                    if (type is not (ClusterType.Normal or ClusterType.ZeroAllocated))
                    {
                        continue;
                    }
                    var one = HasDataFile || await _refcounts.GetAsync(entry.HostOffset >> _g.ClusterBits).ConfigureAwait(false) == 1;
                    var word = one ? entry.Word | L2Entry.Copied : entry.Word & ~L2Entry.Copied;
                    if (word != entry.Word)
                    {
                        entries[k] = entry with { Word = word };
                        changed = true;
                    }
                }
                if (changed)
                {
                    await WriteEntriesAsync(l2, s, entries).ConfigureAwait(false);
                }
            }
            var rc = await _refcounts.GetAsync(l2 >> _g.ClusterBits).ConfigureAwait(false);
            var l1e = rc == 1 ? _l1[i] | L1Entry.Copied : _l1[i] & ~L1Entry.Copied;
            if (l1e != _l1[i])
            {
                _l1[i] = l1e;
                l1Changed = true;
            }
        }
        if (l1Changed)
        {
            // L2 entries and refcounts reach the disk before the L1 claims exclusive ownership.
            await FlushMetadataAsync().ConfigureAwait(false);
            await _file.WriteAsync(_l1Offset, SerializeL1(_l1)).ConfigureAwait(false);
            _file.Sync();
        }
    }

    /// <summary>
    /// With narrow refcounts, makes sure one more reference fits on every cluster a snapshot would
    /// reach before anything is changed. Under <see cref="_meta"/>.
    /// </summary>
    private async ValueTask CheckSnapshotRefcountRoomAsync()
    {
        var extra = new Dictionary<long, ulong>();
        void Count(long offset, long length)
        {
            for (var c = offset >> _g.ClusterBits; c <= (offset + length - 1) >> _g.ClusterBits; c++)
            {
                extra[c] = extra.TryGetValue(c, out var n) ? n + 1 : 1;
            }
        }
        var entries = new L2Entry[_g.SliceEntries];
        foreach (var e in _l1)
        {
            var l2 = L1Entry.Offset(e);
            if (l2 == 0)
            {
                continue;
            }
            Count(l2, _g.ClusterSize);
            for (var s = 0; s < _g.L2Entries; s += _g.SliceEntries)
            {
                await ReadEntriesAsync(l2, s, _g.SliceEntries, entries).ConfigureAwait(false);
                foreach (var entry in entries)
                {
                    switch (entry.Classify(_g.ExtendedL2, HasDataFile))
                    {
                        case ClusterType.Compressed:
                            var d = CompressedDescriptor.Decode(entry.Word, _g.ClusterBits);
                            Count(d.HostOffset, d.ByteLength);
                            break;
                        case ClusterType.Normal:
                        case ClusterType.ZeroAllocated:
                            Count(entry.HostOffset, _g.ClusterSize);
                            break;
                    }
                }
            }
        }
        foreach (var (cluster, add) in extra)
        {
            if (await _refcounts.GetAsync(cluster).ConfigureAwait(false) + add > _g.RefcountMax)
            {
                throw new BlockException(BlockError.Overflow,
                    $"qcow2: a snapshot would overflow the {1 << _g.RefcountOrder}-bit refcount of cluster 0x{cluster << _g.ClusterBits:x}");
            }
        }
    }

    /// <summary>
    /// Writes a snapshot table to new clusters, switches the header to it (count and offset in one
    /// write) and frees the old table. Under <see cref="_meta"/>.
    /// </summary>
    private async ValueTask WriteSnapshotTableAsync(List<SnapshotEntry> list)
    {
        var size = SnapshotTableBytes(list);
        if (size > Qcow2Constants.MaxSnapshotTableBytes)
        {
            Qcow2Error.Argument("snapshot table would be too large");
        }
        long offset = 0;
        if (size > 0)
        {
            var bytes = new byte[size];
            var pos = 0;
            foreach (var s in list)
            {
                pos += s.WriteTo(bytes.AsSpan(pos));
            }
            offset = await _refcounts.AllocateContiguousAsync((int)_g.ClustersFor(size)).ConfigureAwait(false);
            await _file.WriteAsync(offset, bytes).ConfigureAwait(false);
        }
        await FlushMetadataAsync().ConfigureAwait(false);
        var header = new byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(header, (uint)list.Count);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(4), (ulong)offset);
        await WriteHeaderBytesAsync(60, header).ConfigureAwait(false);
        var oldOffset = (long)_hc.Header.SnapshotsOffset;
        var oldSize = SnapshotTableBytes(_snapshots);
        _hc.Header.SnapshotCount = (uint)list.Count;
        _hc.Header.SnapshotsOffset = (ulong)offset;
        _snapshots = list;
        _metadata.Add(offset, size);
        if (oldOffset != 0 && oldSize > 0)
        {
            _metadata.Remove(oldOffset, oldSize);
            await _refcounts.UpdateAsync(oldOffset, oldSize, -1).ConfigureAwait(false);
        }
    }
}
