using System.Runtime.InteropServices;
using Blockshot.Core;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Drivers.Raw;

/// <summary>
/// The Linux system calls the raw driver makes. Calls
/// report failure as -1 with errno in <see cref="Marshal.GetLastPInvokeError"/>. Structures follow the
/// generic 64-bit Linux layouts (x86_64, arm64, riscv64); <see cref="RawFileNode.Open"/> refuses other
/// platforms.
/// </summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    // open(2) flags.
    public const int ReadOnly = 0;
    public const int ReadWrite = 2;
    public const int CloseOnExec = 0x80000;

    // errno values.
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int ENOTTY = 25;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int EROFS = 30;
    public const int ENOLCK = 37;
    public const int ENOSYS = 38;
    public const int ELOOP = 40;
    public const int EOPNOTSUPP = 95;
    public const int EDQUOT = 122;

    // lseek(2) whence.
    public const int SeekSet = 0;
    public const int SeekData = 3;
    public const int SeekHole = 4;

    // fallocate(2) modes.
    public const int FallocKeepSize = 0x01;
    public const int FallocPunchHole = 0x02;
    public const int FallocZeroRange = 0x10;

    // fcntl(2) open file description locks.
    public const int FOfdGetLock = 36;
    public const int FOfdSetLock = 37;
    public const short FReadLock = 0;
    public const short FWriteLock = 1;
    public const short FUnlock = 2;

    // pwritev2(2) flags.
    public const int RwfDsync = 0x02;
    public const int RwfNowait = 0x08;

    // statx(2).
    public const int AtEmptyPath = 0x1000;
    public const uint StatxBasicStats = 0x07ff;
    public const uint StatxDioAlign = 0x2000;
    public const int SIfMt = 0xF000;
    public const int SIfReg = 0x8000;
    public const int SIfBlk = 0x6000;

    // Block device ioctls (_IO / _IOR on 0x12).
    public const nuint BlkGetSize64 = 0x80081272;
    public const nuint BlkSszGet = 0x1268;
    public const nuint BlkDiscard = 0x1277;
    public const nuint BlkZeroOut = 0x127F;

    /// <summary>O_DIRECT, whose value differs between architectures.</summary>
    public static int Direct => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.Arm64 => 0x10000,
        Architecture.Ppc64le => 0x20000,
        _ => 0x4000,
    };

    /// <summary>O_TMPFILE (with the O_DIRECTORY bit it includes), whose value differs between architectures.</summary>
    public static int TempFile => 0x400000 | RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.Arm64 => 0x4000,
        Architecture.Ppc64le => 0x4000,
        _ => 0x10000,
    };

    /// <summary>errno of the last failed call.</summary>
    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>The block error a failed call's errno reports to the requester.</summary>
    public static BlockError BlockErrorOf(int errno) => errno switch
    {
        ENOSPC or EFBIG or EDQUOT => BlockError.NoSpace,
        EOPNOTSUPP => BlockError.NotSupported,
        EINVAL => BlockError.Invalid,
        _ => BlockError.Io,
    };

    /// <summary>The text of an errno value.</summary>
    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(SafeFileHandle dirFd, string path, int flags, uint mask, StatxBuffer* buffer);

    [LibraryImport(Lib, EntryPoint = "fstatfs", SetLastError = true)]
    public static partial int FStatFs(SafeFileHandle fd, byte* buffer);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(SafeFileHandle fd, nuint request, void* argument);

    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(SafeFileHandle fd, int command, FileLock* argument);

    [LibraryImport(Lib, EntryPoint = "lseek", SetLastError = true)]
    public static partial long LSeek(SafeFileHandle fd, long offset, int whence);

    [LibraryImport(Lib, EntryPoint = "fallocate", SetLastError = true)]
    public static partial int FAllocate(SafeFileHandle fd, int mode, long offset, long length);

    [LibraryImport(Lib, EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int FDataSync(SafeFileHandle fd);

    [LibraryImport(Lib, EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int FTruncate(SafeFileHandle fd, long length);

    [LibraryImport(Lib, EntryPoint = "preadv2", SetLastError = true)]
    public static partial nint PReadV2(SafeFileHandle fd, IoVector* vectors, int count, long offset, int flags);

    [LibraryImport(Lib, EntryPoint = "pwritev2", SetLastError = true)]
    public static partial nint PWriteV2(SafeFileHandle fd, IoVector* vectors, int count, long offset, int flags);

    [LibraryImport(Lib, EntryPoint = "copy_file_range", SetLastError = true)]
    public static partial nint CopyFileRange(SafeFileHandle fdIn, long* offsetIn, SafeFileHandle fdOut, long* offsetOut, nuint length, uint flags);

    /// <summary>cachestat(2) (Linux 6.5): the same number on x86_64, arm64 and riscv64.</summary>
    public const long SysCacheStat = 451;

    /// <summary>cachestat(2), called through syscall(2): glibc has no wrapper for it.</summary>
    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    public static partial long CacheStat(long number, SafeFileHandle fd, CacheStatRange* range, CacheStatResult* result, uint flags);

    /// <summary><c>struct cachestat_range</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct CacheStatRange
    {
        public ulong Offset;
        public ulong Length;
    }

    /// <summary><c>struct cachestat</c>: page counts over the range.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct CacheStatResult
    {
        public ulong Cached;
        public ulong Dirty;
        public ulong Writeback;
        public ulong Evicted;
        public ulong RecentlyEvicted;
    }

    /// <summary><c>struct flock</c>: 32 bytes on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct FileLock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Length;
        public int Pid;
    }

    /// <summary><c>struct iovec</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoVector
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary><c>struct statx</c> (256 bytes, the same on every architecture); only the fields used.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct StatxBuffer
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Inode;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(48)] public ulong Blocks;
        [FieldOffset(128)] public uint RdevMajor;
        [FieldOffset(132)] public uint RdevMinor;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
        [FieldOffset(152)] public uint DioMemAlign;
        [FieldOffset(156)] public uint DioOffsetAlign;
    }
}
