namespace Blockshot.Snapshots;

/// <summary>What happens when a write cannot be protected (difference storage full, or it failed).</summary>
public enum OverflowPolicy
{
    /// <summary>The snapshot is marked failed and its reads fail; the device and change tracking go on.</summary>
    BreakSnapshot,

    /// <summary>The write fails (ENOSPC when storage is full, EIO on an I/O error); the snapshot stays valid.</summary>
    FailWrite,

    /// <summary>The writer waits for space up to a timeout, then falls back to the configured policy.</summary>
    Wait,
}
