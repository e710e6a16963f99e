namespace Blockshot.Snapshots;

/// <summary>A snapshot's life.</summary>
public enum SnapshotState
{
    /// <summary>Protected and readable.</summary>
    Active,

    /// <summary>Broken (storage overflow or an I/O error under the break-snapshot policy): reads fail.</summary>
    Failed,

    /// <summary>Destroyed; its storage is released.</summary>
    Destroyed,
}
