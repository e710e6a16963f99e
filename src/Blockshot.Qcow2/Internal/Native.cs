using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Qcow2.Internal;

/// <summary>The few libc calls the file accessor needs beyond what <see cref="RandomAccess"/> offers.</summary>
internal static partial class Native
{
    public const int FallocKeepSize = 0x01;
    public const int FallocPunchHole = 0x02;
    public const int FallocZeroRange = 0x10;
    public const int RwfNowait = 0x08;
    public const int EOPNOTSUPP = 95;

    /// <summary><c>struct iovec</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct IoVector
    {
        public void* Base;
        public nuint Length;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial nint preadv2(SafeFileHandle fd, IoVector* vectors, int count, long offset, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial nint pwritev2(SafeFileHandle fd, IoVector* vectors, int count, long offset, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fallocate(int fd, int mode, long offset, long length);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>Bytes the file occupies on disk (allocated blocks × 512), or its length when unknown.</summary>
    public static unsafe long AllocatedBytes(string path)
    {
        const int AtFdCwd = -100;
        const uint StatxBlocks = 0x400;
        var buffer = stackalloc byte[256];
        if (statx(AtFdCwd, path, 0, StatxBlocks, buffer) == 0 && (*(uint*)buffer & StatxBlocks) != 0)
        {
            return (long)(*(ulong*)(buffer + 48)) * 512;
        }
        return new FileInfo(path).Length;
    }
}
