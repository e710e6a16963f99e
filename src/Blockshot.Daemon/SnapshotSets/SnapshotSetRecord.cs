namespace Blockshot.Daemon.SnapshotSets;

/// <summary>A snapshot set the daemon holds: its name, when it was taken, and one member per device.</summary>
internal sealed class SnapshotSetRecord(string name, DateTimeOffset created, bool persistent, List<SnapshotMember> members)
{
    public string Name { get; } = name;

    public DateTimeOffset Created { get; } = created;

    public bool Persistent { get; } = persistent;

    /// <summary>Guarded by the registry's snapshot lock.</summary>
    public List<SnapshotMember> Members { get; } = members;
}
