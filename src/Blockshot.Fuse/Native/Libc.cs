using System.Runtime.InteropServices;

namespace Blockshot.Fuse.Native;

/// <summary>
/// The few C library calls the FUSE export needs: file descriptors, poll, eventfd, mount, ioctl and
/// descriptor passing. Every call sets errno, read back with <see cref="Marshal.GetLastPInvokeError"/>.
/// </summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    public const int ORdOnly = 0x0;
    public const int OWrOnly = 0x1;
    public const int ORdWr = 0x2;
    public const int OAccMode = 0x3;
    public const int OCreat = 0x40;
    public const int OExcl = 0x80;
    public const int OTrunc = 0x200;
    public const int ONonBlock = 0x800;
    public const int ODirect = 0x4000;
    public const int OCloExec = 0x80000;

    public const short PollIn = 0x1;
    public const short PollErr = 0x8;
    public const short PollHup = 0x10;

    public const int EfdCloExec = 0x80000;
    public const int EfdNonBlock = 0x800;

    public const ulong MsRdOnly = 0x1;
    public const ulong MsNoSuid = 0x2;
    public const ulong MsNoDev = 0x4;

    public const int MntForce = 0x1;
    public const int MntDetach = 0x2;
    public const int UmountNoFollow = 0x8;

    public const int AfUnix = 1;
    public const int SockStream = 1;
    public const int SockCloExec = 0x80000;
    public const int SolSocket = 1;
    public const int ScmRights = 1;
    public const int MsgCmsgCloExec = 0x40000000;

    public const int FGetFd = 1;
    public const int FSetFd = 2;
    public const int FGetFl = 3;
    public const int FSetFl = 4;
    public const int FdCloExec = 1;

    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtStatxForceSync = 0x2000;
    public const uint StatxBasicStats = 0x7ff;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nint count);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nint count);

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    public const int EpollCloExec = 0x80000;
    public const int EpollCtlAdd = 1;
    public const uint EpollIn = 0x1;
    public const uint EpollExclusive = 1u << 28;

    /// <summary>Bytes of <c>struct epoll_event</c>: packed to 12 on x86-64, 16 elsewhere.</summary>
    public static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    [LibraryImport(Lib, EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate1(int flags);

    [LibraryImport(Lib, EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int EpollCtl(int epfd, int op, int fd, byte* ev);

    [LibraryImport(Lib, EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epfd, byte* events, int maxEvents, int timeoutMs);

    /// <summary>Adds <paramref name="fd"/> to an epoll set for <paramref name="events"/>; returns 0 or -1.</summary>
    public static int EpollAdd(int epfd, int fd, uint events)
    {
        var ev = stackalloc byte[16];
        new Span<byte>(ev, 16).Clear();
        *(uint*)ev = events;
        return EpollCtl(epfd, EpollCtlAdd, fd, ev);
    }

    [LibraryImport(Lib, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initial, int flags);

    [LibraryImport(Lib, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fsType, ulong flags, string data);

    [LibraryImport(Lib, EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Umount2(string target, int flags);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, void* argument);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, nint argument);

    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport(Lib, EntryPoint = "socketpair", SetLastError = true)]
    public static partial int SocketPair(int domain, int type, int protocol, int* fds);

    [LibraryImport(Lib, EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint RecvMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(Lib, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport(Lib, EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    [LibraryImport(Lib, EntryPoint = "getegid")]
    public static partial uint GetEgid();

    /// <summary>The errno of the last call.</summary>
    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>Closes <paramref name="fd"/> if it is open, ignoring EINTR (Linux closes the descriptor anyway).</summary>
    public static void CloseQuietly(int fd)
    {
        if (fd >= 0)
        {
            _ = Close(fd);
        }
    }
}
