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

    /// <summary>
    /// How long a heartbeat vouches for the origin's writes: after an unclean stop, an origin modified
    /// later than its last heartbeat plus this was written by someone else. A write never reaches the
    /// origin under a heartbeat older than half of it (the write renews it first), so a slow machine
    /// cannot make a protected write look foreign.
    /// </summary>
    public TimeSpan Lease { get; init; } = TimeSpan.FromSeconds(10);
}
