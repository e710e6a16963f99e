namespace Blockshot.Daemon.SnapshotSets;

/// <summary>What a snapshot export is asked to be.</summary>
/// <param name="Snapshot">The snapshot (set) name.</param>
/// <param name="Device">The device whose snapshot is exported.</param>
/// <param name="Type">The export type: <c>nbd</c> or <c>fuse</c>.</param>
/// <param name="ExportName">The export name; default <c>DEVICE.SNAPSHOT</c>.</param>
/// <param name="ReadOnly">Refuse writes and trims.</param>
/// <param name="Bitmap">NBD: the name the dirty bitmap is offered under.</param>
/// <param name="Description">Shown to clients where the protocol has a place for it.</param>
/// <param name="Path">FUSE: the regular file the image is mounted on, as an absolute path.</param>
/// <param name="Loop">FUSE: attach a loop device to the file.</param>
internal sealed record SnapshotExportRequest(
    string Snapshot,
    string Device,
    string Type = "nbd",
    string? ExportName = null,
    bool ReadOnly = false,
    string? Bitmap = null,
    string? Description = null,
    string? Path = null,
    bool Loop = false);
