using Blockshot.Tracking;

namespace Blockshot.Daemon.SnapshotSets;

/// <summary>
/// A snapshot's view of change tracking: the blocks changed after the period before its take, up to the
/// take (plus writes through its writable image), so the snapshot's export offers exactly what changed
/// since the previous snapshot.
/// </summary>
/// <param name="Tracker">The device's tracker (to mark writes to the image in the device's map too).</param>
/// <param name="Changes">The set the bitmap offers (exact, or after a restart without the take's record, a superset).</param>
/// <param name="Since">Changes after this period are dirty.</param>
/// <param name="Period">The period the take ended.</param>
/// <param name="Generation">The generation the changes belong to.</param>
internal sealed record DirtyBitmapView(ChangeTracker Tracker, SnapshotChanges Changes, byte Since, byte Period, Guid Generation)
{
    /// <summary>The bitmap name a snapshot export offers when none is given.</summary>
    public const string DefaultName = "blockshot-cbt";

    public DirtyBitmapContext Context(string name) => new(name, Changes);

    /// <summary>Marks a write through the snapshot's writable image: in the device's map (durably) and in the snapshot's own set.</summary>
    public async ValueTask MarkImageWriteAsync(long offset, long length)
    {
        Changes.MarkWritten(offset, length);
        await Tracker.MarkDirtyAsync(offset, length).ConfigureAwait(false);
    }

    /// <summary>
    /// The view of a persistent snapshot reopened after a restart: the changes saved at its take when they
    /// are still of the tracker's generation (a writable snapshot's image writes since are not in them, so
    /// it gets the live map's superset); without a record, the live map's changes after the recorded
    /// period; from another generation, every block.
    /// </summary>
    public static DirtyBitmapView Reopened(ChangeTracker tracker, PersistentState.TakeRecord? take, bool writable)
    {
        var generation = tracker.Generation;
        if (take is null || take.Generation != generation)
        {
            return new(tracker, SnapshotChanges.Everything(tracker), take?.Since ?? 0, take?.Period ?? 0, generation);
        }
        var changes = (writable ? null : SnapshotChanges.Load(take.Map, tracker, generation, take.Since))
            ?? SnapshotChanges.Superset(tracker, take.Since);
        return new(tracker, changes, take.Since, take.Period, generation);
    }
}
