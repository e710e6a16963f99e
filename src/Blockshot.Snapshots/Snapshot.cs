using Blockshot.Snapshots.Cbw;

namespace Blockshot.Snapshots;

/// <summary>
/// One point-in-time view of a device. Its table says, per chunk, where the data as of the take lives:
/// still on the origin, in a difference-storage slot (possibly shared with other snapshots), all
/// zeros, or discarded by a reader.
/// </summary>
public sealed class Snapshot
{
    private string? _failure;

    internal Snapshot(CbwFilter filter, string name, long number, SnapshotOptions options, long chunkCount, DateTimeOffset? takenAt = null)
    {
        Filter = filter;
        Name = name;
        Number = number;
        Options = options;
        Table = new ChunkTable(chunkCount);
        TakenAt = takenAt ?? DateTimeOffset.UtcNow;
        Image = new SnapshotImage(this);
    }

    /// <summary>The name given at the take.</summary>
    public string Name { get; }

    /// <summary>Increasing number of this snapshot on its device.</summary>
    public long Number { get; }

    /// <summary>When it was taken (UTC).</summary>
    public DateTimeOffset TakenAt { get; }

    /// <summary>The settings it was taken with.</summary>
    public SnapshotOptions Options { get; }

    /// <summary>The node that reads (and, if writable, writes) this snapshot.</summary>
    public SnapshotImage Image { get; }

    /// <summary>Where it is in its life.</summary>
    public SnapshotState State { get; internal set; }

    /// <summary>Why it failed, when it did.</summary>
    public string? FailureReason => Volatile.Read(ref _failure);

    /// <summary>When it failed, if it did.</summary>
    public DateTimeOffset? FailedAt { get; private set; }

    /// <summary>Chunks copied for it (including those shared with other snapshots).</summary>
    public long CopiedChunks => Interlocked.Read(ref _copied);

    /// <summary>Memory its chunk table uses.</summary>
    public long TableBytes => Table.MemoryBytes;

    internal CbwFilter Filter { get; }

    internal ChunkTable Table { get; }

    internal bool IsActive => State == SnapshotState.Active;

    private long _copied;

    internal void CountCopy() => Interlocked.Increment(ref _copied);

    internal bool MarkFailed(string reason)
    {
        if (Interlocked.CompareExchange(ref _failure, reason, null) is not null || State != SnapshotState.Active)
        {
            return false;
        }
        FailedAt = DateTimeOffset.UtcNow;
        State = SnapshotState.Failed;
        return true;
    }
}
