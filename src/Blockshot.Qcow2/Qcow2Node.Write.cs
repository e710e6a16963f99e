using System.Buffers;
using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Qcow2.Format;
using Blockshot.Qcow2.Internal;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    private enum WriteAction
    {
        /// <summary>The clusters are allocated here with refcount one: write in place, no metadata.</summary>
        Direct,

        /// <summary>One cluster keeps its host cluster but its entry changes (zero flag or subcluster bits).</summary>
        Rewrite,

        /// <summary>New host clusters (copy-on-write of whatever the old entries described).</summary>
        Allocate,
    }

    /// <summary>What one step of a write does; made under the metadata lock, carried out outside it.</summary>
    private sealed class WritePlan
    {
        public WriteAction Action;
        public int L1Index;
        public long L2Offset;
        public int L2Index;
        public int Clusters;
        public long Pos;
        public int Length;
        public long HostWrite;
        public long HostStart;
        public int Head;
        public int Tail;
        public bool FreshSpace;
        public L2Entry[] Old = [];
        public L2Entry[] New = [];
    }

    /// <inheritdoc/>
    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags) =>
        WriteCoreAsync(offset, new WriteData(data), flags);

    /// <inheritdoc/>
    public override async ValueTask<bool> TryWriteFromFileAsync(long offset, FileDataRange source, IoFlags flags)
    {
        if (!source.IsMapped)
        {
            return false;
        }
        await WriteCoreAsync(offset, new WriteData(source), flags).ConfigureAwait(false);
        return true;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteCoreAsync(long offset, WriteData data, IoFlags flags)
    {
        CheckWritable();
        if (data.Length == 0)
        {
            return;
        }
        var end = offset + data.Length;
        var lockStart = _g.ClusterStart(offset);
        using (await _ranges.AcquireAsync(lockStart, Align.Up(end, _g.ClusterSize) - lockStart).ConfigureAwait(false))
        {
            var pos = offset;
            while (pos < end)
            {
                var done = (int)(pos - offset);
                pos += await WriteStepAsync(pos, data.Slice(done, data.Length - done)).ConfigureAwait(false);
            }
            MarkBitmapsDirty(offset, data.Length);
        }
        if ((flags & IoFlags.Fua) != 0)
        {
            await FlushAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Writes as much of <paramref name="data"/> (starting at guest <paramref name="pos"/>) as one plan covers.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> WriteStepAsync(long pos, WriteData data)
    {
        WritePlan? plan = null;
        (long Host, int Length) direct;
        await _meta.WaitAsync().ConfigureAwait(false);
        try
        {
            CheckWritable();
            await MarkDirtyIfLazyAsync().ConfigureAwait(false);
            direct = await PlanInPlaceAsync(pos, pos + data.Length).ConfigureAwait(false);
            if (direct.Length == 0)
            {
                plan = await PlanWriteAsync(pos, pos + data.Length).ConfigureAwait(false);
            }
        }
        finally
        {
            _meta.Release();
        }
        if (plan is null)
        {
            // The common case, written in place with no metadata change and nothing allocated.
            await data.Slice(0, direct.Length).WriteToAsync(DataTarget, direct.Host).ConfigureAwait(false);
            return direct.Length;
        }
        var payload = data.Slice(0, plan.Length);
        if (plan.Action == WriteAction.Direct)
        {
            await payload.WriteToAsync(DataTarget, plan.HostWrite).ConfigureAwait(false);
            return plan.Length;
        }
        if (plan.FreshSpace)
        {
            // New clusters past the end of the file read as zeros already: only the data is written.
            try
            {
                await payload.WriteToAsync(DataTarget, plan.HostWrite + plan.Head).ConfigureAwait(false);
            }
            catch
            {
                await RollbackAsync(plan).ConfigureAwait(false);
                throw;
            }
            await _meta.WaitAsync().ConfigureAwait(false);
            try
            {
                await CommitAsync(plan, copied: false).ConfigureAwait(false);
            }
            finally
            {
                _meta.Release();
            }
            return plan.Length;
        }
        byte[]? head = null;
        byte[]? tail = null;
        try
        {
            if (plan.Head > 0)
            {
                head = ArrayPool<byte>.Shared.Rent(plan.Head);
                await ReadFromEntryAsync(plan.Old[0], pos - plan.Head, head.AsMemory(0, plan.Head)).ConfigureAwait(false);
            }
            if (plan.Tail > 0)
            {
                tail = ArrayPool<byte>.Shared.Rent(plan.Tail);
                await ReadFromEntryAsync(plan.Old[plan.Clusters - 1], pos + plan.Length, tail.AsMemory(0, plan.Tail)).ConfigureAwait(false);
            }
            if (payload.IsFile)
            {
                // Head and tail from the old clusters, the data between them copied from its file.
                if (head is not null)
                {
                    await DataTarget.WriteAsync(plan.HostWrite, head.AsMemory(0, plan.Head)).ConfigureAwait(false);
                }
                await payload.WriteToAsync(DataTarget, plan.HostWrite + plan.Head).ConfigureAwait(false);
                if (tail is not null)
                {
                    await DataTarget.WriteAsync(plan.HostWrite + plan.Head + plan.Length, tail.AsMemory(0, plan.Tail)).ConfigureAwait(false);
                }
            }
            else
            {
                var parts = new List<ReadOnlyMemory<byte>>(3);
                if (head is not null)
                {
                    parts.Add(head.AsMemory(0, plan.Head));
                }
                parts.Add(payload.Memory);
                if (tail is not null)
                {
                    parts.Add(tail.AsMemory(0, plan.Tail));
                }
                await DataTarget.WriteAsync(plan.HostWrite, parts).ConfigureAwait(false);
            }
        }
        catch
        {
            await RollbackAsync(plan).ConfigureAwait(false);
            throw;
        }
        finally
        {
            if (head is not null)
            {
                ArrayPool<byte>.Shared.Return(head);
            }
            if (tail is not null)
            {
                ArrayPool<byte>.Shared.Return(tail);
            }
        }
        await _meta.WaitAsync().ConfigureAwait(false);
        try
        {
            await CommitAsync(plan, plan.Head + plan.Tail > 0).ConfigureAwait(false);
        }
        finally
        {
            _meta.Release();
        }
        return plan.Length;
    }

    /// <summary>
    /// The fast plan, allocating nothing: when <c>[pos, end)</c> starts in clusters written in place
    /// (refcount one, contiguous on the host), their host offset and the length they cover; otherwise a
    /// length of 0, and <see cref="PlanWriteAsync"/> decides (and reports invalid entries). Under
    /// <see cref="_meta"/>.
    /// </summary>
    private async ValueTask<(long Host, int Length)> PlanInPlaceAsync(long pos, long end)
    {
        var guestCluster = pos >> _g.ClusterBits;
        if (await L2TableOffsetAsync(_g.L1Index(guestCluster)).ConfigureAwait(false) == 0)
        {
            return default;
        }
        var clusterStart = guestCluster << _g.ClusterBits;
        var n = (int)Math.Min(((end - 1) >> _g.ClusterBits) - guestCluster + 1, _g.L2Entries - _g.L2Index(guestCluster));
        long host = 0;
        var k = 0;
        for (; k < n; k++)
        {
            var cs = clusterStart + ((long)k << _g.ClusterBits);
            var entry = await GetEntryAsync(guestCluster + k).ConfigureAwait(false);
            if (!EntryIsValid(entry, cs) || ActionFor(entry, Math.Max(pos, cs), Math.Min(end, cs + _g.ClusterSize)) != WriteAction.Direct)
            {
                break;
            }
            if (k == 0)
            {
                host = entry.HostOffset;
            }
            else if (entry.HostOffset != host + ((long)k << _g.ClusterBits))
            {
                break;
            }
        }
        if (k == 0)
        {
            return default;
        }
        var length = (int)(Math.Min(end, clusterStart + ((long)k << _g.ClusterBits)) - pos);
        var at = host + _g.InCluster(pos);
        await CheckNotMetadataAsync(at, length).ConfigureAwait(false);
        return (at, length);
    }

    /// <summary>Decides how to write <c>[pos, end)</c> (or its first part). Under <see cref="_meta"/>.</summary>
    private async ValueTask<WritePlan> PlanWriteAsync(long pos, long end)
    {
        var guestCluster = pos >> _g.ClusterBits;
        var l1Index = _g.L1Index(guestCluster);
        var l2 = await EnsureL2TableAsync(l1Index).ConfigureAwait(false);
        var l2Index = _g.L2Index(guestCluster);
        var lastCluster = (end - 1) >> _g.ClusterBits;
        var n = (int)Math.Min(lastCluster - guestCluster + 1, _g.L2Entries - l2Index);
        var entries = new L2Entry[n];
        await ReadEntriesAsync(l2, l2Index, n, entries).ConfigureAwait(false);

        var plan = new WritePlan { L1Index = l1Index, L2Offset = l2, L2Index = l2Index, Pos = pos };
        var clusterStart = guestCluster << _g.ClusterBits;
        for (var i = 0; i < n; i++)
        {
            if (!EntryIsValid(entries[i], clusterStart + ((long)i << _g.ClusterBits)))
            {
                throw await SignalCorruptionAsync(
                    $"invalid L2 entry {entries[i]} (L2 offset: 0x{l2:x}, L2 index: 0x{l2Index + i:x})").ConfigureAwait(false);
            }
        }
        var firstTo = Math.Min(end, clusterStart + _g.ClusterSize);
        var action = ActionFor(entries[0], pos, firstTo);
        plan.Action = action;
        switch (action)
        {
            case WriteAction.Direct:
                {
                    var k = 1;
                    while (k < n)
                    {
                        var cs = clusterStart + ((long)k << _g.ClusterBits);
                        if (ActionFor(entries[k], cs, Math.Min(end, cs + _g.ClusterSize)) != WriteAction.Direct
                            || entries[k].HostOffset != entries[0].HostOffset + ((long)k << _g.ClusterBits))
                        {
                            break;
                        }
                        k++;
                    }
                    plan.Clusters = k;
                    plan.Length = (int)(Math.Min(end, clusterStart + ((long)k << _g.ClusterBits)) - pos);
                    plan.HostWrite = entries[0].HostOffset + _g.InCluster(pos);
                    await CheckNotMetadataAsync(plan.HostWrite, plan.Length).ConfigureAwait(false);
                    return plan;
                }
            case WriteAction.Rewrite:
                PlanRewrite(plan, entries[0], clusterStart, firstTo);
                await CheckNotMetadataAsync(plan.HostStart, _g.ClusterSize).ConfigureAwait(false);
                return plan;
            default:
                {
                    var k = 1;
                    while (k < n)
                    {
                        var cs = clusterStart + ((long)k << _g.ClusterBits);
                        if (ActionFor(entries[k], cs, Math.Min(end, cs + _g.ClusterSize)) != WriteAction.Allocate)
                        {
                            break;
                        }
                        k++;
                    }
                    long host;
                    if (HasDataFile)
                    {
                        host = clusterStart;
                    }
                    else
                    {
                        (host, k) = await _refcounts.AllocateAsync(k).ConfigureAwait(false);
                    }
                    PlanAllocate(plan, entries, k, host, clusterStart, end);
                    plan.FreshSpace = IsFreshSpace(plan, host);
                    return plan;
                }
        }
    }

    /// <summary>
    /// True when the new clusters lie wholly past the end of the image file (never written, so they read
    /// as zeros) and what the write would copy around the data reads as zeros too (nothing allocated
    /// there before, no backing data under it): then the copy-on-write head and tail need no writing.
    /// Under <see cref="_meta"/>.
    /// </summary>
    private bool IsFreshSpace(WritePlan plan, long host)
    {
        if (HasDataFile || _g.ExtendedL2 || plan.Head + plan.Tail == 0)
        {
            return false;
        }
        if (_backing is not null && _backing.Size > plan.Pos - plan.Head)
        {
            return false;
        }
        foreach (var old in plan.Old)
        {
            if (old.Classify(false, false) is not (ClusterType.Unallocated or ClusterType.ZeroPlain))
            {
                return false;
            }
        }
        return host >= _file.Length;
    }

    /// <summary>
    /// Refuses a data write that would land on known metadata (an L2 entry pointing at a table can only
    /// come from corruption); the image is marked corrupt. Under <see cref="_meta"/>.
    /// </summary>
    private async ValueTask CheckNotMetadataAsync(long host, long length)
    {
        if (!HasDataFile && _metadata.Overlaps(host, length))
        {
            throw await SignalCorruptionAsync($"Preventing invalid write on metadata (guest data at host offset 0x{host:x} overlaps metadata)").ConfigureAwait(false);
        }
    }

    private WriteAction ActionFor(L2Entry entry, long from, long to)
    {
        var type = entry.Classify(_g.ExtendedL2, HasDataFile);
        if (type == ClusterType.Normal && entry.IsCopied)
        {
            if (!_g.ExtendedL2)
            {
                return WriteAction.Direct;
            }
            var mask = Geometry.SubclusterMask(_g.Subcluster(from), _g.Subcluster(to - 1) + 1);
            return (entry.AllocatedMask & mask) == mask ? WriteAction.Direct : WriteAction.Rewrite;
        }
        if (type == ClusterType.ZeroAllocated && entry.IsCopied)
        {
            return WriteAction.Rewrite;
        }
        return WriteAction.Allocate;
    }

    private void PlanRewrite(WritePlan plan, L2Entry old, long clusterStart, long to)
    {
        var pos = plan.Pos;
        plan.Clusters = 1;
        plan.Length = (int)(to - pos);
        plan.Old = [old];
        plan.HostStart = old.HostOffset;
        if (!_g.ExtendedL2)
        {
            // A preallocated zero cluster: the rest of the cluster must be written with zeros.
            plan.Head = (int)(pos - clusterStart);
            plan.Tail = (int)(clusterStart + _g.ClusterSize - to);
            plan.New = [new L2Entry(L2Entry.Copied | (ulong)old.HostOffset)];
        }
        else
        {
            var scFrom = _g.Subcluster(pos);
            var scTo = _g.Subcluster(to - 1) + 1;
            var unitStart = clusterStart + ((long)scFrom << _g.SubclusterBits);
            var unitEnd = clusterStart + ((long)scTo << _g.SubclusterBits);
            plan.Head = (old.AllocatedMask & (1u << scFrom)) != 0 ? 0 : (int)(pos - unitStart);
            plan.Tail = (old.AllocatedMask & (1u << (scTo - 1))) != 0 ? 0 : (int)(unitEnd - to);
            var mask = Geometry.SubclusterMask(scFrom, scTo);
            var alloc = old.AllocatedMask | mask;
            var zero = old.ZeroMask & ~mask;
            plan.New = [new L2Entry(old.Word | L2Entry.Copied, ((ulong)zero << 32) | alloc)];
        }
        plan.HostWrite = old.HostOffset + _g.InCluster(pos - plan.Head);
    }

    private void PlanAllocate(WritePlan plan, L2Entry[] entries, int k, long host, long clusterStart, long end)
    {
        var pos = plan.Pos;
        plan.Clusters = k;
        plan.HostStart = host;
        plan.Old = entries.AsSpan(0, k).ToArray();
        var lastStart = clusterStart + ((long)(k - 1) << _g.ClusterBits);
        var to = Math.Min(end, lastStart + _g.ClusterSize);
        plan.Length = (int)(to - pos);
        var firstBySub = _g.ExtendedL2 && entries[0].Classify(true, HasDataFile) == ClusterType.Unallocated;
        var lastBySub = _g.ExtendedL2 && entries[k - 1].Classify(true, HasDataFile) == ClusterType.Unallocated;
        var headStart = firstBySub ? clusterStart + ((long)_g.Subcluster(pos) << _g.SubclusterBits) : clusterStart;
        var tailEnd = lastBySub ? lastStart + ((long)(_g.Subcluster(to - 1) + 1) << _g.SubclusterBits) : lastStart + _g.ClusterSize;
        plan.Head = (int)(pos - headStart);
        plan.Tail = (int)(tailEnd - to);
        plan.HostWrite = host + _g.InCluster(headStart);
        plan.New = new L2Entry[k];
        for (var i = 0; i < k; i++)
        {
            var word = L2Entry.Copied | (ulong)(host + ((long)i << _g.ClusterBits));
            if (!_g.ExtendedL2)
            {
                plan.New[i] = new L2Entry(word);
                continue;
            }
            var bySub = (i == 0 && firstBySub) || (i == k - 1 && lastBySub);
            if (!bySub)
            {
                plan.New[i] = new L2Entry(word, L2Entry.AllAllocated);
                continue;
            }
            var from = i == 0 ? _g.Subcluster(pos) : 0;
            var upto = i == k - 1 ? _g.Subcluster(to - 1) + 1 : Qcow2Constants.SubclustersPerCluster;
            var mask = Geometry.SubclusterMask(from, upto);
            var alloc = entries[i].AllocatedMask | mask;
            var zero = entries[i].ZeroMask & ~mask;
            plan.New[i] = new L2Entry(word, ((ulong)zero << 32) | alloc);
        }
    }

    /// <summary>Points the L2 entries at the written clusters and frees what they replaced. Under <see cref="_meta"/>.</summary>
    private async ValueTask CommitAsync(WritePlan plan, bool copied)
    {
        if (L1Entry.Offset(_l1[plan.L1Index]) != plan.L2Offset)
        {
            Qcow2Error.Corrupt("L2 table moved during a write");
        }
        await WriteEntriesAsync(plan.L2Offset, plan.L2Index, plan.New).ConfigureAwait(false);
        if (plan.Action == WriteAction.Allocate && !HasDataFile && !_refcounts.Lazy)
        {
            await _l2Cache.SetDependencyAsync(_refcountCache).ConfigureAwait(false);
        }
        if (copied)
        {
            _l2Cache.DependsOnFlush = true;
        }
        if (plan.Action == WriteAction.Allocate)
        {
            foreach (var old in plan.Old)
            {
                await FreeEntryAsync(old).ConfigureAwait(false);
            }
            if (_refcounts.QuarantineCount > 65536)
            {
                // Bound the quarantine: a flush makes the freeing entries durable and releases it.
                await FlushMetadataAsync().ConfigureAwait(false);
            }
        }
    }

    private async ValueTask RollbackAsync(WritePlan plan)
    {
        if (plan.Action != WriteAction.Allocate || HasDataFile)
        {
            return;
        }
        await _meta.WaitAsync().ConfigureAwait(false);
        try
        {
            await _refcounts.UpdateAsync(plan.HostStart, (long)plan.Clusters << _g.ClusterBits, -1).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The clusters leak; a check reclaims them.
        }
        finally
        {
            _meta.Release();
        }
    }
}
