namespace Blockshot.Core.Platform;

/// <summary>
/// What identifies a device's content from outside: its file system device and inode, size and last
/// modification time. A change the tracker did not see shows up here.
/// </summary>
/// <param name="Device">st_dev of the file (or st_rdev of a block device).</param>
/// <param name="Inode">st_ino.</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="ModifiedTicks">Last modification, UTC ticks (0 when unknown, e.g. a block device).</param>
public readonly record struct DeviceIdentity(ulong Device, ulong Inode, long Size, long ModifiedTicks)
{
    /// <summary>Nothing known.</summary>
    public static DeviceIdentity Unknown => default;

    /// <summary>True when the modification time can tell a foreign write (regular files).</summary>
    public bool CanDetectWrites => ModifiedTicks != 0;

    /// <summary>
    /// The identity of a regular file or block device. A block device's node does not change when the
    /// device is written, so for those only the device number is known and foreign writes go unseen.
    /// </summary>
    public static DeviceIdentity Of(string path)
    {
        if (!FileStatus.TryGet(path, out var s))
        {
            return Unknown;
        }
        return s.IsBlockDevice
            ? new DeviceIdentity(s.SpecialDevice, 0, 0, 0)
            : new DeviceIdentity(s.Device, s.Inode, s.Size, s.ModifiedTicks);
    }
}
