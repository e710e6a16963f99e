using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Events;

/// <summary>The event names the daemon publishes (frozen: subscribers match on them).</summary>
internal static class EventNames
{
    public const string DeviceAdded = "device.added";
    public const string DeviceRemoved = "device.removed";
    public const string DeviceSuspended = "device.suspended";
    public const string DeviceResumed = "device.resumed";
    public const string DeviceReloaded = "device.reloaded";
    public const string DeviceResized = "device.resized";
    public const string FilterInserted = "filter.inserted";
    public const string FilterRemoved = "filter.removed";
    public const string ExportAdded = "export.added";
    public const string ExportRemoved = "export.removed";
    public const string ClientConnected = "export.client-connected";
    public const string ClientDisconnected = "export.client-disconnected";
    public const string JobStatus = "job.status";
    public const string JobProgress = "job.progress";
    public const string EventsDropped = "events.dropped";
    public const string SnapshotCreated = "snapshot.created";
    public const string SnapshotDestroyed = "snapshot.destroyed";
    public const string SnapshotFailed = "snapshot.failed";
    public const string SnapshotLowSpace = "snapshot.low-space";
    public const string SnapshotOverflow = "snapshot.overflow";
    public const string CbtAttached = "cbt.attached";
    public const string CbtDetached = "cbt.detached";
    public const string CbtGeneration = "cbt.generation";

    /// <summary>Every event with what its data holds.</summary>
    public static IReadOnlyList<EventTypeInfo> All { get; } =
    [
        Info(DeviceAdded, "a device was added; data: device (the device-info object)"),
        Info(DeviceRemoved, "a device was removed; data: name"),
        Info(DeviceSuspended, "a device was suspended; data: name"),
        Info(DeviceResumed, "a device was resumed; data: name, reason (request or hold-expired)"),
        Info(DeviceReloaded, "a device's leaf was reopened; data: name, file, error (when it failed)"),
        Info(DeviceResized, "a device's image was resized; data: name, size"),
        Info(FilterInserted, "a filter was inserted; data: device, filter, type"),
        Info(FilterRemoved, "a filter was removed; data: device, filter, type"),
        Info(ExportAdded, "an export was added; data: export (the export-info object)"),
        Info(ExportRemoved, "an export was removed; data: name, device"),
        Info(ClientConnected, "a client attached to an export; data: export, connection, remote"),
        Info(ClientDisconnected, "a client left an export; data: export, connection, remote"),
        Info(JobStatus, "a job changed state; data: job (the job-info object)"),
        Info(JobProgress, "a job made progress (at most twice a second per job); data: id, bytes-done, bytes-total, rate"),
        Info(SnapshotCreated, "a snapshot set was taken (or reopened after a restart); data: snapshot (the snapshot-info object)"),
        Info(SnapshotDestroyed, "snapshots were destroyed; data: name, devices"),
        Info(SnapshotFailed, "a snapshot broke (overflow or I/O error under break-snapshot, or unprovable after a restart); its reads fail with EIO; data: name, device, reason, time"),
        Info(SnapshotLowSpace, "difference storage ran low (free space before the limit under the threshold); data: device, storage, used, limit, time"),
        Info(SnapshotOverflow, "difference storage is full: a write could not be protected (at most one a second per device); data: device, storage, used, limit, time"),
        Info(CbtAttached, "change tracking was attached; data: cbt (the cbt-info object)"),
        Info(CbtDetached, "change tracking was detached; data: device"),
        Info(CbtGeneration, "a new change-tracking generation began (the next backup must be full); data: device, generation, reason"),
        Info(EventsDropped, "this subscriber read too slowly and missed events; data: count"),
    ];

    private static EventTypeInfo Info(string name, string description) => new() { Name = name, Description = description };
}
