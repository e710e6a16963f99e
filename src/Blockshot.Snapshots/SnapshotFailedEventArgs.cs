namespace Blockshot.Snapshots;

/// <summary>A snapshot broke.</summary>
/// <param name="Snapshot">The snapshot.</param>
/// <param name="Reason">Why.</param>
/// <param name="Time">When (UTC).</param>
public sealed record SnapshotFailedEventArgs(Snapshot Snapshot, string Reason, DateTimeOffset Time);
