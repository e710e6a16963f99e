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
public sealed record SnapshotTakeRequest(Slot Slot, Func<BlockNode, CbwFilter> Filter, string Name, SnapshotOptions Options)
{
    /// <summary>
    /// Puts a new filter into the stack, with the slot suspended (a daemon keeps its own filters above
    /// it). Null: the filter becomes the slot's node.
    /// </summary>
    public Action<CbwFilter>? Insert { get; init; }

    /// <summary>
    /// Takes a filter that <see cref="Insert"/> put in out again when the take fails (slot still
    /// suspended). Null: the slot's previous node goes back.
    /// </summary>
    public Action<CbwFilter>? Remove { get; init; }
}
