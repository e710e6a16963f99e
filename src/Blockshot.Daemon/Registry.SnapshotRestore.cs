using System.Text.Json;
using System.Text.Json.Nodes;
using Blockshot.Core.Platform;
using Blockshot.Daemon.Devices;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Protocol;
using Blockshot.Daemon.SnapshotSets;
using Blockshot.Snapshots;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Daemon;

/// <summary>Persistent snapshots coming back when their device is added again, and snapshots leaving with their device.</summary>
internal sealed partial class Registry
{
    /// <summary>
    /// Reopens the persistent snapshots recorded for <paramref name="device"/> (same name, same file).
    /// A snapshot that cannot be proven intact comes back failed, with the reason; its reads fail.
    /// </summary>
    private async Task RestoreSnapshotsAsync(Device device)
    {
        if (State?.Find(device.Name, device.Spec.File) is not { } entry)
        {
            return;
        }
        var storage = StorageSpec.Parse(entry.Storage);
        var sizing = new DiffStoreOptions { LimitBytes = entry.LimitBytes, GrowStepBytes = entry.GrowStepBytes, InitialBytes = entry.InitialBytes };
        var file = device.Spec.File;
        await _snapshotLock.WaitAsync().ConfigureAwait(false);
        List<SnapshotSetRecord> restored = [];
        try
        {
            var cbw = await device.ReopenCbwAsync(async origin =>
            {
                var store = storage.Reopen(entry.ChunkSize, sizing);
                try
                {
                    var filter = await CbwFilter.OpenPersistentAsync(origin, store,
                        new SnapshotPersistence { LogPath = entry.Log, Identity = () => DeviceIdentity.Of(file) }).ConfigureAwait(false);
                    var attachment = new CbwAttachment(filter, store, storage, entry.Log, [storage.Paths[0]]);
                    WireEvents(device.Name, attachment);
                    return attachment;
                }
                catch
                {
                    await store.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
            }, DefaultTimeout).ConfigureAwait(false);
            if (cbw is null)
            {
                State.Remove(device.Name);
                return;
            }
            foreach (var snapshot in cbw.Filter.Snapshots)
            {
                var member = new SnapshotMember(device, snapshot);
                if (device.Tracker is { } t)
                {
                    member.Bitmap = DirtyBitmapView.Reopened(t.Tracker, entry.Takes.FirstOrDefault(x => x.Snapshot == snapshot.Name), snapshot.Options.Writable);
                }
                if (!_sets.TryGetValue(snapshot.Name, out var set))
                {
                    set = new SnapshotSetRecord(snapshot.Name, snapshot.TakenAt, persistent: true, []);
                    _sets.Add(set.Name, set);
                }
                set.Members.Add(member);
                restored.Add(set);
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
        {
            DaemonLog.SnapshotRestoreFailed(_logger, device.Name, e);
            return;
        }
        finally
        {
            _snapshotLock.Release();
        }
        foreach (var set in restored.Distinct())
        {
            var info = await SnapshotInfoOfAsync(set).ConfigureAwait(false);
            _events.Publish(EventNames.SnapshotCreated, new JsonObject { ["snapshot"] = JsonSerializer.SerializeToNode(info, ProtocolJsonContext.Default.SnapshotInfo), ["reopened"] = true });
        }
    }

    /// <summary>Destroys every snapshot of a device (device removal with force), exports first.</summary>
    private async Task DestroyDeviceSnapshotsAsync(string deviceName)
    {
        List<string> sets;
        await _snapshotLock.WaitAsync().ConfigureAwait(false);
        try
        {
            sets = [.. _sets.Values.Where(s => s.Members.Any(m => m.Device.Name == deviceName)).Select(s => s.Name)];
        }
        finally
        {
            _snapshotLock.Release();
        }
        foreach (var set in sets)
        {
            await DestroySnapshotAsync(set, deviceName, force: true).ConfigureAwait(false);
        }
    }
}
