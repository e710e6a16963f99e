namespace Blockshot.Daemon.Devices;

/// <summary>How a device's leaf is opened: enough to open it again (reload) or describe it.</summary>
/// <param name="File">Absolute path of the image file or host block device.</param>
/// <param name="Format">The image format (<c>raw</c>; <c>qcow2</c> once its driver lands).</param>
/// <param name="ReadOnly">Open read-only.</param>
/// <param name="Direct">Bypass the page cache (O_DIRECT).</param>
/// <param name="Locking">Take the image locks (qemu-compatible).</param>
internal sealed record LeafSpec(string File, string Format, bool ReadOnly, bool Direct = false, bool Locking = true);
