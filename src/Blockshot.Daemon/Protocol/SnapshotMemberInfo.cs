namespace Blockshot.Daemon.Protocol;

/// <summary>One device's snapshot in a set.</summary>
public sealed class SnapshotMemberInfo
{
    /// <summary>The device.</summary>
    public string Device { get; init; } = "";

    /// <summary>Increasing number of the snapshot on its device.</summary>
    public long Number { get; init; }

    /// <summary>active, failed or destroyed.</summary>
    public string State { get; init; } = "";

    /// <summary>Why it failed (overflow, an I/O error, an unprovable restart), when it did.</summary>
    public string? Failure { get; init; }

    /// <summary>When it failed.</summary>
    public DateTimeOffset? FailedAt { get; init; }

    /// <summary>Device size in bytes.</summary>
    public long Size { get; init; }

    /// <summary>Bytes per chunk.</summary>
    public int ChunkSize { get; init; }

    /// <summary>The difference storage (shared by every snapshot of the device).</summary>
    public string Storage { get; init; } = "";

    /// <summary>Bytes the storage holds.</summary>
    public long StorageUsed { get; init; }

    /// <summary>The most the storage may hold.</summary>
    public long StorageLimit { get; init; }

    /// <summary>Chunks copied for this snapshot (shared copies count for each snapshot).</summary>
    public long CopiedChunks { get; init; }

    /// <summary>Memory of this snapshot's chunk table.</summary>
    public long TableBytes { get; init; }

    /// <summary>break-snapshot, fail-write or wait.</summary>
    public string OnOverflow { get; init; } = "";

    /// <summary>True when the image accepts writes (they go to the storage).</summary>
    public bool Writable { get; init; }

    /// <summary>Exports of this snapshot.</summary>
    public List<string> Exports { get; init; } = [];

    /// <summary>The change-tracking generation the dirty bitmap belongs to, when the device is tracked.</summary>
    public string? CbtGeneration { get; init; }

    /// <summary>The dirty bitmap holds blocks changed after this period (the previous snapshot's).</summary>
    public int? CbtSince { get; init; }

    /// <summary>The period this snapshot ended (cbt map --since it gives the changes after this snapshot).</summary>
    public int? CbtPeriod { get; init; }

    /// <summary>
    /// How the dirty bitmap was obtained: exact (the take's changes, plus writes through a writable image),
    /// superset (reopened without the take's saved changes: every change after cbt-since up to now), or
    /// everything (reopened in another generation: every block).
    /// </summary>
    public string? CbtBitmap { get; init; }
}
