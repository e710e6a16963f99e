namespace Blockshot.Daemon.Config;

/// <summary>An export in the configuration file.</summary>
/// <param name="Where">Its JSON path in the file.</param>
/// <param name="Device">The device exported.</param>
/// <param name="Type">nbd or fuse.</param>
/// <param name="Name">Export name; null = the device name.</param>
/// <param name="ReadOnly">Refuse writes.</param>
/// <param name="Description">Shown to clients.</param>
/// <param name="Path">fuse: the file to mount the device on (relative paths are resolved against the file's directory).</param>
/// <param name="Loop">fuse: attach a loop device to it.</param>
public sealed record ExportConfig(string Where, string Device, string Type, string? Name, bool ReadOnly, string? Description,
    string? Path = null, bool Loop = false);
