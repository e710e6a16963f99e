using Blockshot.Snapshots;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Daemon.SnapshotSets;

/// <summary>
/// A device's copy-before-write filter with its difference storage: created at the device's first
/// snapshot take, closed when its last snapshot is destroyed (or the device closes).
/// </summary>
internal sealed class CbwAttachment(CbwFilter filter, DiffStore store, StorageSpec storage, string? logPath, IReadOnlyList<string> createdFiles)
{
    /// <summary>The filter (pinned above tracking, beneath the user's filters).</summary>
    public CbwFilter Filter { get; } = filter;

    /// <summary>Where old data goes.</summary>
    public DiffStore Store { get; } = store;

    /// <summary>The storage as the user gave it.</summary>
    public StorageSpec Storage { get; } = storage;

    /// <summary>The exception log of persistent snapshots, or null.</summary>
    public string? LogPath { get; } = logPath;

    /// <summary>
    /// Releases the filter and its store. <paramref name="clean"/>: a persistent log records a clean stop
    /// (the snapshots reopen at the next start); otherwise the storage files this daemon created and the
    /// log are deleted (the snapshots are gone).
    /// </summary>
    public async Task CloseAsync(bool clean)
    {
        try
        {
            if (clean && LogPath is not null)
            {
                await Filter.CloseAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            await Filter.DisposeAsync().ConfigureAwait(false);
            await Store.DisposeAsync().ConfigureAwait(false);
            if (!clean || LogPath is null)
            {
                foreach (var file in createdFiles)
                {
                    File.Delete(file);
                }
                if (LogPath is not null)
                {
                    File.Delete(LogPath);
                }
            }
        }
    }
}
