namespace Blockshot.Snapshots.Storage;

/// <summary>How much a difference store may use, and when it warns.</summary>
public sealed record DiffStoreOptions
{
    /// <summary>Space to start with (rounded up to whole chunks).</summary>
    public long InitialBytes { get; init; } = 64L << 20;

    /// <summary>How much to add each time the store runs out of room.</summary>
    public long GrowStepBytes { get; init; } = 64L << 20;

    /// <summary>The most the store may ever hold; long.MaxValue for no limit but the medium's.</summary>
    public long LimitBytes { get; init; } = long.MaxValue;

    /// <summary>A low-space event fires when the free space before the limit drops below this fraction of it.</summary>
    public double LowSpaceFraction { get; init; } = 0.1;
}
