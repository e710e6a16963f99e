using Blockshot.Core;

namespace Blockshot.Daemon.Exports;

/// <summary>
/// A snapshot export: a provider's export (NBD or FUSE) over a slot the registry made for the snapshot's
/// export node. Stopping it stops the provider's export first (clients are answered, FUSE unmounts and
/// detaches its loop device), then disposes the slot.
/// </summary>
internal sealed class SnapshotExportHandle(IExportHandle inner, Slot slot) : IExportHandle
{
    public int Clients => inner.Clients;

    public string? Path => inner.Path;

    public string? LoopDevice => inner.LoopDevice;

    public async Task StopAsync()
    {
        await inner.StopAsync().ConfigureAwait(false);
        await slot.DisposeAsync().ConfigureAwait(false);
    }
}
