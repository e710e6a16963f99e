using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Blockshot.Core.Platform;

/// <summary>What statx(2) says about a path: type, identity, size and modification time.</summary>
/// <param name="Mode">File type and permission bits.</param>
/// <param name="Device">The device the file lives on (major:minor packed as in st_dev).</param>
/// <param name="Inode">The inode number.</param>
/// <param name="SpecialDevice">For a block or character device, the device it is (packed major:minor).</param>
/// <param name="Size">Size in bytes (0 for block devices; ask the device).</param>
/// <param name="ModifiedTicks">Last modification, UTC ticks.</param>
public readonly partial record struct FileStatus(uint Mode, ulong Device, ulong Inode, ulong SpecialDevice, long Size, long ModifiedTicks)
{
    private const uint TypeMask = 0xF000;

    /// <summary>True for a regular file.</summary>
    public bool IsRegularFile => (Mode & TypeMask) == 0x8000;

    /// <summary>True for a block device.</summary>
    public bool IsBlockDevice => (Mode & TypeMask) == 0x6000;

    /// <summary>True for a Unix domain socket.</summary>
    public bool IsSocket => (Mode & TypeMask) == 0xC000;

    /// <summary>True for a directory.</summary>
    public bool IsDirectory => (Mode & TypeMask) == 0x4000;

    /// <summary>Reads the status of <paramref name="path"/> (not following a final symlink when asked).</summary>
    public static unsafe bool TryGet(string path, out FileStatus status, bool followLinks = true)
    {
        const int AtFdCwd = -100;
        const int AtSymlinkNoFollow = 0x100;
        const uint BasicStats = 0x7FF;
        var buffer = stackalloc byte[256];
        if (statx(AtFdCwd, path, followLinks ? 0 : AtSymlinkNoFollow, BasicStats, buffer) != 0)
        {
            status = default;
            return false;
        }
        var span = new ReadOnlySpan<byte>(buffer, 256);
        var mtimeSeconds = BinaryPrimitives.ReadInt64LittleEndian(span[112..]);
        var mtimeNanos = BinaryPrimitives.ReadUInt32LittleEndian(span[120..]);
        status = new FileStatus(
            BinaryPrimitives.ReadUInt16LittleEndian(span[28..]),
            MakeDevice(BinaryPrimitives.ReadUInt32LittleEndian(span[136..]), BinaryPrimitives.ReadUInt32LittleEndian(span[140..])),
            BinaryPrimitives.ReadUInt64LittleEndian(span[32..]),
            MakeDevice(BinaryPrimitives.ReadUInt32LittleEndian(span[128..]), BinaryPrimitives.ReadUInt32LittleEndian(span[132..])),
            (long)BinaryPrimitives.ReadUInt64LittleEndian(span[40..]),
            DateTime.UnixEpoch.Ticks + (mtimeSeconds * TimeSpan.TicksPerSecond) + (mtimeNanos / 100));
        return true;
    }

    /// <summary>glibc's makedev packing of major and minor numbers.</summary>
    public static ulong MakeDevice(uint major, uint minor) =>
        ((ulong)(major & 0xFFFFF000) << 32) | ((ulong)(major & 0xFFF) << 8) | ((ulong)(minor & 0xFFFFFF00) << 12) | (minor & 0xFF);

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int statx(int dirFd, string path, int flags, uint mask, byte* buffer);
}
