using Blockshot.Core.Platform;

namespace Blockshot.Snapshots;

/// <summary>Where and how a device's snapshots are kept across restarts.</summary>
public sealed record SnapshotPersistence
{
    /// <summary>The exception log file (created if missing).</summary>
    public required string LogPath { get; init; }

    /// <summary>The origin's identity now, to tell whether anything wrote it while it was unprotected.</summary>
    public Func<DeviceIdentity>? Identity { get; init; }

    /// <summary>How often, while writes flow, the log records that the origin is still protected.</summary>
    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromSeconds(1);
}
