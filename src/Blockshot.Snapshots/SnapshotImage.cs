using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Snapshots.Cbw;

namespace Blockshot.Snapshots;

/// <summary>
/// A snapshot as a block node, to export over NBD or FUSE. Reads return the device as it was at the
/// take. Writes (when the snapshot is writable) go to difference storage, never to the origin. A trim
/// discards whole chunks: their storage is freed and later reads of them fail (read-once access for
/// backup readers).
/// </summary>
public sealed partial class SnapshotImage : BlockNode
{
    private readonly Snapshot _snapshot;
    private readonly CbwFilter _filter;
    private readonly CopyOrderContext _copyOrder;

    internal SnapshotImage(Snapshot snapshot)
    {
        _snapshot = snapshot;
        _filter = snapshot.Filter;
        _copyOrder = new CopyOrderContext(this);
    }

    /// <inheritdoc/>
    public override string Kind => "snapshot";

    /// <inheritdoc/>
    public override long Size => _filter.OriginSize;

    /// <summary>The snapshot this image shows.</summary>
    public Snapshot Snapshot => _snapshot;

    /// <inheritdoc/>
    public override IReadOnlyList<BlockStatusContext> StatusContexts => [_copyOrder];

    /// <inheritdoc/>
    public override string Describe() => $"snapshot '{_snapshot.Name}' of {_filter.Next.Describe()}";

    /// <inheritdoc/>
    protected override NodeCapabilities ComputeCapabilities()
    {
        var features = NodeFeatures.Trim | NodeFeatures.Extents | NodeFeatures.MultiConn | NodeFeatures.Flush;
        if (_snapshot.Options.Writable)
        {
            features |= NodeFeatures.Write | NodeFeatures.WriteZeroes | NodeFeatures.Fua;
        }
        return new NodeCapabilities(features, 1, Math.Min(_filter.ChunkSize, 64 << 10));
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        ThrowIfUnreadable();
        var (start, length) = ChunkRange(offset, buffer.Length);
        using (await _filter.Locks.AcquireAsync(start, length, shared: true).ConfigureAwait(false))
        {
            ThrowIfUnreadable();
            await ReadLockedAsync(offset, buffer).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads with the chunks' shared lock held. Runs of origin chunks become one origin read, and runs of
    /// chunks in consecutive store slots one store read.
    /// </summary>
    private async ValueTask ReadLockedAsync(long offset, Memory<byte> buffer)
    {
        var table = _snapshot.Table;
        while (!buffer.IsEmpty)
        {
            var chunk = _filter.ChunkOf(offset);
            var inChunk = (int)(offset - _filter.ChunkOffset(chunk));
            var n = Math.Min(buffer.Length, _filter.ChunkSize - inChunk);
            var entry = table[chunk];
            switch (entry)
            {
                case ChunkTable.None:
                    while (n < buffer.Length && table[_filter.ChunkOf(offset + n)] == ChunkTable.None)
                    {
                        n += Math.Min(buffer.Length - n, _filter.ChunkSize);
                    }
                    await _filter.Next.ReadAsync(offset, buffer[..n]).ConfigureAwait(false);
                    break;
                case ChunkTable.Zero:
                    buffer.Span[..n].Clear();
                    break;
                case ChunkTable.Discarded:
                    throw new BlockException(BlockError.Io, $"chunk {chunk} of snapshot '{_snapshot.Name}' was discarded by a reader");
                default:
                    var slot = ChunkTable.ToSlot(entry);
                    n = ExtendSlotRun(table, offset, n, buffer.Length, slot);
                    await _filter.Store.ReadRunAsync(slot, inChunk, buffer[..n]).ConfigureAwait(false);
                    break;
            }
            buffer = buffer[n..];
            offset += n;
        }
    }

    /// <summary>
    /// Extends a read of <paramref name="n"/> bytes at <paramref name="offset"/>, which starts in store slot
    /// <paramref name="slot"/>, over the chunks after it while they sit in the slots after it.
    /// </summary>
    private int ExtendSlotRun(ChunkTable table, long offset, int n, int length, long slot)
    {
        for (var next = slot + 1; n < length; next++)
        {
            var entry = table[_filter.ChunkOf(offset + n)];
            if (!ChunkTable.IsSlot(entry) || ChunkTable.ToSlot(entry) != next)
            {
                break;
            }
            n += Math.Min(length - n, _filter.ChunkSize);
        }
        return n;
    }

    private (long Start, long Length) ChunkRange(long offset, long length)
    {
        var first = _filter.ChunkOf(offset);
        var last = _filter.ChunkOf(offset + Math.Max(length, 1) - 1);
        return (_filter.ChunkOffset(first), _filter.ChunkOffset(last - first + 1));
    }

    private void ThrowIfUnreadable()
    {
        switch (_snapshot.State)
        {
            case SnapshotState.Failed:
                throw new BlockException(BlockError.Io, $"snapshot '{_snapshot.Name}' is broken: {_snapshot.FailureReason}");
            case SnapshotState.Destroyed:
                throw new BlockException(BlockError.Io, $"snapshot '{_snapshot.Name}' was destroyed");
        }
    }
}
