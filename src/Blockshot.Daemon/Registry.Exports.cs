using System.Text.Json;
using System.Text.Json.Nodes;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Exports;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon;

/// <summary>Exports: add, remove, list.</summary>
internal sealed partial class Registry
{
    /// <summary>
    /// Exports <paramref name="deviceName"/>'s slot as <paramref name="name"/> (default: the device name);
    /// a FUSE export mounts it on the file <paramref name="path"/>, with a loop device when <paramref name="loop"/>.
    /// </summary>
    public async Task<ExportInfo> AddExportAsync(string deviceName, string type, string? name, bool readOnly, string? description,
        string? path = null, bool loop = false)
    {
        var provider = ProviderFor(type);
        ExportInfo info;
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfClosing();
            var device = GetLocked(deviceName);
            var exportName = name ?? deviceName;
            CheckName(exportName, "export");
            if (_exports.ContainsKey(exportName))
            {
                throw new ControlException(ControlErrorCodes.AlreadyExists, $"an export named {exportName} exists");
            }
            var request = new ExportRequest(exportName, type, readOnly || device.Spec.ReadOnly, description, path, loop);
            var handle = await provider.StartAsync(request, device.Slot).ConfigureAwait(false);
            var record = new ExportRecord(request, deviceName, handle, provider);
            _exports.Add(exportName, record);
            device.AddExport(exportName);
            info = record.ToInfo();
        }
        finally
        {
            _lock.Release();
        }
        _events.Publish(EventNames.ExportAdded, new JsonObject { ["export"] = JsonSerializer.SerializeToNode(info, ProtocolJsonContext.Default.ExportInfo) });
        return info;
    }

    /// <summary>Removes an export; its clients are disconnected once their requests in flight finish.</summary>
    public async Task RemoveExportAsync(string name)
    {
        string device;
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            device = await RemoveExportLockedAsync(name).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
        _events.Publish(EventNames.ExportRemoved, new JsonObject { ["name"] = name, ["device"] = device });
    }

    public async Task<IReadOnlyList<ExportInfo>> ListExportsAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            return [.. _exports.Values.OrderBy(e => e.Request.Name, StringComparer.Ordinal).Select(e => e.ToInfo())];
        }
        finally
        {
            _lock.Release();
        }
    }

    public async Task<int> ExportCountAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            return _exports.Count;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>The provider of export type <paramref name="type"/>; unknown and unavailable types are refused.</summary>
    private IExportProvider ProviderFor(string type)
    {
        if (!_providers.TryGetValue(type, out var provider))
        {
            throw new ControlException(ControlErrorCodes.InvalidParams,
                $"unknown export type '{type}' (known: {string.Join(", ", _providers.Keys.Order(StringComparer.Ordinal))})");
        }
        if (provider.UnavailableReason is { } reason)
        {
            throw new ControlException(ControlErrorCodes.NotAvailable, $"{type} exports are not available in this build: {reason}");
        }
        return provider;
    }

    private async Task<string> RemoveExportLockedAsync(string name)
    {
        if (!_exports.TryGetValue(name, out var record))
        {
            throw new ControlException(ControlErrorCodes.NotFound, $"no export named {name}");
        }
        if (_devices.TryGetValue(record.Device, out var device) && device.IsSuspended)
        {
            throw new ControlException(ControlErrorCodes.InvalidState,
                $"device {record.Device} is suspended; resume it first (held requests must finish before clients are disconnected)");
        }
        await record.Handle.StopAsync().ConfigureAwait(false);
        _exports.Remove(name);
        _snapshotExports.Remove(name);
        device?.RemoveExport(name);
        return record.Device;
    }
}
