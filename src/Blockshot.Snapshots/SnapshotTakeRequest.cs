using Blockshot.Core;

namespace Blockshot.Snapshots;

/// <summary>One device of a snapshot set: its slot, how to get its CBW filter, and the snapshot to add.</summary>
/// <param name="Slot">The device's slot (it is suspended for the take).</param>
/// <param name="Filter">
/// The device's CBW filter: called with the slot suspended and the current stack; returns the filter to
/// use (an existing one in the stack, or a new one over the current stack that the take will insert).
/// </param>
/// <param name="Name">The snapshot's name.</param>
/// <param name="Options">The snapshot's settings.</param>
public sealed record SnapshotTakeRequest(Slot Slot, Func<BlockNode, CbwFilter> Filter, string Name, SnapshotOptions Options);
