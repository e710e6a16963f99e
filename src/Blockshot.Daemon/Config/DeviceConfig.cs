namespace Blockshot.Daemon.Config;

/// <summary>A device in the configuration file.</summary>
/// <param name="Where">Its JSON path in the file, for error messages (e.g. <c>$.devices[1]</c>).</param>
/// <param name="Name">Device name.</param>
/// <param name="File">Absolute image path (relative paths are resolved against the file's directory).</param>
/// <param name="Format">raw or qcow2; null = detect.</param>
/// <param name="ReadOnly">Open read-only.</param>
/// <param name="Direct">Bypass the page cache.</param>
/// <param name="Locking">Take the image locks.</param>
/// <param name="Filters">Filters, top first.</param>
public sealed record DeviceConfig(string Where, string Name, string File, string? Format, bool ReadOnly, bool Direct, bool Locking,
    IReadOnlyList<FilterConfig> Filters);
