using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Blockshot.Core.Platform;
using Blockshot.Daemon.Devices;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Protocol;
using Blockshot.Daemon.SnapshotSets;
using Blockshot.Snapshots;
using Blockshot.Tracking;

namespace Blockshot.Daemon;

/// <summary>
/// Snapshot sets: the take across devices. Set membership is guarded by <see cref="_snapshotLock"/>,
/// taken before <see cref="_lock"/> when both are needed (never the other way round); a take holds
/// each device's control (entered in name order) from before the suspend until after the resume.
/// </summary>
internal sealed partial class Registry
{
    private readonly SemaphoreSlim _snapshotLock = new(1, 1);

    // Guarded by _snapshotLock.
    private readonly Dictionary<string, SnapshotSetRecord> _sets = new(StringComparer.Ordinal);

    // Export name → the snapshot it serves. Guarded by _lock (exports come and go under it).
    private readonly Dictionary<string, SnapshotMember> _snapshotExports = new(StringComparer.Ordinal);

    /// <summary>Where devices with persistent snapshots are recorded (null: persistence is unavailable).</summary>
    public PersistentState? State { get; init; }

    /// <summary>Takes a snapshot set: every device at one instant, with the hooks around it.</summary>
    public async Task<SnapshotInfo> CreateSnapshotAsync(SnapshotCreateRequest request)
    {
        ThrowIfClosing();
        CheckName(request.Name, "snapshot");
        if (request.Persistent && (request.Storage is { CanPersist: false } || State is null))
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, "persistent snapshots need file:PATH storage");
        }
        SnapshotSetRecord record;
        await _snapshotLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_sets.ContainsKey(request.Name))
            {
                throw new ControlException(ControlErrorCodes.AlreadyExists, $"a snapshot named {request.Name} exists");
            }
            var devices = new List<Device>();
            foreach (var name in request.Devices)
            {
                devices.Add(await GetDeviceAsync(name).ConfigureAwait(false));
            }
            if (devices.Count == 0 || devices.Select(d => d.Name).Distinct().Count() != devices.Count)
            {
                throw new ControlException(ControlErrorCodes.InvalidParams, "a snapshot set needs one or more devices, each named once");
            }
            request.Storage?.CheckNotOn([.. devices.Select(d => (d.Name, d.Spec.File))]);
            var snapshots = await TakeAsync(request, devices).ConfigureAwait(false);
            record = new SnapshotSetRecord(request.Name, snapshots[0].Snapshot.TakenAt, request.Persistent, snapshots);
            _sets.Add(record.Name, record);
        }
        finally
        {
            _snapshotLock.Release();
        }
        var info = await SnapshotInfoOfAsync(record).ConfigureAwait(false);
        _events.Publish(EventNames.SnapshotCreated, new JsonObject { ["snapshot"] = JsonSerializer.SerializeToNode(info, ProtocolJsonContext.Default.SnapshotInfo) });
        return info;
    }

    // Caller holds _snapshotLock.
    private async Task<List<SnapshotMember>> TakeAsync(SnapshotCreateRequest request, List<Device> devices)
    {
        var leases = new List<IAsyncDisposable>();
        var fresh = new Dictionary<Device, CbwAttachment>();
        var taken = false;
        try
        {
            foreach (var device in devices.OrderBy(d => d.Name, StringComparer.Ordinal))
            {
                leases.Add(await device.EnterForTakeAsync().ConfigureAwait(false));
            }
            foreach (var device in devices)
            {
                if (device.Cbw is { } existing)
                {
                    CheckShared(device, existing, request);
                }
                else
                {
                    fresh[device] = await CreateCbwAsync(device, request).ConfigureAwait(false);
                }
            }
            var requests = devices.Select(d => d.TakeRequestLocked(request.Name, request.Options, fresh.GetValueOrDefault(d))).ToList();
            var views = new DirtyBitmapView?[devices.Count];
            var hooks = new SnapshotHooks
            {
                Freeze = request.FreezeHook is { } freeze ? ct => FreezeAsync(freeze, request.ThawHook, ct) : null,
                Thaw = request.ThawHook is { } thaw ? ct => ThawAsync(request.Name, thaw, ct) : null,
                Timeout = request.HookTimeout,
                WhileSuspended = () =>
                {
                    // The same instant as CBW's arming: each tracked device's period ends here.
                    for (var i = 0; i < devices.Count; i++)
                    {
                        if (devices[i].Tracker is { } t)
                        {
                            var period = t.Tracker.Period;
                            var generation = t.Tracker.Generation;
                            var since = (byte)(period - 1);
                            views[i] = new DirtyBitmapView(t.Tracker, SnapshotChanges.AtTake(t.Tracker, t.Tracker.AdvancePeriod(), since), since, period, generation);
                        }
                    }
                    return default;
                },
            };
            IReadOnlyList<Snapshot> snapshots;
            try
            {
                snapshots = await SnapshotSet.TakeAsync(requests, hooks).ConfigureAwait(false);
            }
            catch (TimeoutException e)
            {
                throw new ControlException(ControlErrorCodes.Timeout, $"snapshot {request.Name} was not taken: {e.Message}", e);
            }
            catch (IOException e)
            {
                throw new ControlException(ControlErrorCodes.IoError, $"snapshot {request.Name} was not taken: {e.Message}", e);
            }
            taken = true;
            var members = new List<SnapshotMember>();
            for (var i = 0; i < devices.Count; i++)
            {
                members.Add(new SnapshotMember(devices[i], snapshots[i]) { Bitmap = views[i] });
            }
            foreach (var (device, cbw) in fresh)
            {
                if (cbw.LogPath is not null)
                {
                    State!.Put(new PersistentState.Entry(device.Name, device.Spec.File, cbw.Storage.Text, cbw.Filter.ChunkSize, cbw.LogPath,
                        request.Sizing.LimitBytes, request.Sizing.GrowStepBytes, request.Sizing.InitialBytes));
                }
            }
            if (request.Persistent)
            {
                foreach (var member in members)
                {
                    SaveTake(request.Name, member);
                }
            }
            return members;
        }
        finally
        {
            for (var i = leases.Count - 1; i >= 0; i--)
            {
                await leases[i].DisposeAsync().ConfigureAwait(false);
            }
            if (!taken)
            {
                foreach (var cbw in fresh.Values)
                {
                    await cbw.CloseAsync(clean: false).ConfigureAwait(false);
                }
            }
        }
    }

    // A persistent snapshot of a tracked device: its changes beside the exception log and its periods in
    // the state file, so a restart offers the same dirty bitmap. Failing that, a reopen offers a superset.
    private void SaveTake(string name, SnapshotMember member)
    {
        if (member.Bitmap is not { } view || member.Device.Cbw?.LogPath is not { } log)
        {
            return;
        }
        var path = $"{log}.cbt-{name}";
        try
        {
            view.Changes.Save(path, view.Generation);
            State!.AddTake(member.Device.Name, new PersistentState.TakeRecord(name, view.Generation, view.Since, view.Period, path));
        }
        catch (IOException e)
        {
            DaemonLog.TakeNotSaved(_logger, member.Device.Name, name, e.Message);
        }
    }

    // A freeze that failed may have frozen part of what it covers (one of several file systems): thaw.
    private async Task FreezeAsync(string freeze, string? thaw, CancellationToken cancellationToken)
    {
        try
        {
            await HookCommand.RunAsync("freeze", freeze, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (thaw is not null && e is ControlException or OperationCanceledException)
        {
            try
            {
                await HookCommand.RunAsync("thaw", thaw, CancellationToken.None).ConfigureAwait(false);
            }
            catch (ControlException thawFailure)
            {
                DaemonLog.ThawFailed(_logger, thawFailure.Message);
            }
            throw;
        }
    }

    // The snapshots exist once the slots resume; a failing thaw is reported, it does not undo them.
    private async Task ThawAsync(string name, string thaw, CancellationToken cancellationToken)
    {
        try
        {
            await HookCommand.RunAsync("thaw", thaw, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ControlException or OperationCanceledException)
        {
            DaemonLog.ThawFailed(_logger, $"snapshot {name}: {e.Message}");
        }
    }

    private static void CheckShared(Device device, CbwAttachment existing, SnapshotCreateRequest request)
    {
        if (request.Storage is { } storage && storage.Text != existing.Storage.Text)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams,
                $"device {device.Name} keeps its snapshots in {existing.Storage.Text}; its new snapshots share that storage (leave --storage out, or give the same)");
        }
        if (request.ChunkSize is { } chunk && chunk != existing.Filter.ChunkSize)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams,
                $"device {device.Name} has snapshots with {existing.Filter.ChunkSize}-byte chunks; new ones share them");
        }
        if (request.Persistent != existing.Filter.IsPersistent)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams,
                $"device {device.Name} has {(existing.Filter.IsPersistent ? "persistent" : "non-persistent")} snapshots; a new one must be the same");
        }
    }

    // With the device entered for the take: its storage and CBW filter, not yet in the stack.
    private async Task<CbwAttachment> CreateCbwAsync(Device device, SnapshotCreateRequest request)
    {
        var storage = request.Storage
            ?? throw new ControlException(ControlErrorCodes.InvalidParams, $"device {device.Name} has no snapshots yet: say where to keep old data (--storage)");
        var chunk = request.ChunkSize ?? SnapshotCreateRequest.DefaultChunkSize;
        var created = new List<string>();
        string? log = null;
        if (request.Persistent)
        {
            log = storage.Paths[0] + ".log";
            if (File.Exists(log))
            {
                throw new ControlException(ControlErrorCodes.AlreadyExists, $"{log} exists; persistent storage needs a fresh path");
            }
        }
        var store = storage.Open(chunk, request.Sizing, created);
        try
        {
            // The first step is grown now, under the control lock only: the first copies do not wait for it.
            await store.PrepareAsync().ConfigureAwait(false);
            CbwFilter filter;
            if (log is not null)
            {
                var file = device.Spec.File;
                filter = await CbwFilter.OpenPersistentAsync(device.CbwOriginLocked, store,
                    new SnapshotPersistence { LogPath = log, Identity = () => DeviceIdentity.Of(file) }).ConfigureAwait(false);
            }
            else
            {
                filter = new CbwFilter(device.CbwOriginLocked, store);
            }
            var cbw = new CbwAttachment(filter, store, storage, log, created);
            WireEvents(device.Name, cbw);
            return cbw;
        }
        catch (Exception e) when (e is ArgumentException or IOException)
        {
            await store.DisposeAsync().ConfigureAwait(false);
            foreach (var path in created)
            {
                File.Delete(path);
            }
            if (log is not null)
            {
                File.Delete(log);
            }
            throw e is ArgumentException
                ? new ControlException(ControlErrorCodes.InvalidParams, $"device {device.Name}: {e.Message}", e)
                : new ControlException(ControlErrorCodes.IoError, $"device {device.Name}: cannot set up snapshot storage: {e.Message}", e);
        }
    }

    private void WireEvents(string device, CbwAttachment cbw)
    {
        long lastOverflow = 0;
        cbw.Filter.SnapshotFailed += (_, e) => _events.Publish(EventNames.SnapshotFailed, new JsonObject
        {
            ["name"] = e.Snapshot.Name,
            ["device"] = device,
            ["reason"] = e.Reason,
            ["time"] = e.Time.ToString("O", CultureInfo.InvariantCulture),
        });
        cbw.Store.LowSpace += (_, e) => _events.Publish(EventNames.SnapshotLowSpace, StoreData(device, e));
        cbw.Store.Full += (_, e) =>
        {
            var now = Environment.TickCount64;
            var last = Interlocked.Read(ref lastOverflow);
            if (now - last >= 1000 && Interlocked.CompareExchange(ref lastOverflow, now, last) == last)
            {
                _events.Publish(EventNames.SnapshotOverflow, StoreData(device, e));
            }
        };
    }

    private static JsonObject StoreData(string device, Snapshots.Storage.DiffStoreEventArgs e) => new()
    {
        ["device"] = device,
        ["storage"] = e.Store,
        ["used"] = e.UsedBytes,
        ["limit"] = e.LimitBytes,
        ["time"] = e.Time.ToString("O", CultureInfo.InvariantCulture),
    };
}
