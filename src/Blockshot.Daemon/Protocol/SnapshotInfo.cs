namespace Blockshot.Daemon.Protocol;

/// <summary>A snapshot set: one take across one or more devices.</summary>
public sealed class SnapshotInfo
{
    /// <summary>The set's name (each device's snapshot carries it).</summary>
    public string Name { get; init; } = "";

    /// <summary>When it was taken (UTC).</summary>
    public DateTimeOffset Created { get; init; }

    /// <summary>True when its snapshots survive a daemon restart.</summary>
    public bool Persistent { get; init; }

    /// <summary>One entry per device.</summary>
    public List<SnapshotMemberInfo> Devices { get; init; } = [];
}
