using System.Globalization;
using System.Text;
using Blockshot.Fuse.Mounting;
using Blockshot.Fuse.Native;

namespace Blockshot.Fuse;

/// <summary>
/// A FUSE filesystem mounted on a regular file, and the /dev/fuse descriptor that serves it. Mounts
/// with mount(2) when privileged, through fusermount3 otherwise. <see cref="Unmount"/> takes the mount
/// away (waiting briefly for a busy mount, then detaching it lazily); <see cref="Dispose"/> also closes
/// the descriptor, which aborts the connection if the mount is still referenced.
/// </summary>
public sealed class FuseMount : IDisposable
{
    /// <summary>The filesystem type this code mounts (<c>fuse.</c> plus the subtype).</summary>
    public const string FsType = "fuse.blockshot";

    private const string Subtype = "blockshot";
    private const uint SIfRegOctal = 100000; // rootmode is given in octal: S_IFREG
    private static readonly TimeSpan BusyWait = TimeSpan.FromSeconds(2);

    private readonly object _sync = new();
    private int _fd;
    private bool _mounted;

    private FuseMount(string target, int fd, FuseMountMethod method, bool createdTarget)
    {
        Target = target;
        _fd = fd;
        Method = method;
        CreatedTarget = createdTarget;
        _mounted = true;
    }

    /// <summary>The mountpoint: a regular file, as a full path.</summary>
    public string Target { get; }

    /// <summary>How it was mounted.</summary>
    public FuseMountMethod Method { get; }

    /// <summary>True when the mountpoint file was created by <see cref="Mount"/> (and is removed on unmount).</summary>
    public bool CreatedTarget { get; }

    /// <summary>True until <see cref="Unmount"/> has taken the mount away.</summary>
    public bool IsMounted
    {
        get
        {
            lock (_sync)
            {
                return _mounted;
            }
        }
    }

    /// <summary>The /dev/fuse descriptor, or -1 once closed.</summary>
    internal int Fd => Volatile.Read(ref _fd);

    /// <summary>
    /// Mounts a FUSE filesystem whose root is a regular file on <paramref name="target"/>. The kernel
    /// sends INIT at once; nothing touching the file completes until a session answers it. A stale
    /// Blockshot mount already there (its server died) is cleaned up first; a live one is an error.
    /// </summary>
    /// <param name="target">The mountpoint; created as an empty file when missing and <paramref name="createTarget"/> is set.</param>
    /// <param name="method">mount(2), fusermount3, or the first that applies.</param>
    /// <param name="readOnly">Mount read-only: the kernel refuses writes before they reach the export.</param>
    /// <param name="allowOther">Let other users open the file (for fusermount3, needs user_allow_other in /etc/fuse.conf).</param>
    /// <param name="maxRead">The largest READ the kernel may send.</param>
    /// <param name="fsName">The source shown in the mount table.</param>
    /// <param name="createTarget">Create a missing mountpoint file.</param>
    public static FuseMount Mount(
        string target,
        FuseMountMethod method = FuseMountMethod.Auto,
        bool readOnly = false,
        bool allowOther = false,
        int maxRead = 1 << 20,
        string fsName = "blockshot",
        bool createTarget = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        ArgumentException.ThrowIfNullOrEmpty(fsName);
        if (fsName.IndexOfAny([',', ' ', '\n', '\t', '\\']) >= 0)
        {
            throw new ArgumentException("the source name may not contain commas, blanks or backslashes", nameof(fsName));
        }
        var full = Path.GetFullPath(target);
        // A mount left by a crashed export is cleaned away; a live one is not mounted over.
        if (IsFuseMounted(full))
        {
            CleanupStale(full);
            if (IsFuseMounted(full))
            {
                throw new IOException($"{full} is already a mounted FUSE filesystem");
            }
        }
        var created = PrepareTarget(full, createTarget);
        if (method == FuseMountMethod.Auto)
        {
            method = Libc.GetEuid() == 0 ? FuseMountMethod.Syscall : FuseMountMethod.Fusermount;
        }
        try
        {
            var fd = method == FuseMountMethod.Syscall
                ? MountBySyscall(full, readOnly, allowOther, maxRead, fsName)
                : Fusermount.Mount(full, CommonOptions(readOnly, allowOther, maxRead) + $",fsname={fsName},subtype={Subtype}");
            return new FuseMount(full, fd, method, created);
        }
        catch
        {
            if (created)
            {
                File.Delete(full);
            }
            throw;
        }
    }

    /// <summary>
    /// Takes the mount away: unmounts, retrying while it is busy (a loop device lets go of the file a
    /// moment after it is detached), then detaches it lazily. Leaves the descriptor open; idempotent.
    /// </summary>
    public void Unmount()
    {
        lock (_sync)
        {
            if (!_mounted)
            {
                return;
            }
            UnmountPath(Target, Method == FuseMountMethod.Fusermount && Libc.GetEuid() != 0);
            _mounted = false;
            if (CreatedTarget)
            {
                DeleteCreatedTarget();
            }
        }
    }

    /// <summary>Unmounts if still mounted, then closes the descriptor.</summary>
    public void Dispose()
    {
        Unmount();
        CloseDevice();
    }

    /// <summary>Closes the descriptor; a mount still in place becomes stale (its files report ENOTCONN).</summary>
    internal void CloseDevice() => Libc.CloseQuietly(Interlocked.Exchange(ref _fd, -1));

    /// <summary>True when a FUSE filesystem is mounted on <paramref name="path"/>.</summary>
    public static bool IsFuseMounted(string path)
    {
        var full = Path.GetFullPath(path);
        foreach (var entry in MountTable.At(full))
        {
            if (entry.FsType.StartsWith("fuse", StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Finds Blockshot FUSE mounts on <paramref name="path"/> whose serving process is gone (the file
    /// reports ENOTCONN), detaches loop devices backed by them, and unmounts them. A live mount is left
    /// alone. Returns what was cleaned.
    /// </summary>
    public static FuseStaleCleanup CleanupStale(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var mounts = 0;
        var loops = new List<string>();
        for (var round = 0; round < 16; round++)
        {
            var stack = MountTable.At(full);
            if (stack.Count == 0)
            {
                break;
            }
            var top = stack[^1];
            if (top.FsType != FsType || IsAlive(full))
            {
                break;
            }
            loops.AddRange(LoopDevice.DetachBackedBy(full, top.Major, top.Minor));
            UnmountPath(full, Libc.GetEuid() != 0);
            mounts++;
        }
        return new FuseStaleCleanup(full, mounts, loops);
    }

    /// <summary>
    /// False when <paramref name="path"/> reports ENOTCONN or ECONNABORTED: its FUSE server is gone. The
    /// attributes are fetched afresh (AT_STATX_FORCE_SYNC): cached ones would hide a dead connection.
    /// </summary>
    internal static unsafe bool IsAlive(string path)
    {
        var statx = stackalloc byte[256];
        if (Libc.Statx(Libc.AtFdCwd, path, Libc.AtSymlinkNoFollow | Libc.AtStatxForceSync, Libc.StatxBasicStats, statx) == 0)
        {
            return true;
        }
        var errno = Libc.Errno;
        return errno is not (Errno.ENOTCONN or Errno.ECONNABORTED);
    }

    private static int MountBySyscall(string target, bool readOnly, bool allowOther, int maxRead, string fsName)
    {
        var fd = Libc.Open("/dev/fuse", Libc.ORdWr | Libc.OCloExec, 0);
        if (fd < 0)
        {
            throw SystemCallException.FromLastError("open(/dev/fuse)");
        }
        var data = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"fd={fd},rootmode={SIfRegOctal},user_id={Libc.GetEuid()},group_id={Libc.GetEgid()}")
            .Append(',').Append(CommonOptions(readOnly: false, allowOther, maxRead))
            .ToString();
        var flags = Libc.MsNoSuid | Libc.MsNoDev | (readOnly ? Libc.MsRdOnly : 0);
        if (Libc.Mount(fsName, target, FsType, flags, data) != 0)
        {
            var e = SystemCallException.FromLastError($"mount({target}, {FsType})");
            Libc.CloseQuietly(fd);
            throw e;
        }
        return fd;
    }

    // default_permissions: the kernel checks the mode bits the export reports, so 0444 means read-only
    // to everyone but root, and the export need not check permissions itself.
    private static string CommonOptions(bool readOnly, bool allowOther, int maxRead) =>
        (readOnly ? "ro," : "") + "default_permissions" + (allowOther ? ",allow_other" : "")
        + string.Create(CultureInfo.InvariantCulture, $",max_read={maxRead}");

    private static bool PrepareTarget(string full, bool create)
    {
        if (Directory.Exists(full))
        {
            throw new IOException($"{full} is a directory; a FUSE file export mounts on a regular file");
        }
        if (File.Exists(full))
        {
            return false;
        }
        if (!create)
        {
            throw new FileNotFoundException($"the mountpoint {full} does not exist", full);
        }
        using (new FileStream(full, FileMode.CreateNew, FileAccess.Write))
        {
        }
        return true;
    }

    private void DeleteCreatedTarget()
    {
        // Only the empty file created at mount time: never a file that turned out to hold data.
        var info = new FileInfo(Target);
        if (info.Exists && info.Length == 0 && !IsFuseMounted(Target))
        {
            info.Delete();
        }
    }

    private static void UnmountPath(string target, bool unprivileged)
    {
        if (unprivileged)
        {
            var error = Fusermount.Unmount(target, lazy: false);
            if (error is not null && Fusermount.Unmount(target, lazy: true) is { } lazyError)
            {
                throw new IOException(lazyError);
            }
            return;
        }
        var deadline = DateTime.UtcNow + BusyWait;
        while (true)
        {
            if (Libc.Umount2(target, Libc.UmountNoFollow) == 0)
            {
                return;
            }
            var errno = Libc.Errno;
            if (errno is Errno.EINVAL or Errno.ENOENT)
            {
                return; // not mounted (any more)
            }
            if (errno != Errno.EBUSY || DateTime.UtcNow >= deadline)
            {
                break;
            }
            Thread.Sleep(20);
        }
        if (Libc.Umount2(target, Libc.MntDetach | Libc.UmountNoFollow) != 0 && Libc.Errno is not (Errno.EINVAL or Errno.ENOENT))
        {
            throw SystemCallException.FromLastError($"umount2({target}, MNT_DETACH)");
        }
    }
}
