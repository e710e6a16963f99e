using Blockshot.Core.Platform;

namespace Blockshot.Tracking;

/// <summary>How a device is tracked.</summary>
public sealed record TrackerOptions
{
    /// <summary>Bytes per tracking block (a power of two, at least 4 KiB). Default 64 KiB.</summary>
    public int BlockSize { get; init; } = 64 << 10;

    /// <summary>
    /// The granularity of the durable marks (a power of two; default 4 MiB; a tracking block if larger).
    /// The first change in a period anywhere in such a region makes the mark durable for the whole region, so
    /// further first changes in it wait for no flush. The map in memory stays exact per block and a clean close
    /// saves it exact; after an unclean stop the reopened map is a superset at this granularity for the
    /// regions written in the last period. At most <see cref="BlockSize"/>: every mark is durable on its own.
    /// </summary>
    public int DurableRegionSize { get; init; } = 4 << 20;

    /// <summary>The sidecar file that keeps the map across restarts; null for a map in memory only.</summary>
    public string? SidecarPath { get; init; }

    /// <summary>Reads the device's identity (for noticing writes made while it was not tracked).</summary>
    public Func<DeviceIdentity>? Identity { get; init; }

    /// <summary>How often, while writes flow, the tracker records that it still vouches for the device.</summary>
    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a heartbeat vouches for the device's writes: after an unclean stop, a device modified later
    /// than the last heartbeat plus this was written by someone else (a new generation). No write reaches
    /// the device under a heartbeat older than half of it (the write renews it first), so a slow machine
    /// cannot make a tracked write look foreign.
    /// </summary>
    public TimeSpan Lease { get; init; } = TimeSpan.FromSeconds(10);
}
