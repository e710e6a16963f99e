using Blockshot.Drivers.Raw;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Drivers;

/// <summary>
/// Opens and creates image files for format drivers that do their own positional I/O (qcow2), with the
/// same <c>open(2)</c>, file-type checks and qemu-compatible image locks as <see cref="RawFileNode"/>.
/// The locks live as long as the returned handle.
/// </summary>
public static class ImageFileHandle
{
    private const int Create = 0x40;
    private const int Exclusive = 0x80;

    /// <summary>
    /// Opens an existing regular file or block device, read-only or read-write, taking the image locks
    /// when <paramref name="locking"/> is set. Throws <see cref="ImageOpenException"/> on failure.
    /// </summary>
    public static SafeFileHandle Open(string path, bool readOnly, bool locking)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var options = new RawFileOptions { ReadOnly = readOnly, Locking = locking };
        var handle = OpenRaw(path, (readOnly ? Libc.ReadOnly : Libc.ReadWrite) | Libc.CloseOnExec, options);
        return Finish(handle, path, options, truncate: false);
    }

    /// <summary>
    /// Creates a regular file for writing, or opens an existing one (a block device too) and empties it,
    /// as an image target. The read-write image locks are taken before anything is truncated, so a file
    /// another process (qemu included) is using is refused and left intact.
    /// </summary>
    public static SafeFileHandle CreateOrTruncate(string path, bool locking, bool overwrite = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var options = new RawFileOptions { ReadOnly = false, Locking = locking };
        var flags = Libc.ReadWrite | Libc.CloseOnExec | Create | (overwrite ? 0 : Exclusive);
        var handle = OpenRaw(path, flags, options);
        return Finish(handle, path, options, truncate: true);
    }

    private static SafeFileHandle OpenRaw(string path, int flags, RawFileOptions options)
    {
        int fd;
        int errno;
        do
        {
            fd = Libc.Open(path, flags, 420); // 0644, less the umask
            errno = fd < 0 ? Libc.Errno : 0;
        }
        while (errno == Libc.EINTR);
        if (fd < 0)
        {
            throw errno == 17
                ? new ImageOpenException(ImageOpenError.Io, path, $"{path} already exists: {Libc.Describe(errno)}", errno)
                : RawFileNode.OpenFailure(path, errno, options);
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    private static SafeFileHandle Finish(SafeFileHandle handle, string path, RawFileOptions options, bool truncate)
    {
        var ok = false;
        try
        {
            var r = FileStat.TryOf(handle, out var stat);
            if (r < 0)
            {
                throw RawFileNode.OpenFailure(path, -r, options);
            }
            if (!stat.IsRegular && !stat.IsBlockDevice)
            {
                throw new ImageOpenException(ImageOpenError.NotFileOrDevice, path,
                    $"{path} is {stat.TypeName}, not a regular file or a block device");
            }
            if (options.Locking)
            {
                ImageLock.Acquire(handle, path, options.ReadOnly, stat);
            }
            if (truncate && stat.IsRegular && stat.Size != 0 && Libc.FTruncate(handle, 0) != 0)
            {
                var errno = Libc.Errno;
                throw new ImageOpenException(ImageOpenError.Io, path, $"cannot truncate {path}: {Libc.Describe(errno)}", errno);
            }
            ok = true;
            return handle;
        }
        finally
        {
            if (!ok)
            {
                handle.Dispose();
            }
        }
    }
}
