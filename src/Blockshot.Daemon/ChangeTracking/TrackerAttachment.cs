using Blockshot.Tracking;

namespace Blockshot.Daemon.ChangeTracking;

/// <summary>A device's change tracker and the options it was attached with.</summary>
internal sealed class TrackerAttachment(ChangeTracker tracker, TrackerOptions options, string? qcow2Bitmap)
{
    /// <summary>The persistent bitmap in the qcow2 image that mirrors the generation's changes, if any.</summary>
    public string? Qcow2Bitmap { get; } = qcow2Bitmap;

    /// <summary>The filter (pinned right above the leaf).</summary>
    public ChangeTracker Tracker { get; } = tracker;

    /// <summary>Block size, sidecar.</summary>
    public TrackerOptions Options { get; } = options;

    /// <summary>Records a clean stop in the sidecar (call after the device is flushed) and releases the tracker.</summary>
    public async Task CloseAsync()
    {
        try
        {
            await Tracker.CloseAsync().ConfigureAwait(false);
        }
        finally
        {
            await Tracker.DisposeAsync().ConfigureAwait(false);
        }
    }
}
