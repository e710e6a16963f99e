using Blockshot.Tracking;

namespace Blockshot.Daemon.SnapshotSets;

/// <summary>
/// A snapshot's view of change tracking: the map frozen at the take and the period before it, so the
/// snapshot's export offers exactly the blocks changed since the previous snapshot.
/// </summary>
/// <param name="Tracker">The device's tracker (for the block size, and to mark writes to the image).</param>
/// <param name="Map">The map as the take froze it (after a restart: the live map, a superset).</param>
/// <param name="Since">Changes after this period are dirty.</param>
/// <param name="Period">The period the take ended.</param>
/// <param name="Generation">The generation the map belongs to.</param>
internal sealed record DirtyBitmapView(ChangeTracker Tracker, FrozenMap Map, byte Since, byte Period, Guid Generation)
{
    /// <summary>The bitmap name a snapshot export offers when none is given.</summary>
    public const string DefaultName = "blockshot-cbt";

    public DirtyBitmapContext Context(string name) => DirtyBitmapContext.For(Tracker, Map, name, Since);
}
