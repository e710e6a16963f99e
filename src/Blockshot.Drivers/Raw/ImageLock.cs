using Microsoft.Win32.SafeHandles;

namespace Blockshot.Drivers.Raw;

/// <summary>
/// Image locking that interoperates with qemu's, so a Blockshot writer and a qemu writer (qemu-nbd,
/// qemu-img, qemu-io, a running VM) never share an image unawares.
///
/// The scheme: open file description (OFD) locks, shared (F_RDLCK), on single bytes of the image.
/// Permissions are numbered as qemu numbers them: consistent-read = 0, write = 1, write-unchanged = 2,
/// resize = 3. An opener read-locks byte 100 + i for each permission i it holds, and byte 200 + i for
/// each permission i it does not let others hold. It takes its own bytes first, then tests (F_OFD_GETLK
/// with F_WRLCK, which reports any other description's shared lock) for conflicts: byte 200 + i for each
/// permission i it wants (someone refuses to share it) and byte 100 + i for each permission i it refuses
/// to share (someone holds it). Taking before testing means two openers racing cannot both succeed.
/// OFD locks belong to the open file description, so they vanish when the descriptor is closed, and two
/// opens in one process conflict just as two processes do. (qemu 6.1 and older also used byte 104/204
/// for a "graph-mod" permission; no opener checks it any more, so it is ignored here.)
///
/// What Blockshot takes, chosen to match what the installed qemu tools were observed to take:
/// <list type="bullet">
/// <item>read-write: holds consistent-read, write and resize (bytes 100, 101, 103) and shares only
/// consistent-read and write-unchanged (bytes 201, 203), exactly like the target of
/// <c>qemu-img convert</c> or a VM disk without <c>share-rw</c>. Any other writer fails: qemu-io and
/// qemu-img writers test byte 201, qemu-nbd holds byte 101.</item>
/// <item>read-only: holds consistent-read (byte 100) and shares consistent-read and write-unchanged
/// (bytes 201, 203). Blockshot reads images to back them up, so a read-only open insists that nobody
/// writes or resizes under it; read-only opens coexist with each other and with qemu's readers (which
/// share everything), but not with writers. (qemu's own read-only tools share write; Blockshot is
/// stricter on purpose.)</item>
/// </list>
/// <see cref="RawFileOptions.Locking"/> = false skips all of this, like qemu's force-share (<c>-U</c>).
/// </summary>
internal static unsafe class ImageLock
{
    /// <summary>Byte 100 + i: permission i is held.</summary>
    public const int PermissionBase = 100;

    /// <summary>Byte 200 + i: permission i is not shared.</summary>
    public const int SharedBase = 200;

    private const int ConsistentRead = 1 << 0;
    private const int Write = 1 << 1;
    private const int WriteUnchanged = 1 << 2;
    private const int Resize = 1 << 3;
    private const int AllPermissions = ConsistentRead | Write | WriteUnchanged | Resize;
    private const int PermissionCount = 4;

    private static readonly string[] Names = ["consistent read", "write", "write unchanged", "resize"];

    /// <summary>Permissions an opener holds.</summary>
    public static int Held(bool readOnly) => readOnly ? ConsistentRead : ConsistentRead | Write | Resize;

    /// <summary>Permissions an opener lets others hold.</summary>
    public static int Shared(bool readOnly) => ConsistentRead | WriteUnchanged;

    /// <summary>The lock bytes an opener holds, in ascending order.</summary>
    public static int[] Bytes(bool readOnly)
    {
        var bytes = new List<int>();
        var held = Held(readOnly);
        var notShared = ~Shared(readOnly) & AllPermissions;
        for (var i = 0; i < PermissionCount; i++)
        {
            if ((held & (1 << i)) != 0)
            {
                bytes.Add(PermissionBase + i);
            }
        }
        for (var i = 0; i < PermissionCount; i++)
        {
            if ((notShared & (1 << i)) != 0)
            {
                bytes.Add(SharedBase + i);
            }
        }
        return [.. bytes];
    }

    /// <summary>Takes the locks for an open of <paramref name="path"/>, or throws <see cref="ImageOpenException"/>.</summary>
    public static void Acquire(SafeFileHandle handle, string path, bool readOnly, in FileStat stat)
    {
        var held = Held(readOnly);
        var notShared = ~Shared(readOnly) & AllPermissions;
        var mode = readOnly ? "read-only" : "read-write";

        foreach (var b in Bytes(readOnly))
        {
            var errno = SetSharedLock(handle, b);
            if (errno == Libc.EAGAIN || errno == Libc.EACCES)
            {
                throw Conflict(handle, path, stat, b, $"another process holds an exclusive lock on byte {b}", mode);
            }
            if (errno != 0)
            {
                throw new ImageOpenException(
                    ImageOpenError.LockingUnsupported, path,
                    $"cannot lock {path}: {Libc.Describe(errno)}; the filesystem may not support open file description locks. "
                    + "Open it with locking off if no other process can be using it.",
                    errno);
            }
        }
        // A conflict is tested again for a short while before it is reported: a descriptor of a closed
        // image inherited by a child process of ours (between its fork and its exec, which closes it)
        // keeps that image's locks alive for a moment, and so does one being closed on another thread.
        var deadline = Environment.TickCount64 + RetryMilliseconds;
        while (true)
        {
            var conflict = FindConflict(handle, path, stat, held, notShared, mode);
            if (conflict is null)
            {
                return;
            }
            if (Environment.TickCount64 >= deadline)
            {
                throw conflict();
            }
            Thread.Sleep(5);
        }
    }

    /// <summary>How long a conflicting lock is re-tested before the open fails.</summary>
    private const int RetryMilliseconds = 200;

    private static Func<ImageOpenException>? FindConflict(SafeFileHandle handle, string path, FileStat stat, int held, int notShared, string mode)
    {
        for (var i = 0; i < PermissionCount; i++)
        {
            if ((held & (1 << i)) != 0 && IsLockedByOthers(handle, path, SharedBase + i))
            {
                var n = i;
                return () => Conflict(handle, path, stat, SharedBase + n,
                    $"another process is using it and does not share the \"{Names[n]}\" permission this {mode} open needs", mode);
            }
        }
        for (var i = 0; i < PermissionCount; i++)
        {
            if ((notShared & (1 << i)) != 0 && IsLockedByOthers(handle, path, PermissionBase + i))
            {
                var n = i;
                return () => Conflict(handle, path, stat, PermissionBase + n,
                    $"another process holds the \"{Names[n]}\" permission, which this {mode} open does not share", mode);
            }
        }
        return null;
    }

    private static ImageOpenException Conflict(SafeFileHandle handle, string path, in FileStat stat, int lockByte, string why, string mode)
    {
        var holders = LockHolders.Describe(stat, lockByte, (int)handle.DangerousGetHandle());
        var who = holders.Length > 0 ? $" (held by {holders})" : "";
        return new ImageOpenException(
            ImageOpenError.Locked, path,
            $"{path} is locked: {why}{who}. Is qemu or another Blockshot using the image? "
            + (mode == "read-write" ? "Open it read-only, stop the other user, " : "Stop the other user ")
            + "or turn locking off to share it anyway.");
    }

    private static int SetSharedLock(SafeFileHandle handle, int lockByte)
    {
        var request = new Libc.FileLock { Type = Libc.FReadLock, Whence = Libc.SeekSet, Start = lockByte, Length = 1 };
        while (Libc.Fcntl(handle, Libc.FOfdSetLock, &request) != 0)
        {
            var errno = Libc.Errno;
            if (errno != Libc.EINTR)
            {
                return errno;
            }
        }
        return 0;
    }

    private static bool IsLockedByOthers(SafeFileHandle handle, string path, int lockByte)
    {
        var probe = new Libc.FileLock { Type = Libc.FWriteLock, Whence = Libc.SeekSet, Start = lockByte, Length = 1 };
        if (Libc.Fcntl(handle, Libc.FOfdGetLock, &probe) != 0)
        {
            var errno = Libc.Errno;
            throw new ImageOpenException(
                ImageOpenError.LockingUnsupported, path, $"cannot test the lock on {path}: {Libc.Describe(errno)}", errno);
        }
        return probe.Type != Libc.FUnlock;
    }
}
