using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Blockshot.Core.Platform;
using Blockshot.Daemon.ChangeTracking;
using Blockshot.Daemon.Devices;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Exports;
using Blockshot.Daemon.Jobs;
using Blockshot.Daemon.Protocol;
using Microsoft.Extensions.Logging;

namespace Blockshot.Daemon;

/// <summary>
/// The devices and exports of the daemon and the operations on them, each checked and announced as an
/// event. Adding and removing devices and exports is serialized by <see cref="_lock"/>, so "remove unless
/// exported" cannot race "export"; operations on one device's stack are serialized by the device itself.
/// Split by concern: devices here, exports in <c>Registry.Exports.cs</c>, filters and slot operations in
/// <c>Registry.Stack.cs</c>, jobs in <c>Registry.Jobs.cs</c>.
/// </summary>
internal sealed partial class Registry
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private static readonly Regex NamePattern = new("^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$", RegexOptions.CultureInvariant);

    private readonly SemaphoreSlim _lock = new(1, 1);

    // Guarded by _lock for changes; reads take a snapshot under it too.
    private readonly Dictionary<string, Device> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ExportRecord> _exports = new(StringComparer.Ordinal);

    private readonly EventHub _events;
    private readonly JobManager _jobs;
    private readonly Dictionary<string, IExportProvider> _providers;
    private readonly ILogger _logger;
    private volatile bool _closing;

    public Registry(EventHub events, JobManager jobs, IEnumerable<IExportProvider> providers, ILogger logger)
    {
        _events = events;
        _jobs = jobs;
        _providers = providers.ToDictionary(p => p.Type, StringComparer.Ordinal);
        _logger = logger;
    }

    public JobManager Jobs => _jobs;

    public IReadOnlyCollection<IExportProvider> Providers => _providers.Values;

    public async Task<int> DeviceCountAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            return _devices.Count;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Checks a device or export name.</summary>
    public static void CheckName(string name, string what)
    {
        if (!NamePattern.IsMatch(name))
        {
            throw new ControlException(ControlErrorCodes.InvalidParams,
                $"{what} name '{name}' is not valid: 1 to 128 characters, letters, digits and . _ : + -, starting with a letter or digit");
        }
    }

    /// <summary>Adds a device over <paramref name="file"/>, with <paramref name="filters"/> (top first) already in place.</summary>
    public async Task<DeviceInfo> AddDeviceAsync(string name, string file, string? format, bool readOnly, bool direct, bool locking,
        IReadOnlyList<StackEntry>? filters = null, TrackRequest? track = null)
    {
        CheckName(name, "device");
        if (format is not null && !LeafOpener.Formats.Contains(format))
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"unknown format '{format}' (expected one of: {string.Join(", ", LeafOpener.Formats)})");
        }
        var path = Path.GetFullPath(file);
        DeviceInfo info;
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfClosing();
            if (_devices.ContainsKey(name))
            {
                throw new ControlException(ControlErrorCodes.AlreadyExists, $"a device named {name} exists");
            }
            var spec = new LeafSpec(path, format ?? LeafOpener.Probe(path), readOnly, direct, locking);
            var beforeOpen = DeviceIdentity.Of(path);
            var device = new Device(name, spec, await LeafOpener.OpenAsync(spec).ConfigureAwait(false)) { AutoResumed = OnAutoResumed };
            try
            {
                if (track is not null)
                {
                    await AttachTrackerAsync(device, TrackerOptionsFor(name, spec.File, track.BlockSize, track.Sidecar, beforeOpen), track.Store).ConfigureAwait(false);
                }
                foreach (var entry in (filters ?? []).Reverse())
                {
                    await device.InsertFilterAsync(entry, atBottom: false, DefaultTimeout).ConfigureAwait(false);
                }
            }
            catch
            {
                await device.CloseAsync().ConfigureAwait(false);
                throw;
            }
            _devices.Add(name, device);
            info = device.ToInfo();
        }
        finally
        {
            _lock.Release();
        }
        _events.Publish(EventNames.DeviceAdded, new JsonObject { ["device"] = JsonSerializer.SerializeToNode(info, ProtocolJsonContext.Default.DeviceInfo) });
        await RestoreSnapshotsAsync(await GetDeviceAsync(name).ConfigureAwait(false)).ConfigureAwait(false);
        return (await GetDeviceAsync(name).ConfigureAwait(false)).ToInfo();
    }

    /// <summary>
    /// Removes a device. Refused while it is exported or used by a job unless <paramref name="force"/>,
    /// which removes its exports and cancels its jobs first.
    /// </summary>
    public async Task RemoveDeviceAsync(string name, bool force)
    {
        if (force)
        {
            await DestroyDeviceSnapshotsAsync(name).ConfigureAwait(false);
        }
        Device device;
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            device = GetLocked(name);
            var exports = device.Exports;
            var jobs = device.Jobs;
            if (device.Cbw is not null)
            {
                throw new ControlException(ControlErrorCodes.InUse, $"device {name} has snapshots; destroy them first, or force the removal");
            }
            if (!force && (exports.Count > 0 || jobs.Count > 0))
            {
                var uses = new List<string>();
                if (exports.Count > 0)
                {
                    uses.Add($"exported as {string.Join(", ", exports)}");
                }
                if (jobs.Count > 0)
                {
                    uses.Add($"used by {string.Join(", ", jobs)}");
                }
                throw new ControlException(ControlErrorCodes.InUse,
                    $"device {name} is {string.Join(" and ", uses)}; remove those first, or force the removal");
            }
            await device.ResumeIfSuspendedAsync().ConfigureAwait(false);
            foreach (var export in exports)
            {
                await RemoveExportLockedAsync(export).ConfigureAwait(false);
            }
            foreach (var id in jobs)
            {
                var job = _jobs.Get(id);
                if (!job.IsFinished)
                {
                    try
                    {
                        job.Cancel();
                    }
                    catch (ControlException)
                    {
                        // It ended meanwhile.
                    }
                }
                await job.Finished.ConfigureAwait(false);
            }
            _devices.Remove(name);
        }
        finally
        {
            _lock.Release();
        }
        var flushError = await device.CloseAsync().ConfigureAwait(false);
        if (flushError is not null)
        {
            DaemonLog.FlushFailed(_logger, name, flushError);
        }
        _events.Publish(EventNames.DeviceRemoved, new JsonObject { ["name"] = name });
        if (flushError is not null)
        {
            throw new ControlException(ControlErrorCodes.IoError, $"device {name} was removed, but its final flush failed: {flushError.Message}", flushError);
        }
    }

    public async Task<IReadOnlyList<DeviceInfo>> ListDevicesAsync()
    {
        var devices = await SnapshotDevicesAsync().ConfigureAwait(false);
        return [.. devices.Select(d => d.ToInfo())];
    }

    public async Task<Device> GetDeviceAsync(string name)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            return GetLocked(name);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// First half of shutdown: refuse new work, release suspensions (so held requests can finish) and
    /// cancel jobs (mirrors take their filters out).
    /// </summary>
    public async Task BeginShutdownAsync()
    {
        _closing = true;
        foreach (var device in await SnapshotDevicesAsync().ConfigureAwait(false))
        {
            await device.ResumeIfSuspendedAsync().ConfigureAwait(false);
        }
        await _jobs.CancelAllAsync().ConfigureAwait(false);
    }

    /// <summary>Second half of shutdown, once exports have stopped: flush and close every device.</summary>
    public async Task<int> CloseAllAsync()
    {
        var devices = await SnapshotDevicesAsync().ConfigureAwait(false);
        foreach (var device in devices)
        {
            var error = await device.CloseAsync().ConfigureAwait(false);
            if (error is not null)
            {
                DaemonLog.FlushFailed(_logger, device.Name, error);
            }
        }
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            _devices.Clear();
            _exports.Clear();
        }
        finally
        {
            _lock.Release();
        }
        return devices.Count;
    }

    private async Task<List<Device>> SnapshotDevicesAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            return [.. _devices.Values.OrderBy(d => d.Name, StringComparer.Ordinal)];
        }
        finally
        {
            _lock.Release();
        }
    }

    private Device GetLocked(string name) =>
        _devices.TryGetValue(name, out var device) ? device : throw new ControlException(ControlErrorCodes.NotFound, $"no device named {name}");

    private void ThrowIfClosing()
    {
        if (_closing)
        {
            throw new ControlException(ControlErrorCodes.ShuttingDown, "the daemon is shutting down");
        }
    }

    private void OnAutoResumed(Device device) =>
        _events.Publish(EventNames.DeviceResumed, new JsonObject { ["name"] = device.Name, ["reason"] = "hold-expired" });
}
