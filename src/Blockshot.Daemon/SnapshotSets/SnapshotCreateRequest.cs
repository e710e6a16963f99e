using Blockshot.Snapshots;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Daemon.SnapshotSets;

/// <summary>What <c>snapshot.create</c> asks for, checked.</summary>
/// <param name="Name">The set's name.</param>
/// <param name="Devices">The devices, in the order given.</param>
/// <param name="Storage">Where old data goes (required for a device without snapshots yet).</param>
/// <param name="ChunkSize">Bytes per chunk, or null for the default (or the device's existing chunk size).</param>
/// <param name="Sizing">Initial size, growth step, limit and low-space threshold of new storage.</param>
/// <param name="Options">Overflow policy and writability of each snapshot.</param>
/// <param name="Persistent">Keep the snapshots across restarts (file storage only).</param>
/// <param name="FreezeHook">A shell command run before the take (e.g. fsfreeze -f).</param>
/// <param name="ThawHook">A shell command run after it, always when the freeze ran.</param>
/// <param name="HookTimeout">How long each hook may take.</param>
internal sealed record SnapshotCreateRequest(
    string Name,
    IReadOnlyList<string> Devices,
    StorageSpec? Storage,
    int? ChunkSize,
    DiffStoreOptions Sizing,
    SnapshotOptions Options,
    bool Persistent,
    string? FreezeHook,
    string? ThawHook,
    TimeSpan HookTimeout)
{
    /// <summary>The chunk size when none is given.</summary>
    public const int DefaultChunkSize = 64 << 10;
}
