namespace Blockshot.Snapshots;

/// <summary>Per-snapshot settings.</summary>
public sealed record SnapshotOptions
{
    /// <summary>What happens when a write cannot be protected.</summary>
    public OverflowPolicy OnOverflow { get; init; } = OverflowPolicy.BreakSnapshot;

    /// <summary>With <see cref="OverflowPolicy.Wait"/>: how long a writer waits for space.</summary>
    public TimeSpan WaitTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>With <see cref="OverflowPolicy.Wait"/>: what happens after the wait runs out.</summary>
    public OverflowPolicy AfterWait { get; init; } = OverflowPolicy.BreakSnapshot;

    /// <summary>Whether the snapshot image accepts writes (they go to difference storage, never to the origin).</summary>
    public bool Writable { get; init; }
}
