using Blockshot.Daemon.Devices;
using Blockshot.Snapshots;

namespace Blockshot.Daemon.SnapshotSets;

/// <summary>One device's snapshot in a set, with the change map frozen at its take and its exports.</summary>
internal sealed class SnapshotMember(Device device, Snapshot snapshot)
{
    public Device Device { get; } = device;

    public Snapshot Snapshot { get; } = snapshot;

    /// <summary>The changes since the previous snapshot, when the device is tracked. Set at the take.</summary>
    public DirtyBitmapView? Bitmap { get; set; }

    /// <summary>Export names. Guarded by the registry's snapshot lock.</summary>
    public List<string> Exports { get; } = [];
}
