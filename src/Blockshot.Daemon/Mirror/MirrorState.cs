using Blockshot.Core;

namespace Blockshot.Daemon.Mirror;

/// <summary>
/// What a mirror's filter nodes and its copier share: the target, the dirty map, the range lock and
/// the mode. Before <see cref="Active"/>, the filter only records which chunks writes touched (after
/// each write completes, so a copier that takes a chunk before reading it can never miss a write).
/// Once active, each write goes to the source and then the target while holding its byte range in
/// <see cref="Locks"/>, and the copier holds each chunk it copies there too, so a copy of old data
/// can never land on the target after a newer mirrored write.
/// </summary>
internal sealed class MirrorState(BlockNode target, long size, int granularity)
{
    private volatile bool _active;
    private long _targetErrors;

    public BlockNode Target { get; } = target;

    public DirtyBitmap Dirty { get; } = new(size, granularity);

    public RangeLock Locks { get; } = new();

    /// <summary>True once writes are mirrored to the target as they happen.</summary>
    public bool Active
    {
        get => _active;
        set => _active = value;
    }

    /// <summary>Mirrored writes that failed on the target (their chunks were marked to copy again).</summary>
    public long TargetErrors => Volatile.Read(ref _targetErrors);

    public void MarkDirty(long offset, long length) => Dirty.Mark(offset, length);

    public void TargetFailed(long offset, long length)
    {
        Interlocked.Increment(ref _targetErrors);
        Dirty.Mark(offset, length);
    }
}
