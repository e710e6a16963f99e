using System.Text.Json;
using System.Text.Json.Nodes;
using Blockshot.Core.Platform;
using Blockshot.Daemon.ChangeTracking;
using Blockshot.Daemon.Devices;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Protocol;
using Blockshot.Qcow2;
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
    /// <remarks>
    /// <paramref name="beforeOpen"/> is the file's identity from before the daemon opened it (device add): the
    /// tracker's first look compares that one, since opening a qcow2 image writes it (bitmaps marked in use,
    /// the dirty flag); later looks (a clean close's record) read the file as it is then.
    /// </remarks>
    public TrackerOptions TrackerOptionsFor(string deviceName, string file, int? blockSize, string? sidecar, DeviceIdentity? beforeOpen = null)
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
        var looked = 0;
        return new TrackerOptions
        {
            BlockSize = size,
            SidecarPath = path,
            Identity = () => beforeOpen is { } before && Interlocked.Exchange(ref looked, 1) == 0 ? before : DeviceIdentity.Of(file),
        };
    }

    /// <summary>Attaches change tracking to a device while its clients stay connected.</summary>
    public async Task<CbtInfo> AttachTrackerAsync(string deviceName, int? blockSize, string? sidecar, string? store)
    {
        ThrowIfClosing();
        var device = await GetDeviceAsync(deviceName).ConfigureAwait(false);
        await AttachTrackerAsync(device, TrackerOptionsFor(deviceName, device.Spec.File, blockSize, sidecar), store).ConfigureAwait(false);
        return CbtInfoOf(device);
    }

    private async Task AttachTrackerAsync(Device device, TrackerOptions options, string? store)
    {
        var bitmap = Qcow2BitmapMirror.BitmapName(store);
        Qcow2Node? image = null;
        if (bitmap is not null)
        {
            CheckName(bitmap, "bitmap");
            image = device.Leaf as Qcow2Node
                ?? throw new ControlException(ControlErrorCodes.InvalidParams, $"device {device.Name} is {device.Spec.Format}: only a qcow2 image holds a persistent bitmap");
            if (options.SidecarPath is null)
            {
                throw new ControlException(ControlErrorCodes.InvalidParams,
                    "a qcow2 bitmap needs the sidecar beside it: it holds one bit per block, not the periods, and is not durable before a write");
            }
        }
        await device.AttachTrackerAsync(options, DefaultTimeout, bitmap).ConfigureAwait(false);
        var tracker = device.Tracker!.Tracker;
        var name = device.Name;
        if (image is not null)
        {
            try
            {
                await Qcow2BitmapMirror.RebuildAsync(image, bitmap!, tracker).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ArgumentException)
            {
                await device.DetachTrackerAsync(DefaultTimeout).ConfigureAwait(false);
                throw new ControlException(ControlErrorCodes.IoError, $"cannot keep bitmap {bitmap} in {device.Spec.File}: {e.Message}", e);
            }
            tracker.GenerationStarted += (_, _) => _ = ClearQcow2BitmapAsync(name, image, bitmap!, tracker);
        }
        tracker.GenerationStarted += (_, reason) => _events.Publish(EventNames.CbtGeneration, new JsonObject
        {
            ["device"] = name,
            ["generation"] = tracker.Generation.ToString(),
            ["reason"] = reason,
        });
        _events.Publish(EventNames.CbtAttached, new JsonObject { ["cbt"] = JsonSerializer.SerializeToNode(CbtInfoOf(device), ProtocolJsonContext.Default.CbtInfo) });
    }

    // Off the tracker's lock (the event is raised under it): the image's bitmap starts the new generation too.
    private async Task ClearQcow2BitmapAsync(string device, Qcow2Node image, string bitmap, ChangeTracker tracker)
    {
        await Task.Yield();
        try
        {
            await Qcow2BitmapMirror.ClearAsync(image, bitmap, tracker).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ArgumentException or ObjectDisposedException)
        {
            DaemonLog.Qcow2BitmapFailed(_logger, device, bitmap, e.Message);
        }
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
        var ranges = tracker.ChangedRanges(map, (byte)since).Select(r => new CbtRange { Offset = r.Offset, Length = r.Length }).ToList();
        var bytes = ranges.Sum(r => r.Length);
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
            Qcow2Bitmap = attachment.Qcow2Bitmap,
            PersistenceProblem = attachment.Tracker.PersistenceProblem,
        };
    }
}
