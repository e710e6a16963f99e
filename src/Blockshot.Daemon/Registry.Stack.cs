using System.Text.Json.Nodes;
using Blockshot.Daemon.Devices;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Protocol;
using Blockshot.Filters;

namespace Blockshot.Daemon;

/// <summary>Live slot operations: filters in and out, suspend, resume, reload, resize.</summary>
internal sealed partial class Registry
{
    /// <summary>Makes a stack entry from a filter type and text settings (checked, not yet inserted).</summary>
    public static StackEntry MakeFilter(string type, string? name, IReadOnlyDictionary<string, string> settings)
    {
        FilterTemplate template;
        try
        {
            template = FilterCatalog.Create(type, settings);
        }
        catch (FilterSettingsException e)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, e.Message, e);
        }
        var entryName = name ?? type;
        CheckName(entryName, "filter");
        return new StackEntry(entryName, template);
    }

    /// <summary>Inserts a filter at the top of a device's stack while its exports stay connected.</summary>
    public async Task<FilterInfo> InsertFilterAsync(string deviceName, string type, string? name, IReadOnlyDictionary<string, string> settings, TimeSpan timeout)
    {
        ThrowIfClosing();
        var entry = MakeFilter(type, name, settings);
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        await device.InsertFilterAsync(entry, atBottom: false, timeout).ConfigureAwait(false);
        _events.Publish(EventNames.FilterInserted, new JsonObject { ["device"] = deviceName, ["filter"] = entry.Name, ["type"] = type });
        return device.ToInfo().Filters.First(f => f.Name == entry.Name);
    }

    /// <summary>Removes a filter by name; the stack beneath it stays as it was.</summary>
    public async Task RemoveFilterAsync(string deviceName, string name, TimeSpan timeout)
    {
        ThrowIfClosing();
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        var entry = await device.RemoveFilterAsync(name, asJob: null, timeout).ConfigureAwait(false);
        _events.Publish(EventNames.FilterRemoved, new JsonObject { ["device"] = deviceName, ["filter"] = name, ["type"] = entry.Template.Type });
    }

    public async Task SuspendAsync(string deviceName, TimeSpan timeout, TimeSpan? hold)
    {
        ThrowIfClosing();
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        await device.SuspendAsync(timeout, hold).ConfigureAwait(false);
        _events.Publish(EventNames.DeviceSuspended, new JsonObject { ["name"] = deviceName });
    }

    public async Task ResumeAsync(string deviceName)
    {
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        await device.ResumeAsync().ConfigureAwait(false);
        _events.Publish(EventNames.DeviceResumed, new JsonObject { ["name"] = deviceName, ["reason"] = "request" });
    }

    /// <summary>
    /// Reopens a device's leaf (after maintenance, or from another file of the same size) and swaps it in
    /// under the filters, without clients reconnecting.
    /// </summary>
    public async Task<DeviceInfo> ReloadAsync(string deviceName, string? file, string? format, TimeSpan timeout)
    {
        ThrowIfClosing();
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        if (device.Jobs.Count > 0)
        {
            throw new ControlException(ControlErrorCodes.InUse, $"device {deviceName} is used by {string.Join(", ", device.Jobs)}; reload it when the job has ended");
        }
        if (format is not null && !LeafOpener.Formats.Contains(format))
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"unknown format '{format}' (expected one of: {string.Join(", ", LeafOpener.Formats)})");
        }
        var spec = device.Spec;
        if (file is not null)
        {
            var path = Path.GetFullPath(file);
            spec = spec with { File = path, Format = format ?? LeafOpener.Probe(path) };
        }
        else if (format is not null)
        {
            spec = spec with { Format = format };
        }
        try
        {
            await device.ReloadAsync(spec, timeout).ConfigureAwait(false);
        }
        catch (ControlException e) when (e.Code != ControlErrorCodes.Timeout)
        {
            _events.Publish(EventNames.DeviceReloaded, new JsonObject { ["name"] = deviceName, ["file"] = device.Spec.File, ["error"] = e.Message });
            throw;
        }
        _events.Publish(EventNames.DeviceReloaded, new JsonObject { ["name"] = deviceName, ["file"] = device.Spec.File });
        return device.ToInfo();
    }

    /// <summary>Resizes a device's image with its requests drained; change tracking starts a new generation.</summary>
    public async Task<DeviceInfo> ResizeAsync(string deviceName, long size, TimeSpan timeout)
    {
        ThrowIfClosing();
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        await device.ResizeAsync(size, timeout).ConfigureAwait(false);
        var info = device.ToInfo();
        _events.Publish(EventNames.DeviceResized, new JsonObject { ["name"] = deviceName, ["size"] = info.Size });
        return info;
    }
}
