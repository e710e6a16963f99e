using Blockshot.Core.Extents;
using Blockshot.Tracking.Persistence;

namespace Blockshot.Tracking;

/// <summary>How a snapshot's set of changes was obtained.</summary>
public enum SnapshotChangesKind
{
    /// <summary>The map frozen at the take (in memory, or saved at the take and read back): exactly the changes.</summary>
    Exact,

    /// <summary>Every change of the generation after the period before the take, as the map shows it now: a superset.</summary>
    Superset,

    /// <summary>Every block: the take's generation is gone, so nothing can be left out.</summary>
    Everything,
}

/// <summary>
/// What a snapshot's dirty bitmap offers: the blocks that changed after period <see cref="Since"/> up to
/// the take (the map frozen then), plus the blocks written through the snapshot's writable image since
/// (they differ from the previous backup too). Saved beside the snapshot at the take, so a reopened
/// snapshot can offer the same set after a restart.
/// </summary>
public sealed class SnapshotChanges
{
    private readonly FrozenMap _map;
    private readonly BlockSet _written;
    private readonly int _blockShift;
    private readonly long _deviceSize;

    private SnapshotChanges(FrozenMap map, byte since, int blockShift, long deviceSize, SnapshotChangesKind kind)
    {
        _map = map;
        _written = new BlockSet(map.BlockCount);
        _blockShift = blockShift;
        _deviceSize = deviceSize;
        Since = since;
        Kind = kind;
    }

    /// <summary>Changes after this period count.</summary>
    public byte Since { get; }

    /// <summary>Exact, a superset, or everything.</summary>
    public SnapshotChangesKind Kind { get; }

    /// <summary>The changes at a take: <paramref name="frozen"/> is the map the take froze.</summary>
    public static SnapshotChanges AtTake(ChangeTracker tracker, FrozenMap frozen, byte since)
    {
        ArgumentNullException.ThrowIfNull(tracker);
        return new(frozen, since, tracker.BlockShift, tracker.DeviceSize, SnapshotChangesKind.Exact);
    }

    /// <summary>The live map's changes after <paramref name="since"/>: a superset of the take's (values only grow within a generation).</summary>
    public static SnapshotChanges Superset(ChangeTracker tracker, byte since)
    {
        ArgumentNullException.ThrowIfNull(tracker);
        return new(tracker.Freeze(), since, tracker.BlockShift, tracker.DeviceSize, SnapshotChangesKind.Superset);
    }

    /// <summary>Every block changed (the take's generation is gone).</summary>
    public static SnapshotChanges Everything(ChangeTracker tracker)
    {
        ArgumentNullException.ThrowIfNull(tracker);
        return new(FrozenMap.Everything(tracker.BlockCount), 0, tracker.BlockShift, tracker.DeviceSize, SnapshotChangesKind.Everything);
    }

    /// <summary>
    /// Reads the changes saved at a take; null when the file is missing, torn, or from another generation,
    /// block size or device size (the caller then falls back to <see cref="Superset"/> or <see cref="Everything"/>).
    /// </summary>
    public static SnapshotChanges? Load(string path, ChangeTracker tracker, Guid generation, byte since)
    {
        ArgumentNullException.ThrowIfNull(tracker);
        var map = TakeFile.Read(path, generation, tracker.BlockSize, tracker.BlockCount, since);
        return map is null ? null : new(map, since, tracker.BlockShift, tracker.DeviceSize, SnapshotChangesKind.Exact);
    }

    /// <summary>Writes the changes (atomically: a temporary file, fsync, rename) for <see cref="Load"/>.</summary>
    public void Save(string path, Guid generation)
    {
        TakeFile.Write(path, generation, 1 << _blockShift, _map.BlockCount, Since, IsChanged);
    }

    /// <summary>Adds a range written through the snapshot's writable image.</summary>
    public void MarkWritten(long offset, long length)
    {
        if (length <= 0)
        {
            return;
        }
        var last = Math.Min((offset + length - 1) >> _blockShift, _map.BlockCount - 1);
        _written.Add(offset >> _blockShift, last);
    }

    /// <summary>True when the block is in the set.</summary>
    public bool IsChanged(long block) => _map.ChangedSince(block, Since) || _written.Contains(block);

    /// <summary>Blocks in the set.</summary>
    public long CountChanged()
    {
        long n = 0;
        for (long b = 0; b < _map.BlockCount; b++)
        {
            if (IsChanged(b))
            {
                n++;
            }
        }
        return n;
    }

    /// <summary>Appends runs of changed (1) and unchanged (0) bytes to <paramref name="extents"/>.</summary>
    public void Describe(long offset, long length, ExtentList extents)
    {
        var end = Math.Min(offset + length, _deviceSize);
        if (Kind == SnapshotChangesKind.Everything && offset < end)
        {
            extents.Add(end - offset, 1);
            return;
        }
        while (offset < end && !extents.IsFull)
        {
            var block = offset >> _blockShift;
            var p = block >> ChangeMap.PageShift;
            long next;
            uint flags;
            if (_map.PageEmpty(p) && _written.PageEmpty(p))
            {
                next = (p + 1) << (ChangeMap.PageShift + _blockShift);
                flags = 0;
            }
            else
            {
                next = (block + 1) << _blockShift;
                flags = IsChanged(block) ? 1u : 0u;
            }
            next = Math.Min(next, end);
            extents.Add(next - offset, flags);
            offset = next;
        }
    }
}
