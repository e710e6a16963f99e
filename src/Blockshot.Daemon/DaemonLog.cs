using Microsoft.Extensions.Logging;

namespace Blockshot.Daemon;

/// <summary>
/// The daemon's log messages, with stable event ids: 10xx lifecycle, 11xx control connections,
/// 12xx events, 13xx jobs, 14xx FUSE exports. The data path (filters, NBD requests) does not log here.
/// </summary>
internal static partial class DaemonLog
{
    [LoggerMessage(1000, LogLevel.Information, "daemon started: control socket {Control}, NBD on {Nbd}")]
    public static partial void Started(ILogger logger, string control, string nbd);

    [LoggerMessage(1001, LogLevel.Information, "stopping ({Reason}): no new connections, draining requests")]
    public static partial void Stopping(ILogger logger, string reason);

    [LoggerMessage(1002, LogLevel.Information, "stopped: {Devices} device(s) flushed and closed")]
    public static partial void Stopped(ILogger logger, int devices);

    [LoggerMessage(1003, LogLevel.Error, "device {Device}: flush failed while closing")]
    public static partial void FlushFailed(ILogger logger, string device, Exception exception);

    [LoggerMessage(1004, LogLevel.Information, "configuration applied: {Devices} device(s), {Exports} export(s)")]
    public static partial void ConfigApplied(ILogger logger, int devices, int exports);

    [LoggerMessage(1100, LogLevel.Debug, "control connection {Id} opened")]
    public static partial void ControlOpened(ILogger logger, long id);

    [LoggerMessage(1101, LogLevel.Debug, "control connection {Id} closed: {Reason}")]
    public static partial void ControlClosed(ILogger logger, long id, string reason);

    [LoggerMessage(1102, LogLevel.Debug, "control connection {Id}: {Method} failed ({Code}): {Message}")]
    public static partial void RequestFailed(ILogger logger, long id, string method, int code, string message);

    [LoggerMessage(1103, LogLevel.Error, "control connection {Id}: {Method} failed unexpectedly")]
    public static partial void RequestCrashed(ILogger logger, long id, string method, Exception exception);

    [LoggerMessage(1104, LogLevel.Debug, "control connection {Id}: bad input: {Message}")]
    public static partial void BadInput(ILogger logger, long id, string message);

    [LoggerMessage(1105, LogLevel.Warning, "control connection {Id}: events dropped for a slow reader")]
    public static partial void EventsDropped(ILogger logger, long id);

    [LoggerMessage(1200, LogLevel.Information, "{Event} {Data}")]
    public static partial void Event(ILogger logger, string @event, string data);

    [LoggerMessage(1300, LogLevel.Warning, "job {Id} failed: {Message}")]
    public static partial void JobFailed(ILogger logger, string id, string message, Exception exception);

    [LoggerMessage(1301, LogLevel.Warning, "job {Id}: cleanup failed")]
    public static partial void JobCleanupFailed(ILogger logger, string id, Exception exception);

    [LoggerMessage(1400, LogLevel.Information, "fuse export {Export} mounted at {Path} (loop device: {Loop})")]
    public static partial void FuseMounted(ILogger logger, string export, string path, string loop);

    [LoggerMessage(1401, LogLevel.Warning, "fuse export {Export} at {Path} stopped serving ({Reason}); remove the export to release it")]
    public static partial void FuseEnded(ILogger logger, string export, string path, string reason, Exception? exception);

    [LoggerMessage(1402, LogLevel.Warning, "fuse export {Export} at {Path}: stopping failed")]
    public static partial void FuseStopFailed(ILogger logger, string export, string path, Exception exception);

    [LoggerMessage(1403, LogLevel.Warning, "cleaned up after a previous run, fuse export {Export}: {Summary}")]
    public static partial void FuseLeftoverCleaned(ILogger logger, string export, string summary);

    [LoggerMessage(1404, LogLevel.Error, "cannot clean up fuse export {Export} at {Path} left by a previous run")]
    public static partial void FuseLeftoverFailed(ILogger logger, string export, string path, Exception exception);

    [LoggerMessage(1405, LogLevel.Error, "cannot read the fuse mount record {File}; mounts a previous run left are not cleaned")]
    public static partial void FuseRecordUnreadable(ILogger logger, string file, Exception exception);

    [LoggerMessage(1406, LogLevel.Warning, "cannot update the fuse mount record {File}")]
    public static partial void FuseRecordUnwritable(ILogger logger, string file, Exception exception);

    [LoggerMessage(1500, LogLevel.Warning, "device {Device}: its persistent snapshots could not be reopened")]
    public static partial void SnapshotRestoreFailed(ILogger logger, string device, Exception exception);

    [LoggerMessage(1501, LogLevel.Error, "the thaw hook failed; thaw by hand: {Message}")]
    public static partial void ThawFailed(ILogger logger, string message);

    [LoggerMessage(1502, LogLevel.Warning, "device {Device}: the changes of snapshot {Snapshot} were not saved ({Message}); after a restart its dirty bitmap is a superset")]
    public static partial void TakeNotSaved(ILogger logger, string device, string snapshot, string message);

    [LoggerMessage(1503, LogLevel.Warning, "device {Device}: the image's bitmap {Bitmap} could not start the new generation ({Message}); the sidecar's map is right")]
    public static partial void Qcow2BitmapFailed(ILogger logger, string device, string bitmap, string message);
}
