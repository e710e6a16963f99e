using System.Text.Json;
using System.Text.Json.Nodes;
using Blockshot.Core.Platform;
using Blockshot.Daemon.Devices;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Protocol;
using Blockshot.Tracking;

namespace Blockshot.Daemon;

/// <summary>Changed-block tracking: attach, detach, info, map, mark-dirty, reset.</summary>
internal sealed partial class Registry
{
    /// <summary>The sidecar value that keeps a map in memory only.</summary>
    public const string NoSidecar = "none";

    /// <summary>
    /// Tracking options for a device: the sidecar defaults to <c>FILE.cbt</c> beside a regular file, and
    /// to <c>NAME.cbt</c> beside the state file for a block device.
    /// </summary>
    public TrackerOptions TrackerOptionsFor(string deviceName, string file, int? blockSize, string? sidecar)
    {
        var size = blockSize ?? (64 << 10);
        if (size < 4096 || (size & (size - 1)) != 0)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"tracking block size {size} must be a power of two of at least 4096");
        }
        string? path = sidecar switch
        {
            NoSidecar => null,
            null when FileStatus.TryGet(file, out var s) && s.IsBlockDevice && State is not null =>
                Path.Combine(Path.GetDirectoryName(State.Path) ?? "/", deviceName + ".cbt"),
            null => file + ".cbt",
            _ => Path.GetFullPath(sidecar),
        };
        return new TrackerOptions { BlockSize = size, SidecarPath = path, Identity = () => DeviceIdentity.Of(file) };
    }

    /// <summary>Attaches change tracking to a device while its clients stay connected.</summary>
    public async Task<CbtInfo> AttachTrackerAsync(string deviceName, int? blockSize, string? sidecar)
    {
        ThrowIfClosing();
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        await AttachTrackerAsync(device, TrackerOptionsFor(deviceName, device.Spec.File, blockSize, sidecar)).ConfigureAwait(false);
        return CbtInfoOf(device);
    }

    private async Task AttachTrackerAsync(Device device, TrackerOptions options)
    {
        await device.AttachTrackerAsync(options, DefaultTimeout).ConfigureAwait(false);
        var tracker = device.Tracker!.Tracker;
        var name = device.Name;
        tracker.GenerationStarted += (_, reason) => _events.Publish(EventNames.CbtGeneration, new JsonObject
        {
            ["device"] = name,
            ["generation"] = tracker.Generation.ToString(),
            ["reason"] = reason,
        });
        _events.Publish(EventNames.CbtAttached, new JsonObject { ["cbt"] = JsonSerializer.SerializeToNode(CbtInfoOf(device), ProtocolJsonContext.Default.CbtInfo) });
    }

    public async Task DetachTrackerAsync(string deviceName)
    {
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        await device.DetachTrackerAsync(DefaultTimeout).ConfigureAwait(false);
        _events.Publish(EventNames.CbtDetached, new JsonObject { ["device"] = deviceName });
    }

    public async Task<CbtInfo> CbtInfoAsync(string deviceName) => CbtInfoOf(await GetDeviceAsync(deviceName).ConfigureAwait(false));

    /// <summary>The byte ranges of blocks changed after period <paramref name="since"/>, merged.</summary>
    public async Task<CbtMap> CbtMapAsync(string deviceName, int since)
    {
        if (since is < 0 or > 255)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"since must be a period number from 0 to 255 (got {since})");
        }
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        var tracker = TrackerOf(device);
        var map = tracker.Freeze();
        var info = tracker.Info();
        var ranges = new List<CbtRange>();
        long bytes = 0;
        long runStart = -1;
        for (long block = 0; block <= map.BlockCount; block++)
        {
            var changed = block < map.BlockCount && map.ChangedSince(block, (byte)since);
            if (changed && runStart < 0)
            {
                runStart = block;
            }
            else if (!changed && runStart >= 0)
            {
                var offset = runStart * tracker.BlockSize;
                var length = Math.Min(block * (long)tracker.BlockSize, tracker.DeviceSize) - offset;
                ranges.Add(new CbtRange { Offset = offset, Length = length });
                bytes += length;
                runStart = -1;
            }
        }
        return new CbtMap
        {
            Device = deviceName,
            Generation = info.Generation.ToString(),
            BlockSize = info.BlockSize,
            Since = since,
            Period = info.Period,
            Bytes = bytes,
            Ranges = ranges,
        };
    }

    /// <summary>Marks a range changed without writing it (its blocks join the next incremental).</summary>
    public async Task MarkDirtyAsync(string deviceName, long offset, long length)
    {
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        var tracker = TrackerOf(device);
        if (offset < 0 || length <= 0 || offset > tracker.DeviceSize - length)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"range {offset}:{length} is not inside the device's {tracker.DeviceSize} bytes");
        }
        await tracker.MarkDirtyAsync(offset, length).ConfigureAwait(false);
    }

    /// <summary>Starts a new generation: the next backup must be full.</summary>
    public async Task<CbtInfo> ResetTrackerAsync(string deviceName, string? reason)
    {
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        TrackerOf(device).Reset(reason ?? "reset by request");
        return CbtInfoOf(device);
    }

    private static ChangeTracker TrackerOf(Device device) =>
        device.Tracker?.Tracker ?? throw new ControlException(ControlErrorCodes.NotFound, $"device {device.Name} is not tracked (cbt attach it first)");

    private static CbtInfo CbtInfoOf(Device device)
    {
        var attachment = device.Tracker ?? throw new ControlException(ControlErrorCodes.NotFound, $"device {device.Name} is not tracked (cbt attach it first)");
        var info = attachment.Tracker.Info();
        return new CbtInfo
        {
            Device = device.Name,
            Generation = info.Generation.ToString(),
            GenerationReason = info.GenerationReason,
            BlockSize = info.BlockSize,
            Period = info.Period,
            ChangedBlocks = info.ChangedBlocks,
            ChangedInPeriod = info.ChangedInPeriod,
            MapBytes = info.MapBytes,
            Sidecar = attachment.Options.SidecarPath,
            PersistenceProblem = attachment.Tracker.PersistenceProblem,
        };
    }
}
