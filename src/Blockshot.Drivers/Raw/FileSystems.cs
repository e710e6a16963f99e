using Microsoft.Win32.SafeHandles;

namespace Blockshot.Drivers.Raw;

/// <summary>
/// What the filesystem under a file can do, judged by its magic number (fstatfs f_type). Used only to
/// advertise fast zeroing up front: probing with a real fallocate would change the file. Requests
/// still try fallocate on any filesystem and fall back (or refuse, for fast zeroing) on EOPNOTSUPP.
/// </summary>
internal static unsafe class FileSystems
{
    private const long Ext4 = 0xEF53;
    private const long Xfs = 0x58465342;
    private const long Btrfs = 0x9123683E;
    private const long F2fs = 0xF2F52010;

    /// <summary>True when fallocate(FALLOC_FL_ZERO_RANGE) is a metadata operation on this filesystem.</summary>
    public static bool ZeroesRangesNatively(SafeFileHandle handle)
    {
        // struct statfs is 120 bytes on 64-bit Linux, f_type (a long) first.
        var buffer = stackalloc byte[256];
        if (Libc.FStatFs(handle, buffer) != 0)
        {
            return false;
        }
        var type = *(long*)buffer;
        return type is Ext4 or Xfs or Btrfs or F2fs;
    }
}
