using Blockshot.Core;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>References counted by a check: one counter per host cluster, grown on demand.</summary>
    private sealed class ReferenceCounts(long clusters)
    {
        public uint[] Counts = new uint[Math.Max(1, clusters)];

        public long Length = clusters;

        public uint Get(long cluster) => cluster < Length ? Counts[cluster] : 0;

        public void EnsureLength(long clusters)
        {
            if (clusters > Length)
            {
                if (clusters > Counts.Length)
                {
                    Array.Resize(ref Counts, (int)Math.Max(clusters, Math.Min((long)Counts.Length * 2, int.MaxValue - 64)));
                }
                Length = clusters;
            }
        }
    }

    private sealed class CheckState
    {
        public required Qcow2CheckResult Result;
        public required ReferenceCounts Refs;
        public bool Rebuild;
        public bool FixLeaks;
        public bool FixErrors;

        /// <summary>L2 table walks left: a valid image never references more tables than it has clusters per L1 table.</summary>
        public long WalkBudget = long.MaxValue;
    }

    /// <summary>Upper bound on the host clusters a check will count (bounds memory on hostile images).</summary>
    private const long MaxCheckClusters = 1L << 30;

    /// <summary>
    /// Checks (and with <paramref name="mode"/> repairs) refcounts and COPIED flags as the reference
    /// checker does. Holds every cluster and the metadata lock.
    /// </summary>
    internal async ValueTask<Qcow2CheckResult> CheckAsync(Qcow2RepairMode mode)
    {
        if (mode != Qcow2RepairMode.None && _readOnly)
        {
            BlockThrow.ReadOnly(Path);
        }
        using (await _ranges.AcquireAsync(0, long.MaxValue).ConfigureAwait(false))
        {
            await _meta.WaitAsync().ConfigureAwait(false);
            try
            {
                return await CheckLockedAsync(mode).ConfigureAwait(false);
            }
            finally
            {
                _meta.Release();
            }
        }
    }

    private async ValueTask<Qcow2CheckResult> CheckLockedAsync(Qcow2RepairMode mode)
    {
        if (!_readOnly)
        {
            await FlushMetadataAsync().ConfigureAwait(false);
        }
        var result = new Qcow2CheckResult { Filename = Path, TotalClusters = _g.ClustersFor(_size) };
        var fileClusters = _g.ClustersFor(_file.Length);
        if (fileClusters > MaxCheckClusters)
        {
            result.CheckErrors++;
            result.Message($"ERROR: image file too large to check ({fileClusters} clusters)");
            return result;
        }
        var st = new CheckState
        {
            Result = result,
            Refs = new ReferenceCounts(fileClusters),
            FixLeaks = mode != Qcow2RepairMode.None,
            FixErrors = mode == Qcow2RepairMode.All,
        };
        await CalculateRefcountsAsync(st).ConfigureAwait(false);
        var before = result.CloneCounts();
        var highest = await CompareRefcountsAsync(st, fixLeaks: false, fixErrors: false).ConfigureAwait(false);

        if (st.Rebuild && st.FixErrors)
        {
            var old = result.CloneCounts();
            result.Message("Rebuilding refcount structure");
            await RebuildRefcountStructureAsync(st).ConfigureAwait(false);
            result.Corruptions = 0;
            result.Leaks = 0;
            st.Rebuild = false;
            st.Refs = new ReferenceCounts(_g.ClustersFor(_file.Length));
            var counting = new Qcow2CheckResult { Filename = Path };
            var recount = new CheckState { Result = counting, Refs = st.Refs };
            await CalculateRefcountsAsync(recount).ConfigureAwait(false);
            result.Corruptions = counting.Corruptions;
            result.Leaks = counting.Leaks;
            var freshLeaks = 0;
            if (st.FixLeaks)
            {
                var saved = result.CloneCounts();
                var leakPass = new Qcow2CheckResult { Filename = Path };
                var leakState = new CheckState { Result = leakPass, Refs = st.Refs };
                highest = await CompareRefcountsAsync(leakState, fixLeaks: true, fixErrors: false).ConfigureAwait(false);
                if (leakState.Rebuild)
                {
                    result.Message("ERROR rebuilt refcount structure is still broken");
                }
                freshLeaks = leakPass.Leaks;
                result.CopyCountsFrom(saved);
            }
            if (result.Corruptions < old.Corruptions)
            {
                result.CorruptionsFixed += old.Corruptions - result.Corruptions;
            }
            if (result.Leaks < old.Leaks)
            {
                result.LeaksFixed += old.Leaks - result.Leaks;
            }
            result.Leaks += freshLeaks;
        }
        else if (mode != Qcow2RepairMode.None)
        {
            if (st.Rebuild)
            {
                result.Message("ERROR need to rebuild refcount structures");
                result.CheckErrors++;
                return result;
            }
            if (result.Leaks > 0 || result.Corruptions > 0)
            {
                result.CopyCountsFrom(before);
                highest = await CompareRefcountsAsync(st, st.FixLeaks, st.FixErrors).ConfigureAwait(false);
            }
        }

        await CheckCopiedFlagsAsync(st).ConfigureAwait(false);
        result.ImageEndOffset = (highest + 1) << _g.ClusterBits;

        if (mode != Qcow2RepairMode.None)
        {
            await FlushMetadataAsync().ConfigureAwait(false);
            if (result.CheckErrors == 0 && result.Corruptions == 0)
            {
                var clean = _hc.Header.Incompatible & ~(IncompatibleFeatures.Dirty | IncompatibleFeatures.Corrupt);
                if (clean != _hc.Header.Incompatible)
                {
                    _hc.Header.Incompatible = clean;
                    await WriteIncompatibleAsync().ConfigureAwait(false);
                }
                _corrupt = false;
                _dirtyMarked = false;
            }
            _l2Cache.Clear();
            _refcounts.ResetHint();
        }
        return result;
    }

    private void Inc(CheckState st, long offset, long size)
    {
        if (size <= 0)
        {
            return;
        }
        var fileLength = _file.Length;
        if (offset < 0 || offset > long.MaxValue - size || offset + size - fileLength >= _g.ClusterSize)
        {
            st.Result.Message($"ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x{offset:x} size 0x{size:x}");
            st.Result.Corruptions++;
            return;
        }
        var first = offset >> _g.ClusterBits;
        var last = (offset + size - 1) >> _g.ClusterBits;
        st.Refs.EnsureLength(last + 1);
        var max = Math.Min(_g.RefcountMax, uint.MaxValue);
        for (var c = first; c <= last; c++)
        {
            if (st.Refs.Counts[c] >= max)
            {
                st.Result.Message($"ERROR: overflow cluster offset=0x{c << _g.ClusterBits:x}");
                st.Result.Message("Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing");
                st.Result.Corruptions++;
                continue;
            }
            st.Refs.Counts[c]++;
        }
    }

    private async ValueTask CalculateRefcountsAsync(CheckState st)
    {
        var r = st.Result;
        st.WalkBudget = (_g.ClustersFor(_file.Length) + 64) * (_snapshots.Count + 1);
        Inc(st, 0, _g.ClusterSize);
        await CheckL1Async(st, _l1Offset, _l1.Length, fragInfo: true, active: true).ConfigureAwait(false);
        if (HasDataFile && _snapshots.Count > 0)
        {
            r.Message($"ERROR {_snapshots.Count} snapshots in image with data file");
            r.Corruptions++;
        }
        foreach (var sn in _snapshots)
        {
            if ((sn.L1TableOffset & (ulong)_g.ClusterMask) != 0)
            {
                r.Message($"ERROR snapshot {sn.Id} ({sn.Name}) l1_offset=0x{sn.L1TableOffset:x}: L1 table is not cluster aligned; snapshot table entry corrupted");
                r.Corruptions++;
                continue;
            }
            if (sn.L1Size > Qcow2Constants.MaxL1Bytes / 8)
            {
                r.Message($"ERROR snapshot {sn.Id} ({sn.Name}) l1_size=0x{sn.L1Size:x}: L1 table is too large; snapshot table entry corrupted");
                r.Corruptions++;
                continue;
            }
            await CheckL1Async(st, (long)sn.L1TableOffset, (int)sn.L1Size, fragInfo: false, active: false).ConfigureAwait(false);
        }
        Inc(st, (long)_hc.Header.SnapshotsOffset, SnapshotTableBytes(_snapshots));
        Inc(st, _refcounts.TableOffset, (long)_refcounts.Table.Length * 8);
        if (_hc.Encryption is { } enc)
        {
            Inc(st, (long)enc.Offset, (long)enc.Length);
        }
        if (_bitmapDirectoryOffset != 0)
        {
            Inc(st, _bitmapDirectoryOffset, _bitmapDirectorySize);
            foreach (var b in _bitmaps)
            {
                if (b.DiskTableOffset == 0)
                {
                    continue;
                }
                Inc(st, b.DiskTableOffset, (long)b.DiskTable.Length * 8);
                foreach (var t in b.DiskTable)
                {
                    var offset = (long)(t & BitmapTableEntry.OffsetMask);
                    if ((t & BitmapTableEntry.ReservedMask) != 0 || (offset != 0 && (t & BitmapTableEntry.AllOnes) != 0)
                        || (offset & _g.ClusterMask) != 0)
                    {
                        r.Corruptions++;
                        continue;
                    }
                    if (offset != 0)
                    {
                        Inc(st, offset, _g.ClusterSize);
                    }
                }
            }
        }
        await CheckRefcountBlocksAsync(st).ConfigureAwait(false);
    }

    private async ValueTask CheckL1Async(CheckState st, long offset, int size, bool fragInfo, bool active)
    {
        if (size == 0)
        {
            return;
        }
        Inc(st, offset, (long)size * 8);
        // Entries past the end of the file read as zeros; only the part inside the file is loaded.
        var inside = (int)Math.Clamp((_file.Length - offset) / 8, 0, size);
        var l1 = await ReadTableAsync(_file, offset, inside).ConfigureAwait(false);
        for (var i = 0; i < l1.Length; i++)
        {
            var e = l1[i];
            if (e == 0)
            {
                continue;
            }
            if ((e & L1Entry.ReservedMask) != 0)
            {
                st.Result.Message($"ERROR found L1 entry with reserved bits set: {e:x}");
                st.Result.Corruptions++;
            }
            var l2 = L1Entry.Offset(e);
            Inc(st, l2, _g.ClusterSize);
            if ((l2 & _g.ClusterMask) != 0)
            {
                st.Result.Message($"ERROR l2_offset={l2:x}: Table is not cluster aligned; L1 entry corrupted");
                st.Result.Corruptions++;
            }
            if (l2 >= _file.Length)
            {
                continue; // Past the end of the file the table reads as zeros: nothing to count.
            }
            if (--st.WalkBudget < 0)
            {
                if (st.WalkBudget == -1)
                {
                    st.Result.Message("ERROR: L1 tables reference more L2 tables than the image can hold; check incomplete");
                    st.Result.CheckErrors++;
                }
                return;
            }
            await CheckL2Async(st, l2, fragInfo, active).ConfigureAwait(false);
        }
    }

    private async ValueTask CheckL2Async(CheckState st, long l2Offset, bool fragInfo, bool active)
    {
        var r = st.Result;
        var table = new byte[_g.ClusterSize];
        await _file.ReadAsync(l2Offset, table).ConfigureAwait(false);
        long nextContiguous = 0;
        for (var i = 0; i < _g.L2Entries; i++)
        {
            var entry = L2Entry.Read(table, i, _g.ExtendedL2);
            var type = entry.Classify(_g.ExtendedL2, HasDataFile);
            if (type != ClusterType.Compressed && (entry.Word & L2Entry.StandardReservedMask) != 0)
            {
                r.Message($"ERROR found l2 entry with reserved bits set: {entry.Word:x}");
                r.Corruptions++;
            }
            switch (type)
            {
                case ClusterType.Compressed:
                    {
                        var word = entry.Word;
                        var offsetMask = CompressedDescriptor.OffsetFieldMask(_g.ClusterBits);
                        if ((word & L2Entry.Copied) != 0)
                        {
                            r.Message($"ERROR: coffset=0x{word & offsetMask:x}: copied flag must never be set for compressed clusters");
                            word &= ~L2Entry.Copied;
                            r.Corruptions++;
                        }
                        if (HasDataFile)
                        {
                            r.Message($"ERROR compressed cluster {i} with data file, entry=0x{word:x}");
                            r.Corruptions++;
                            break;
                        }
                        if (entry.Bitmap != 0)
                        {
                            r.Message($"ERROR compressed cluster {i} with non-zero subcluster allocation bitmap, entry=0x{word:x}");
                            r.Corruptions++;
                            break;
                        }
                        var d = CompressedDescriptor.Decode(word, _g.ClusterBits);
                        Inc(st, d.HostOffset, d.ByteLength);
                        if (fragInfo)
                        {
                            r.AllocatedClusters++;
                            r.CompressedClusters++;
                            r.FragmentedClusters++;
                        }
                        break;
                    }
                case ClusterType.ZeroAllocated:
                case ClusterType.Normal:
                    {
                        var offset = entry.HostOffset;
                        if ((entry.ZeroMask & entry.AllocatedMask) != 0)
                        {
                            r.Corruptions++;
                            r.Message($"ERROR offset={offset:x}: Allocated cluster has corrupted subcluster allocation bitmap");
                        }
                        if ((offset & _g.ClusterMask) != 0)
                        {
                            r.Corruptions++;
                            var containsData = _g.ExtendedL2 ? entry.AllocatedMask != 0 : (entry.Word & L2Entry.ZeroFlag) == 0;
                            if (!containsData)
                            {
                                r.Message($"{(st.FixErrors ? "Repairing" : "ERROR")} offset={offset:x}: Preallocated cluster is not properly aligned; L2 entry corrupted.");
                                if (st.FixErrors)
                                {
                                    var fixedEntry = _g.ExtendedL2 ? default : new L2Entry(L2Entry.ZeroFlag);
                                    fixedEntry.Write(table, i, _g.ExtendedL2);
                                    var at = l2Offset + ((long)i * _g.L2EntrySize);
                                    await _file.WriteAsync(at, table.AsMemory(i * _g.L2EntrySize, _g.L2EntrySize)).ConfigureAwait(false);
                                    _file.Sync();
                                    _l2Cache.Drop(_g.ClusterStart(at), _g.ClusterSize);
                                    r.Corruptions--;
                                    r.CorruptionsFixed++;
                                    continue;
                                }
                            }
                            else
                            {
                                r.Message($"ERROR offset={offset:x}: Data cluster is not properly aligned; L2 entry corrupted.");
                            }
                        }
                        if (fragInfo)
                        {
                            r.AllocatedClusters++;
                            if (nextContiguous != 0 && offset != nextContiguous)
                            {
                                r.FragmentedClusters++;
                            }
                            nextContiguous = offset + _g.ClusterSize;
                        }
                        if (!HasDataFile)
                        {
                            Inc(st, offset, _g.ClusterSize);
                        }
                        break;
                    }
                case ClusterType.Unallocated:
                    if (entry.AllocatedMask != 0)
                    {
                        r.Corruptions++;
                        r.Message("ERROR: Unallocated cluster has non-zero subcluster allocation map");
                    }
                    break;
            }
        }
    }

    private async ValueTask CheckRefcountBlocksAsync(CheckState st)
    {
        var r = st.Result;
        var table = _refcounts.Table;
        for (var i = 0; i < table.Length; i++)
        {
            var e = table[i];
            var offset = (long)(e & RefcountTableEntry.OffsetMask);
            var cluster = offset >> _g.ClusterBits;
            if ((e & RefcountTableEntry.ReservedMask) != 0)
            {
                r.Message($"ERROR refcount table entry {i} has reserved bits set");
                r.Corruptions++;
                st.Rebuild = true;
                continue;
            }
            if ((offset & _g.ClusterMask) != 0)
            {
                r.Message($"ERROR refcount block {i} is not cluster aligned; refcount table entry corrupted");
                r.Corruptions++;
                st.Rebuild = true;
                continue;
            }
            if (offset < 0 || cluster >= st.Refs.Length)
            {
                r.Corruptions++;
                r.Message($"{(st.FixErrors ? "Repairing" : "ERROR")} refcount block {i} is outside image");
                if (st.FixErrors)
                {
                    if (offset > 0 && offset - _file.Length < (16L << 30))
                    {
                        _file.SetLength(offset + _g.ClusterSize);
                        st.Refs.EnsureLength(_g.ClustersFor(_file.Length));
                        r.CorruptionsFixed++;
                        Inc(st, offset, _g.ClusterSize);
                        continue;
                    }
                    r.Message("ERROR could not resize image: offset too large");
                }
                continue;
            }
            if (offset != 0)
            {
                Inc(st, offset, _g.ClusterSize);
                if (st.Refs.Get(cluster) != 1)
                {
                    r.Message($"ERROR refcount block {i} refcount={st.Refs.Get(cluster)}");
                    r.Corruptions++;
                    st.Rebuild = true;
                }
            }
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

}
