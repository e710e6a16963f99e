using System.Text.Json;
using System.Text.Json.Nodes;
using Blockshot.Core;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Exports;
using Blockshot.Daemon.Protocol;
using Blockshot.Daemon.SnapshotSets;
using Blockshot.Snapshots;

namespace Blockshot.Daemon;

/// <summary>Snapshot exports: one device's snapshot served by an export provider through a slot of its own.</summary>
internal sealed partial class Registry
{
    /// <summary>
    /// Exports one device's snapshot: over NBD with its copy-order and dirty-bitmap contexts, or over FUSE
    /// as a file (with a loop device when asked). Either way the slot holds the snapshot's export node, so
    /// writes to a writable image go to the snapshot's storage, never to the device.
    /// </summary>
    public async Task<ExportInfo> ExportSnapshotAsync(SnapshotExportRequest request)
    {
        var provider = ProviderFor(request.Type);
        var exportName = request.ExportName ?? $"{request.Device}.{request.Snapshot}";
        CheckName(exportName, "export");
        if (request.Bitmap is not null)
        {
            if (provider.Type != "nbd")
            {
                throw new ControlException(ControlErrorCodes.InvalidParams, "bitmap applies to nbd snapshot exports only (a file has no block-status contexts)");
            }
            CheckName(request.Bitmap, "bitmap");
        }
        ExportInfo info;
        await _snapshotLock.WaitAsync().ConfigureAwait(false);
        try
        {
            var member = FindSetLocked(request.Snapshot).Members.FirstOrDefault(m => m.Device.Name == request.Device)
                ?? throw new ControlException(ControlErrorCodes.NotFound, $"snapshot {request.Snapshot} has no device named {request.Device}");
            if (member.Snapshot.State != SnapshotState.Active)
            {
                throw new ControlException(ControlErrorCodes.InvalidState,
                    $"snapshot {request.Snapshot} of {request.Device} is {member.Snapshot.State.ToString().ToLowerInvariant()}: {member.Snapshot.FailureReason}");
            }
            // A file over an image that takes no writes is read-only (mode 0444, a read-only loop device); say so.
            // NBD keeps the trims of such an image (read-once), so only -r makes it read-only there.
            var readOnly = request.ReadOnly || (provider.Type == "fuse" && !member.Snapshot.Options.Writable);
            var exportRequest = new ExportRequest(exportName, provider.Type, readOnly,
                request.Description ?? $"snapshot {request.Snapshot} of {request.Device}", request.Path, request.Loop);
            info = await AddSnapshotExportAsync(exportRequest, provider, member, request.Bitmap).ConfigureAwait(false);
        }
        finally
        {
            _snapshotLock.Release();
        }
        _events.Publish(EventNames.ExportAdded, new JsonObject { ["export"] = JsonSerializer.SerializeToNode(info, ProtocolJsonContext.Default.ExportInfo) });
        return info;
    }

    // Caller holds _snapshotLock.
    private async Task<ExportInfo> AddSnapshotExportAsync(ExportRequest request, IExportProvider provider, SnapshotMember member, string? bitmap)
    {
        var node = new SnapshotExportNode(member.Snapshot.Image, member.Bitmap, bitmap ?? DirtyBitmapView.DefaultName);
        var slot = new Slot(node, request.ReadOnly, request.Name);
        var started = false;
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfClosing();
            if (_exports.ContainsKey(request.Name))
            {
                throw new ControlException(ControlErrorCodes.AlreadyExists, $"an export named {request.Name} exists");
            }
            var handle = new SnapshotExportHandle(await provider.StartAsync(request, slot).ConfigureAwait(false), slot);
            started = true;
            var record = new ExportRecord(request, member.Device.Name, handle, provider);
            _exports.Add(request.Name, record);
            _snapshotExports.Add(request.Name, member);
            member.Device.AddExport(request.Name);
            return record.ToInfo();
        }
        finally
        {
            _lock.Release();
            if (!started)
            {
                await slot.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
