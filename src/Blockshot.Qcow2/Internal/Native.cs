using System.Runtime.InteropServices;

namespace Blockshot.Qcow2.Internal;

/// <summary>The few libc calls the file accessor needs beyond what <see cref="RandomAccess"/> offers.</summary>
internal static partial class Native
{
    public const int FallocKeepSize = 0x01;
    public const int FallocPunchHole = 0x02;
    public const int FallocZeroRange = 0x10;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fallocate(int fd, int mode, long offset, long length);
}
