using Blockshot.Core;
using Blockshot.Core.Extents;

namespace Blockshot.Tracking;

/// <summary>
/// A <c>qemu:dirty-bitmap:NAME</c> status context over a snapshot's changes: flag 1 marks bytes in blocks
/// that changed after period <c>since</c> (and, for a writable snapshot, blocks written through its
/// image), which is what an incremental backup from the snapshot must copy.
/// </summary>
public sealed class DirtyBitmapContext(string name, SnapshotChanges changes) : BlockStatusContext
{
    /// <summary>The prefix of every dirty-bitmap context name.</summary>
    public const string Prefix = "qemu:dirty-bitmap:";

    /// <inheritdoc/>
    public override string Name { get; } = Prefix + name;

    /// <summary>The period after which changes count.</summary>
    public byte Since => changes.Since;

    /// <inheritdoc/>
    public override ValueTask QueryAsync(long offset, long length, ExtentList extents)
    {
        changes.Describe(offset, length, extents);
        return default;
    }

    /// <summary>A context for <paramref name="tracker"/>'s blocks in <paramref name="map"/> changed after <paramref name="since"/>.</summary>
    public static DirtyBitmapContext For(ChangeTracker tracker, FrozenMap map, string name, byte since) =>
        new(name, SnapshotChanges.AtTake(tracker, map, since));
}
