using Microsoft.Win32.SafeHandles;

namespace Blockshot.Drivers.Raw;

/// <summary>What <c>statx</c> says about an open file.</summary>
internal readonly record struct FileStat(
    int Mode,
    long Size,
    long Blocks,
    ulong Inode,
    uint DevMajor,
    uint DevMinor,
    uint RdevMajor,
    uint RdevMinor,
    int DioMemAlign,
    int DioOffsetAlign)
{
    /// <summary>True for a regular file.</summary>
    public bool IsRegular => (Mode & Libc.SIfMt) == Libc.SIfReg;

    /// <summary>True for a block device.</summary>
    public bool IsBlockDevice => (Mode & Libc.SIfMt) == Libc.SIfBlk;

    /// <summary>Bytes allocated on disk.</summary>
    public long AllocatedBytes => Blocks * 512;

    /// <summary>A word for the file type, for messages.</summary>
    public string TypeName => (Mode & Libc.SIfMt) switch
    {
        0x4000 => "a directory",
        0x2000 => "a character device",
        0x1000 => "a FIFO",
        0xC000 => "a socket",
        Libc.SIfReg => "a regular file",
        Libc.SIfBlk => "a block device",
        _ => "an unknown file type",
    };

    /// <summary>Stats <paramref name="handle"/>; returns -errno on failure.</summary>
    public static unsafe int TryOf(SafeFileHandle handle, out FileStat stat)
    {
        Libc.StatxBuffer buffer;
        if (Libc.Statx(handle, "", Libc.AtEmptyPath, Libc.StatxBasicStats | Libc.StatxDioAlign, &buffer) != 0)
        {
            stat = default;
            return -Libc.Errno;
        }
        var dio = (buffer.Mask & Libc.StatxDioAlign) != 0;
        stat = new FileStat(
            buffer.Mode,
            (long)buffer.Size,
            (long)buffer.Blocks,
            buffer.Inode,
            buffer.DevMajor,
            buffer.DevMinor,
            buffer.RdevMajor,
            buffer.RdevMinor,
            dio ? (int)buffer.DioMemAlign : 0,
            dio ? (int)buffer.DioOffsetAlign : 0);
        return 0;
    }
}
