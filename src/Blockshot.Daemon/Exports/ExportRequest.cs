namespace Blockshot.Daemon.Exports;

/// <summary>What an export is asked to be.</summary>
/// <param name="Name">The export name (unique across types).</param>
/// <param name="Type">The export type (<c>nbd</c>, <c>fuse</c>).</param>
/// <param name="ReadOnly">Refuse writes.</param>
/// <param name="Description">Shown to clients where the protocol has a place for it.</param>
/// <param name="Path">FUSE: the regular file the device is mounted on, as an absolute path.</param>
/// <param name="Loop">FUSE: attach a loop device to the file.</param>
internal sealed record ExportRequest(string Name, string Type, bool ReadOnly, string? Description, string? Path = null, bool Loop = false);
