namespace Blockshot.Snapshots;

/// <summary>What runs around a snapshot-set take.</summary>
public sealed record SnapshotHooks
{
    /// <summary>Runs first (e.g. <c>fsfreeze -f MOUNTPOINT</c>); a failure or timeout aborts the take.</summary>
    public Func<CancellationToken, Task>? Freeze { get; init; }

    /// <summary>Runs last, and always after a freeze that succeeded, even when the take failed.</summary>
    public Func<CancellationToken, Task>? Thaw { get; init; }

    /// <summary>Runs once every slot is suspended and CBW armed (change tracking switches periods here).</summary>
    public Func<ValueTask>? WhileSuspended { get; init; }

    /// <summary>How long each hook may take.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long each device may take to drain its in-flight requests.</summary>
    public TimeSpan SuspendTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
